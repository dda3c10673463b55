"""SVIP bought with WeChat Pay through billing's payments and the fake WeChat Pay: pending
until paid, activated once however often WeChat notifies, refunded along the payment."""

from decimal import Decimal

import pytest

from billing.payments import services as payments
from billing.payments.models import Payment, PaymentRefund
from billing.payments.tests.conftest import notify
from marketing import svip
from marketing.common import MarketingError
from marketing.models import Coupon, CouponTemplate, SvipPlan, SvipPurchase
from settlement import selectors as ledger_selectors
from settlement import services as ledger
from settlement.models import Posting

D = Decimal
pytestmark = pytest.mark.django_db


def _plan(**kw):
    pack = CouponTemplate.objects.create(name="SVIP 月券", kind="fixed", amount=D("2"))
    base = {"name": "季卡", "months": 3, "price": D("45"), "service_discount_percent": D("10"),
            "monthly_coupon": pack, "monthly_coupon_count": 2}
    return SvipPlan.objects.create(**{**base, **kw})


def _balances():
    return {k: ledger.system_account(k).balance for k in ("operator_revenue", "wechat_clearing", "refund_in_transit")}


def _pay(fake, purchase):  # noqa: F811
    payment = Payment.objects.get(order_ref=f"svip:{purchase.pk}")
    note = fake.paid_notification(payment.out_trade_no)
    assert notify(note).status_code == 204
    return payment, note


def test_paid_with_wechat_activates_once_and_refunds_along_the_payment(fake, member):  # noqa: F811
    plan = _plan()
    started = svip.svip_pay_start(member=member, plan_id=plan.pk)
    purchase = started.purchase
    assert (purchase.status, purchase.paid_with) == ("pending", "wechat")
    assert started.pay_params["package"].startswith("prepay_id=")
    assert svip.svip_status(member).active is False and not Coupon.objects.exists()

    payment, note = _pay(fake, purchase)
    assert notify(note).status_code == 204  # WeChat notifies again: nothing more happens
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchase.posting_key == f"wx:txn:{Payment.objects.get().transaction_id}"
    assert svip.svip_status(member).active is True
    assert Coupon.objects.filter(member=member, source="svip").count() == 6  # 2 a month × 3 months
    assert Posting.objects.filter(ref=f"svip:{purchase.pk}").count() == 1
    assert _balances() == {"operator_revenue": D("45.00"), "wechat_clearing": D("45.00"), "refund_in_transit": 0}
    assert ledger_selectors.wallet_balance(member).cash == 0  # not a top-up

    svip.svip_refund(purchase_id=purchase.pk, member=member)
    purchase.refresh_from_db()
    assert purchase.status == "refunded" and svip.svip_status(member).active is False
    assert set(Coupon.objects.values_list("status", flat=True)) == {"void"}
    refund = PaymentRefund.objects.get(payment=payment)
    assert (refund.out_refund_no, refund.amount) == (f"SV{purchase.pk}", D("45.00"))
    assert _balances()["refund_in_transit"] == D("45.00")
    payments.payment_refund_submit(refund_id=refund.pk)
    done = fake.server.complete_refund(refund.out_refund_no, deliver=False)["notification"]
    assert notify(done, kind="refund").status_code == 204
    assert _balances() == {"operator_revenue": 0, "wechat_clearing": 0, "refund_in_transit": 0}
    with pytest.raises(MarketingError) as err:
        svip.svip_refund(purchase_id=purchase.pk, member=member)
    assert err.value.code == "svip_not_refundable"
    assert PaymentRefund.objects.count() == 1


def test_a_wechat_renewal_starts_when_the_current_period_ends(fake, funded_member):  # noqa: F811
    plan = _plan(monthly_coupon=None, monthly_coupon_count=0)
    first = svip.svip_buy(member=funded_member, plan_id=plan.pk)  # from the wallet
    second = svip.svip_pay_start(member=funded_member, plan_id=plan.pk).purchase
    _pay(fake, second)
    second.refresh_from_db()
    assert second.starts_at == first.ends_at and second.status == "paid"
    assert svip.svip_status(funded_member).ends_at == second.ends_at


def test_a_used_purchase_is_not_refunded(fake, member):  # noqa: F811
    purchase = svip.svip_pay_start(member=member, plan_id=_plan().pk).purchase
    _pay(fake, purchase)
    SvipPurchase.objects.filter(pk=purchase.pk).update(discount_total=D("0.50"))
    with pytest.raises(MarketingError) as err:
        svip.svip_refund(purchase_id=purchase.pk, member=member)
    assert err.value.code == "svip_not_refundable"
    assert not PaymentRefund.objects.exists() and _balances()["refund_in_transit"] == 0


def test_money_for_a_purchase_that_cannot_activate_goes_to_the_wallet(fake, member):  # noqa: F811
    purchase = svip.svip_pay_start(member=member, plan_id=_plan().pk).purchase
    SvipPurchase.objects.filter(pk=purchase.pk).update(status="refunded")  # e.g. cancelled by staff
    _pay(fake, purchase)
    assert ledger_selectors.wallet_balance(member).cash == D("45.00")
    assert SvipPurchase.objects.get(pk=purchase.pk).status == "refunded" and not Coupon.objects.exists()


def test_driver_api_wechat_pay(fake, member_api):  # noqa: F811
    plan = _plan()
    r = member_api.post("/api/app/v1/svip/wechat-pay", {"plan_id": plan.pk}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["purchase"]["status"] == "pending" and body["purchase"]["paid_with"] == "wechat"
    assert set(body["pay_params"]) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    r = member_api.post("/api/app/v1/svip/wechat-pay", {"plan_id": 999999}, format="json")
    assert r.status_code == 404 and r.json()["code"] == "svip_plan_not_found"
    r = member_api.post("/api/app/v1/svip/wechat-pay", {"plan_id": "x"}, format="json")
    assert r.status_code == 400
    assert SvipPurchase.objects.count() == 1


def test_a_coupon_bought_with_wechat_pay_is_granted_once(fake, member_api):  # noqa: F811
    member = member_api.member
    template = CouponTemplate.objects.create(name="5元券", kind="fixed", amount=D("5"), price=D("3.90"),
                                             total_quantity=1, claimable=True)
    # A priced coupon shown in the claim centre is bought, never claimed for nothing.
    r = member_api.post("/api/app/v1/coupons/claim", {"template_id": template.pk}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "coupon_for_sale"
    r = member_api.post("/api/app/v1/coupons/buy", {"template_id": template.pk}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["purchase"]["status"] == "pending" and not Coupon.objects.exists()
    payment = Payment.objects.get(order_ref=f"coupon:{r.json()['purchase']['id']}")
    note = fake.paid_notification(payment.out_trade_no)
    assert notify(note).status_code == 204 and notify(note).status_code == 204
    coupon = Coupon.objects.get()
    assert (coupon.member_id, coupon.source) == (member.pk, "bought")
    assert _balances()["operator_revenue"] == D("3.90") and ledger_selectors.wallet_balance(member).cash == 0
    unsold = CouponTemplate.objects.create(name="不卖", kind="fixed", amount=D("5"))
    r = member_api.post("/api/app/v1/coupons/buy", {"template_id": unsold.pk}, format="json")
    assert r.status_code == 404 and r.json()["code"] == "coupon_not_found"
    r = member_api.post("/api/app/v1/coupons/buy", {"template_id": template.pk}, format="json")
    assert r.status_code == 400 and r.json()["code"] in ("coupon_limit", "coupon_sold_out")


def test_a_coupon_sold_out_before_the_payment_arrives_credits_the_wallet(fake, member):  # noqa: F811
    from marketing import coupons

    template = CouponTemplate.objects.create(name="限量券", kind="fixed", amount=D("5"), price=D("2"),
                                             total_quantity=1)
    started = coupons.coupon_pay_start(member=member, template_id=template.pk)
    CouponTemplate.objects.filter(pk=template.pk).update(issued=1)  # the last one went elsewhere
    payment = Payment.objects.get(order_ref=f"coupon:{started.purchase.pk}")
    assert notify(fake.paid_notification(payment.out_trade_no)).status_code == 204
    started.purchase.refresh_from_db()
    assert started.purchase.status == "credited" and not Coupon.objects.exists()
    assert ledger_selectors.wallet_balance(member).cash == D("2.00")
