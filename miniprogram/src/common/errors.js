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
  // Coupons, SVIP, points, mall, scratch cards, point cards
  connector_id_required: "请先选择充电枪",
  coupon_not_found: "优惠券不存在",
  coupon_inactive: "该优惠券已停止发放",
  coupon_expired: "该优惠券已过期",
  coupon_limit: "您已领取过该优惠券，已达领取上限",
  coupon_sold_out: "该优惠券已被领完",
  coupon_unavailable: "该优惠券不可用于本单",
  order_not_found: "订单不存在或已结束",
  svip_plan_not_found: "该会员套餐已下架",
  svip_not_found: "没有找到该会员购买记录",
  svip_not_refundable: "该会员已超过可退订期限或已使用权益，无法退订",
  insufficient_points: "积分不足",
  invalid_points: "积分数量不正确",
  mall_item_not_found: "该商品已下架",
  mall_sold_out: "该商品已兑完",
  address_required: "实物商品请填写收货人、电话和地址",
  scratch_not_found: "没有找到该刮刮卡",
  scratch_ended: "该刮刮卡活动已结束",
  card_invalid: "卡号或密码错误",
  card_used: "该点卡已被使用",
  card_inactive: "该点卡尚未启用",
  card_expired: "该点卡已过期",
  too_many_attempts: "尝试次数过多，请稍后再试",
  // Invoices
  tax_number_invalid: "税号不正确，请核对",
  tax_number_required: "企业抬头须填写税号",
  title_required: "请填写发票抬头",
  orders_required: "请选择要开票的订单",
  too_many_orders: "一次选择的订单过多，请分批开票",
  order_not_settled: "订单尚未结算，暂不能开票",
  order_zero_amount: "该订单实付金额为零，无需开票",
  order_already_invoiced: "该订单已开过发票",
  invoicing_disabled: "运营商暂未开通电子发票",
  invoicing_not_configured: "运营商暂未开通电子发票",
  invoice_not_issued: "发票尚未开具，请稍后再试",
  // Station owner center
  not_station_owner: "您还不是站长，无法进入站长中心",
  withdrawal_below_minimum: "提现金额低于最低提现额",
  withdrawal_exceeds_available: "提现金额超过可提现金额",
  no_contract: "尚未签订分成合同，无法提现",
  no_openid: "尚未绑定微信，无法提现到微信零钱",
  // Feedback and customer-service chat
  feedback_not_found: "反馈不存在",
  feedback_closed: "该反馈已结束，如有新问题请重新提交",
  too_many_photos: "最多上传 9 张图片",
  photo_missing: "请选择图片",
  photo_invalid: "图片格式不支持，请上传 JPG、PNG 或 WebP 图片",
  photo_too_large: "图片不能超过 5 MB",
  text_empty: "请输入消息内容",
  text_too_long: "消息不能超过 1000 字",
  conversation_not_found: "暂无客服会话",
  conversation_closed: "该会话已结束",
  conversation_busy: "发送未成功，请重试",
  too_fast: "发送太频繁，请稍候再试",
};

const HAS_CHINESE = /[\u4e00-\u9fa5]/;

// Refusals whose server text carries a figure (the minimum, what is available): that
// (translated) text is shown when it is Chinese, else the fixed words above.
const DETAIL_FIRST = new Set(["withdrawal_below_minimum", "withdrawal_exceeds_available"]);

export function messageFor(code, detail) {
  if (DETAIL_FIRST.has(code) && detail && HAS_CHINESE.test(detail)) return detail;
  if (MESSAGES[code]) return MESSAGES[code];
  if (detail && HAS_CHINESE.test(detail)) return detail;
  return "操作未成功，请稍后再试";
}

export function showError(error) {
  const text = (error && error.message) || "操作未成功，请稍后再试";
  uni.showToast({ title: text, icon: "none", duration: 2500 });
}
