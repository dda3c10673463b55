import { reactive } from "vue";

// The coupon the driver picked on the "选择优惠券" page before starting, for one connector:
// the connector page sends it as the order's coupon_id (else the best one is used at settlement).
export const picked = reactive({ connectorId: "", couponId: 0, name: "" });

export function pickCoupon(connectorId, coupon) {
  picked.connectorId = String(connectorId);
  picked.couponId = coupon ? coupon.id : 0;
  picked.name = coupon ? coupon.template.name : "";
}
