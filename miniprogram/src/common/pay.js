import { config } from "./config";
import { get } from "./api";

// Pay a prepared WeChat Pay order: in the mini-program wx.requestPayment; in the H5 app
// (development) the local fake WeChat Pay server "pays" it, as the phone's WeChat would.
function requestPayment(params, outTradeNo) {
  return new Promise((resolve, reject) => {
    // #ifdef MP-WEIXIN
    uni.requestPayment({
      provider: "wxpay",
      timeStamp: params.timeStamp,
      nonceStr: params.nonceStr,
      package: params.package,
      signType: params.signType,
      paySign: params.paySign,
      success: () => resolve(),
      fail: (e) => reject(new Error(/cancel/.test(e.errMsg || "") ? "已取消支付" : "支付未成功")),
    });
    // #endif
    // #ifdef H5
    if (!config.fakePayUrl) {
      reject(new Error("请在微信中打开以完成支付"));
      return;
    }
    uni.request({
      url: config.fakePayUrl + "/_fake/pay",
      method: "POST",
      header: { "Content-Type": "application/json" },
      data: { out_trade_no: outTradeNo, ...params },
      success: (res) => (res.statusCode < 300 ? resolve() : reject(new Error("支付未成功"))),
      fail: () => reject(new Error("无法连接支付服务")),
    });
    // #endif
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Pays, then waits until the platform has the signed notification (status "paid").
export async function payAndConfirm(payment, params) {
  await requestPayment(params, payment.out_trade_no);
  for (let i = 0; i < 40; i += 1) {
    const p = await get(`/wallet/payments/${payment.out_trade_no}`);
    if (p.status === "paid") return p;
    if (["closed", "failed"].includes(p.status)) throw new Error("支付未成功");
    await sleep(500);
  }
  throw new Error("支付结果确认中，请稍后在钱包查看");
}

// Pays a purchase (SVIP, a coupon on sale) whose status the platform reports elsewhere:
// after paying, `check()` is asked until it answers true (the notification has arrived).
export async function payThen(params, check) {
  await requestPayment(params, undefined);
  for (let i = 0; i < 40; i += 1) {
    if (await check()) return;
    await sleep(500);
  }
  throw new Error("支付结果确认中，请稍后刷新查看");
}
