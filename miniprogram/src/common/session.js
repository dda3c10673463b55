import { reactive } from "vue";

const KEY = "evp-session";

function load() {
  try {
    return uni.getStorageSync(KEY) || {};
  } catch (e) {
    return {};
  }
}

// access/refresh tokens and the member, kept across launches.
export const session = reactive({ access: "", refresh: "", member: null, ...load() });

export function sessionSave(tokens) {
  session.access = tokens.access;
  session.refresh = tokens.refresh || session.refresh;
  if (tokens.member) session.member = tokens.member;
  uni.setStorageSync(KEY, { access: session.access, refresh: session.refresh, member: session.member });
}

export function sessionClear() {
  session.access = "";
  session.refresh = "";
  session.member = null;
  uni.removeStorageSync(KEY);
}

export function loggedIn() {
  return !!session.access;
}

export function requireLogin() {
  if (session.access) return true;
  uni.navigateTo({ url: "/pages/login/login" });
  return false;
}
