// How a coupon template reads to a driver: the benefit, its conditions, in Chinese.
// Amounts and percents are shown exactly as the API gives them.
export function benefit(t) {
  if (!t) return "";
  if (t.kind === "percent") return `${t.base === "service" ? "服务费" : "整单"}减${t.percent}%`;
  return "¥" + t.amount;
}

export function conditions(t) {
  if (!t) return "";
  const parts = [];
  if (t.threshold && Number(t.threshold) > 0) parts.push(`满¥${t.threshold}可用`);
  else parts.push("无门槛");
  if (t.kind === "percent" && t.cap && Number(t.cap) > 0) parts.push(`最高减¥${t.cap}`);
  if (t.current && t.current !== "any") parts.push(t.current === "ac" ? "限交流慢充" : "限直流快充");
  if (t.hour_from !== null && t.hour_from !== undefined && t.hour_to !== null && t.hour_to !== undefined
      && !(t.hour_from === 0 && t.hour_to === 24)) parts.push(`${t.hour_from}:00-${t.hour_to}:00可用`);
  if (t.station_ids && t.station_ids.length) parts.push("限指定站点");
  if (!t.stacks_with_svip) parts.push("不与SVIP折扣同享");
  return parts.join(" · ");
}
