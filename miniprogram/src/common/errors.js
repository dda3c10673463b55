// What a driver reads when the API says no: by the error code of the API's common body
// {code, detail, fields}. Unknown codes fall back to the server's own (translated) detail.
const MESSAGES = {
  network: "网络连接失败，请检查网络后重试",
  timeout: "请求超时，请稍后重试",
  server_error: "服务器开小差了，请稍后再试",
  bad_request: "请求有误，请检查后重试",
  not_found: "没有找到相关内容",
  permission_denied: "没有权限进行此操作",
  not_authenticated: "请先登录",
  token_invalid: "登录已失效，请重新登录",
  token_expired: "登录已过期，请重新登录",
  token_tenant_mismatch: "登录信息不属于本运营商，请重新登录",
  tenant_not_found: "未找到该运营商",
  tenant_suspended: "该运营商已暂停服务",
  tenant_required: "未指定运营商",
  wechat_error: "微信服务暂时不可用，请稍后再试",
  member_disabled: "账号已被停用，请联系客服",
  station_not_found: "充电站不存在",
  station_closed: "充电站暂停营业",
  connector_not_found: "未找到该充电枪，请核对编号",
  connector_busy: "该充电枪正在使用中，请换一个",
  connector_fault: "该充电枪故障，请换一个",
  connector_not_plugged: "请先将充电枪插入车辆，再开始充电",
  connector_reserved: "该充电枪已被他人预约",
  pile_offline: "充电桩离线，请换一个充电枪",
  pile_disabled: "充电桩已停用，请换一个充电枪",
  tariff_missing: "该站点暂未设置价格，无法充电",
  insufficient_balance: "余额不足，请先充值",
  insufficient_funds: "余额不足",
  order_in_progress: "您有正在进行的充电订单",
  order_not_stoppable: "当前订单无法停止",
  no_current_order: "当前没有进行中的订单",
  mode_unsupported: "不支持该支付方式",
  prepay_unpaid: "预付款尚未支付",
  prepay_not_paid: "预付款尚未支付",
  prepay_exists: "已有一笔预付款",
  reservation_exists: "您已有一个有效预约",
  connector_free: "有空闲的充电枪，请直接去充电",
  queue_exists: "您已在排队中",
  queue_none: "您当前没有排队",
  queue_not_open: "您已不在该排队中",
  queue_not_offered: "当前没有为您保留的充电枪",
  queue_kind_unknown: "请选择充电枪类型",
  no_such_connector: "该站点没有此类型的充电枪",
  station_power_full: "该站点已达用电上限，请排队等候",
  reservation_not_active: "该预约已失效",
  no_reservation: "没有可取消的预约",
  invalid_amount: "金额不正确",
  amount_exceeds_refundable: "超出可退金额",
  refund_exceeds: "超出可退金额",
  nothing_to_refund: "没有可退的余额",
  refund_in_progress: "已有一笔退款在处理中",
  withdrawals_disabled: "运营商暂未开放提现",
  pay_not_configured: "运营商暂未开通微信支付",
  payment_refused: "支付未成功",
  location_required: "需要您的位置",
  invalid_coordinates: "位置不正确",
  invalid_parameter: "输入有误，请检查",
};

const HAS_CHINESE = /[\u4e00-\u9fa5]/;

export function messageFor(code, detail) {
  if (MESSAGES[code]) return MESSAGES[code];
  if (detail && HAS_CHINESE.test(detail)) return detail;
  return "操作未成功，请稍后再试";
}

export function showError(error) {
  const text = (error && error.message) || "操作未成功，请稍后再试";
  uni.showToast({ title: text, icon: "none", duration: 2500 });
}
