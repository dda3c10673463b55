import { defineConfig } from "vite";
import uni from "@dcloudio/vite-plugin-uni";

// uni-app's H5 framework CSS points its navigation/tab bar shadows at images on DCloud's
// CDN; the app must work offline (and load nothing from third parties), so they go.
const CDN_SHADOW = /url\(\s*['"]?https:\/\/cdn\.dcloud\.net\.cn\/img\/shadow-[a-z]+\.png['"]?\s*\)/g;

function noCdnShadows() {
  return {
    name: "evp-no-cdn-shadows",
    enforce: "post",
    generateBundle(_options, bundle) {
      for (const file of Object.values(bundle)) {
        if (file.type === "asset" && file.fileName.endsWith(".css")) {
          file.source = String(file.source).replace(CDN_SHADOW, "none");
        }
      }
    },
  };
}

export default defineConfig({
  plugins: [uni(), noCdnShadows()],
});
