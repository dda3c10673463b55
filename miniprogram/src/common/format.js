// Display helpers: money in yuan (strings from the API, shown as they are), distances,
// times in the phone's zone (the operator's, in practice).
export function yuan(value) {
  if (value === null || value === undefined || value === "") return "--";
  const n = Number(value);
  return "¥" + (Number.isFinite(n) ? n.toFixed(2) : value);
}

// An amount exactly as the API gives it (a yuan string with its own places): never re-rounded.
export function amt(value) {
  if (value === null || value === undefined || value === "") return "--";
  return "¥" + value;
}

export function day(iso) {
  return iso ? dateTime(iso).slice(0, 10) : "--";
}

export function price(value) {
  if (value === null || value === undefined) return "--";
  return Number(value).toFixed(4).replace(/0{1,2}$/, "");
}

export function distance(m) {
  if (m === null || m === undefined) return "";
  return m < 1000 ? `${m}米` : `${(m / 1000).toFixed(1)}公里`;
}

export function energy(kwh) {
  const n = Number(kwh || 0);
  return n.toFixed(3);
}

function pad(n) {
  return String(n).padStart(2, "0");
}

export function dateTime(iso) {
  if (!iso) return "--";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A span of one day as "07:30–08:00" ("--" for an end or start not given).
export function timeSpan(start, end) {
  const hm = (iso) => {
    if (!iso) return "--";
    const d = new Date(iso);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  };
  return `${hm(start)}–${hm(end)}`;
}

export function minutes(start, end) {
  if (!start) return 0;
  const to = end ? new Date(end) : new Date();
  return Math.max(0, Math.round((to - new Date(start)) / 60000));
}

export const PERIOD_NAMES = { sharp: "尖", peak: "峰", flat: "平", valley: "谷" };

export const CONNECTOR_STATES = {
  idle: "空闲",
  plugged: "已插枪",
  charging: "充电中",
  finishing: "充电结束",
  reserved: "已预约",
  fault: "故障",
  offline: "离线",
};

export const ORDER_STATES = {
  created: "已创建",
  starting: "启动中",
  charging: "充电中",
  stopping: "停止中",
  finished: "结算中",
  review: "账单核对中",
  settled: "已完成",
  failed: "启动失败",
  abnormal: "异常",
};

export const STOP_REASONS = {
  driver: "手动停止",
  full: "已充满或达到设定值",
  at_pile: "在充电桩上停止",
  balance: "余额不足自动停止",
  unplugged: "充电枪被拔出",
  emergency: "急停",
  fault: "故障停止",
  platform: "平台停止",
  start_failed: "启动失败",
  unknown: "其他原因",
};

export const TYPE_NAMES = { ac: "交流慢充", dc: "直流快充" };

// Interconnection partners' stations and our members' orders on their piles (互联).
export const ROAMING_STATES = {
  starting: "启动中",
  charging: "充电中",
  stopping: "停止中",
  finished: "等待对方账单",
  settled: "已完成",
  failed: "启动失败",
};

// The partner's FailReason of a refused start (T/CEC 102: 1 设备不存在, 2 设备离线, 3+ its
// own); -1: the partner platform could not be reached.
export function roamingFailText(reason) {
  if (reason === -1) return "暂时无法连接互联运营商，请稍后再试，冻结的余额已退回";
  if (reason === 1) return "对方平台找不到该充电枪，冻结的余额已退回";
  if (reason === 2) return "该充电桩已离线，冻结的余额已退回";
  return "对方平台拒绝了本次充电，冻结的余额已退回";
}

// CEC ConnectorType (1 家用插座 … 6 其他).
export const CEC_CONNECTOR_TYPES = {
  1: "家用插座",
  2: "交流插座",
  3: "交流插头",
  4: "直流快充",
  5: "无线充电",
  6: "其他",
};

export const STATION_STATUS = { 0: "状态未知", 1: "建设中", 5: "已关闭", 6: "维护中", 50: "营业中" };

// A partner's price text: our own T/CEC form "HHMMSS:电费+服务费;…" becomes rows
// [{from: "08:00", electricity, service}]; any other text is shown as it is (null here).
export function partnerPrices(note) {
  const text = String(note || "").trim();
  if (!text) return [];
  const rows = [];
  for (const part of text.split(/[;；]/).filter(Boolean)) {
    const m = /^(\d{2})(\d{2})\d{2}:(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) return null;
    rows.push({ from: `${m[1]}:${m[2]}`, electricity: m[3], service: m[4] });
  }
  return rows;
}
