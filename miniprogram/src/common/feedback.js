// Feedback (意见反馈与投诉) words shared by its screens: the API's category and status codes.
export const CATEGORIES = [
  { value: "fault", label: "设备故障" },
  { value: "billing", label: "费用与支付" },
  { value: "service", label: "服务投诉" },
  { value: "suggestion", label: "意见建议" },
  { value: "other", label: "其他" },
];
export const CATEGORY_NAMES = Object.fromEntries(CATEGORIES.map((c) => [c.value, c.label]));
export const STATUS_NAMES = { new: "待处理", in_progress: "处理中", replied: "已回复", closed: "已结束" };
