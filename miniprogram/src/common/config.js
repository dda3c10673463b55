// The operator this copy of the app belongs to.
// H5: the Django view at /m/ injects window.__EVP__ into index.html (name, logo, theme
// colour, operator slug, whether the development login and the fake WeChat Pay are on).
// mp-weixin: the third-party platform commits the template with a per-operator ext.json;
// WeChat hands its "ext" object to uni.getExtConfigSync().
function read() {
  let raw = {};
  // #ifdef H5
  raw = window.__EVP__ || {};
  // #endif
  // #ifdef MP-WEIXIN
  try {
    raw = (uni.getExtConfigSync && uni.getExtConfigSync()) || {};
  } catch (e) {
    raw = {};
  }
  // #endif
  return raw;
}

const raw = read();

export const config = {
  apiBase: raw.apiBase || "",
  wsBase: raw.wsBase || "",
  tenant: raw.tenant || "",
  appid: raw.appid || "",
  name: raw.name || "充电",
  logo: raw.logo || "",
  themeColor: raw.themeColor || "#1aad6b",
  devLogin: !!raw.devLogin,
  fakePayUrl: raw.fakePayUrl || "",
  center: raw.center || { lat: 23.1291, lng: 113.2644 },
};

export function wsUrl(path) {
  let base = config.wsBase;
  if (!base) {
    base = config.apiBase.replace(/^http/, "ws");
    // #ifdef H5
    if (!base) base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
    // #endif
  }
  return base + path;
}
