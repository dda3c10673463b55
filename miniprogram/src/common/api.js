import { config } from "./config";
import { messageFor } from "./errors";
import { session, sessionClear, sessionSave } from "./session";

export class ApiError extends Error {
  constructor(code, message, status, fields) {
    super(message);
    this.code = code;
    this.status = status;
    this.fields = fields || {};
  }
}

const PREFIX = "/api/app/v1";

function send(method, path, data, useToken) {
  const header = { "Accept-Language": "zh-hans", "Content-Type": "application/json" };
  if (useToken && session.access) header.Authorization = "Bearer " + session.access;
  else if (config.tenant) header["X-Tenant"] = config.tenant;
  // In the mini-program WeChat's own Referer (servicewechat.com/{appid}/...) names the operator.
  return new Promise((resolve) => {
    uni.request({
      url: config.apiBase + PREFIX + path,
      method,
      data,
      header,
      timeout: 15000,
      success: (res) => resolve({ status: res.statusCode, body: res.data }),
      fail: (err) => resolve({ status: 0, body: { code: /timeout/.test(err.errMsg || "") ? "timeout" : "network" } }),
    });
  });
}

let refreshing = null;

async function refreshTokens() {
  if (!session.refresh) return false;
  if (!refreshing) {
    refreshing = send("POST", "/auth/refresh", { refresh: session.refresh }, false).then((res) => {
      refreshing = null;
      if (res.status === 200 && res.body && res.body.access) {
        sessionSave(res.body);
        return true;
      }
      return false;
    });
  }
  return refreshing;
}

// One call of the driver API; resolves with the body, rejects with ApiError (Chinese message).
export async function api(method, path, data) {
  let res = await send(method, path, data, true);
  if (res.status === 401 && session.access) {
    if (await refreshTokens()) res = await send(method, path, data, true);
    if (res.status === 401) {
      sessionClear();
      uni.navigateTo({ url: "/pages/login/login" });
    }
  }
  if (res.status >= 200 && res.status < 300) return res.body || {};
  const body = res.body && typeof res.body === "object" ? res.body : {};
  const code = body.code || (res.status >= 500 ? "server_error" : "bad_request");
  throw new ApiError(code, messageFor(code, body.detail), res.status, body.fields);
}

export const get = (path, query) => api("GET", path, query);
export const post = (path, body) => api("POST", path, body || {});

// Open a file the API serves to this member only (an invoice's PDF): the token goes in the
// header, so a plain link would not do. H5: fetched into a blob and opened in a new tab;
// mp-weixin: downloaded and shown by WeChat's document viewer.
export async function openFile(path) {
  const url = config.apiBase + PREFIX + path;
  const header = { Authorization: "Bearer " + session.access, "Accept-Language": "zh-hans" };
  // #ifdef H5
  const res = await fetch(url, { headers: header });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new ApiError(body.code || "bad_request", messageFor(body.code || "bad_request", body.detail), res.status);
  }
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const opened = window.open(href, "_blank");
  if (!opened) window.location.href = href;
  return href;
  // #endif
  // #ifdef MP-WEIXIN
  return new Promise((resolve, reject) => {
    uni.downloadFile({
      url,
      header,
      success: (r) => {
        if (r.statusCode !== 200) {
          reject(new ApiError("invoice_not_issued", messageFor("invoice_not_issued"), r.statusCode));
          return;
        }
        uni.openDocument({ filePath: r.tempFilePath, fileType: "pdf", showMenu: true, success: () => resolve(r.tempFilePath), fail: reject });
      },
      fail: () => reject(new ApiError("network", messageFor("network"), 0)),
    });
  });
  // #endif
}
