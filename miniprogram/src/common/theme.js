import { config } from "./config";

// The operator's colour on the navigation bar, the tab bar and (CSS variable --theme) the page.
export function applyTheme() {
  uni.setNavigationBarColor({ frontColor: "#ffffff", backgroundColor: config.themeColor, fail() {} });
  uni.setTabBarStyle({ selectedColor: config.themeColor, fail() {} });
}

export const themeStyle = `--theme: ${config.themeColor};`;
