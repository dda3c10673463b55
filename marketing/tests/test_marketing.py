"""Coupons and SVIP on real settled orders (ledger clean), refunds, points and the mall,
scratch cards, point cards, and the driver API."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from charging.services import staff
from marketing import cards, coupons, hooks, mall, points, scratch, svip
from marketing.common import MarketingError
from marketing.models import (
    Coupon,
    CouponTemplate,
    MallItem,
    MallRedemption,
    PointCardBatch,
    PointsEntry,
    ScratchCampaign,
    ScratchPrize,
    SvipPlan,
)
from settlement import selectors as ledger_selectors
from settlement.models import Account

from .helpers import settled_order

D = Decimal
pytestmark = pytest.mark.django_db


def _ledger_ok():
    report = ledger_selectors.ledger_check()
    assert report.ok, report


def _template(**kw):
    base = {"name": "满10减3", "kind": "threshold", "amount": D("3"), "threshold": D("10"), "claimable": True}
    return CouponTemplate.objects.create(**{**base, **kw})


def _plan(**kw):
    base = {"name": "月卡", "months": 1, "price": D("20"), "service_discount_percent": D("10")}
    return SvipPlan.objects.create(**{**base, **kw})


def test_a_coupon_and_the_svip_discount_on_one_bill_with_the_ledger_clean(funded_member, connector, tariff):
    plan = _plan()
    svip.svip_buy(member=funded_member, plan_id=plan.pk)  # ¥20 from the wallet
    coupons.coupon_claim(member=funded_member, template_id=_template().pk)
    order = settled_order(funded_member, connector)  # 10 kWh: ¥10 electricity + ¥5 service
    assert order.electricity_amount + order.service_amount == D("15.00")
    assert order.discount_amount == D("3.50")  # SVIP 10% of ¥5 + ¥3 coupon
    assert order.total_amount == order.paid_amount == D("11.50")
    assert [(x["kind"], x["amount"]) for x in order.bill["discounts"]] == [("svip", "0.50"), ("coupon", "3.00")]
    coupon = Coupon.objects.get(member=funded_member)
    assert (coupon.status, coupon.order_ref, coupon.used_amount) == ("used", order.number, D("3.00"))
    assert ledger_selectors.wallet_balance(funded_member).available == D("100") - D("20") - D("11.50")
    promotion = Account.objects.get(kind=Account.Kind.PROMOTION)
    assert promotion.balance == D("3.50")
    _ledger_ok()
    assert points.points_balance(funded_member) == 11  # 1 point per yuan paid, rounded down
    assert points.points_verify().ok


def test_the_best_coupon_is_used_unless_the_driver_chose_one(funded_member, connector, tariff):
    small = coupons.coupon_grant(template_id=_template(name="减1", kind="fixed", amount=D("1")).pk,
                                 member=funded_member, source="staff")[0]
    big = coupons.coupon_grant(template_id=_template(name="服务费5折", kind="percent", percent=D("50"),
                                                     base="service").pk, member=funded_member, source="staff")[0]
    order = settled_order(funded_member, connector)
    assert order.discount_amount == D("2.50")
    big.refresh_from_db()
    assert big.status == "used"

    order = settled_order(
        funded_member, connector,
        order_hook=lambda o: coupons.coupon_choose(member=funded_member, coupon_id=small.pk, order_ref=o.number),
    )
    assert order.discount_amount == D("1.00")
    small.refresh_from_db()
    assert small.status == "used" and small.order_ref == order.number
    _ledger_ok()


def test_out_of_scope_coupons_are_not_applied(funded_member, connector, tariff):
    coupons.coupon_grant(template_id=_template(current="ac").pk, member=funded_member, source="staff")
    coupons.coupon_grant(template_id=_template(threshold=D("50")).pk, member=funded_member, source="staff")
    order = settled_order(funded_member, connector)
    assert order.discount_amount == D("0.00") and order.paid_amount == D("15.00")


def test_a_coupon_that_does_not_stack_is_weighed_against_svip(funded_member, connector, tariff):
    svip.svip_buy(member=funded_member, plan_id=_plan(service_discount_percent=D("80")).pk)  # ¥4.00 off service
    coupons.coupon_grant(template_id=_template(stacks_with_svip=False).pk, member=funded_member, source="staff")
    order = settled_order(funded_member, connector)
    assert [x["kind"] for x in order.bill["discounts"]] == ["svip"]
    assert order.discount_amount == D("4.00")
    assert Coupon.objects.get(member=funded_member).status == "available"


def test_a_refunded_order_gives_its_coupon_and_points_back(funded_member, connector, tariff, django_user_model):
    coupons.coupon_claim(member=funded_member, template_id=_template().pk)
    order = settled_order(funded_member, connector)
    assert points.points_balance(funded_member) == 12
    user = django_user_model.objects.create_user("ops")
    staff.order_refund_partial(order_id=order.pk, amount=D("6.00"), user=user, reason="部分退款")
    assert points.points_balance(funded_member) == 6
    assert Coupon.objects.get(member=funded_member).status == "used"
    staff.order_refund_partial(order_id=order.pk, amount=D("6.00"), user=user, reason="全部退款")
    coupon = Coupon.objects.get(member=funded_member)
    assert (coupon.status, coupon.order_ref, coupon.used_amount) == ("available", "", D("0.00"))
    assert coupon.template.__class__.objects.get(pk=coupon.template_id).spent == D("0.00")
    assert points.points_balance(funded_member) == 0
    assert Account.objects.get(kind=Account.Kind.PROMOTION).balance == D("0.00")
    assert ledger_selectors.wallet_balance(funded_member).available == D("100.00")
    _ledger_ok()
    assert points.points_verify().ok


def test_claims_respect_the_member_limit_and_the_stock(member, tenant):
    template = _template(total_quantity=2, per_member_limit=1)
    coupons.coupon_claim(member=member, template_id=template.pk)
    with pytest.raises(MarketingError) as err:
        coupons.coupon_claim(member=member, template_id=template.pk)
    assert err.value.code == "coupon_limit"
    from accounts.models import Member

    other, third = (Member.objects.create(openid=f"o-{i}") for i in range(2))
    coupons.coupon_claim(member=other, template_id=template.pk)
    with pytest.raises(MarketingError) as err:
        coupons.coupon_claim(member=third, template_id=template.pk)
    assert err.value.code == "coupon_sold_out"
    assert coupons.claimable_templates(third) == []


def test_svip_renewal_coupon_pack_and_refund(funded_member, tenant):
    pack = _template(name="月度券", claimable=False, kind="fixed", amount=D("2"))
    plan = _plan(months=3, monthly_coupon=pack, monthly_coupon_count=2, price=D("50"))
    first = svip.svip_buy(member=funded_member, plan_id=plan.pk)
    second = svip.svip_buy(member=funded_member, plan_id=plan.pk)
    assert second.starts_at == first.ends_at
    assert Coupon.objects.filter(member=funded_member, source="svip").count() == 12
    assert svip.svip_status(funded_member).ends_at == second.ends_at
    assert ledger_selectors.wallet_balance(funded_member).available == D("0.00")
    with pytest.raises(MarketingError) as err:
        svip.svip_buy(member=funded_member, plan_id=plan.pk)
    assert err.value.code == "insufficient_balance"
    svip.svip_refund(purchase_id=first.pk, member=funded_member)
    second.refresh_from_db()
    assert first.starts_at < second.starts_at <= timezone.now()  # the renewal moves up to now
    assert svip.svip_status(funded_member).active
    assert ledger_selectors.wallet_balance(funded_member).available == D("50.00")
    assert Coupon.objects.filter(member=funded_member, source="svip", status="void").count() == 6
    with pytest.raises(MarketingError):
        svip.svip_refund(purchase_id=first.pk, member=funded_member)
    _ledger_ok()


def test_points_mall_coupons_bonus_and_goods(member, tenant):
    points.points_post(member=member, points=1000, kind="adjust", key="grant-1")
    coupon_item = MallItem.objects.create(name="5元券", kind="coupon", points=100, stock=1,
                                          coupon=_template(kind="fixed", amount=D("5"), claimable=False))
    bonus_item = MallItem.objects.create(name="赠送余额3元", kind="bonus", points=300, stock=5, bonus=D("3"))
    goods = MallItem.objects.create(name="车载充电线", kind="goods", points=500, stock=5)
    mall.mall_redeem(member=member, item_id=coupon_item.pk)
    with pytest.raises(MarketingError) as err:
        mall.mall_redeem(member=member, item_id=coupon_item.pk)
    assert err.value.code == "mall_sold_out"
    assert Coupon.objects.filter(member=member, source="mall").count() == 1
    mall.mall_redeem(member=member, item_id=bonus_item.pk)
    assert ledger_selectors.wallet_balance(member).bonus == D("3.00")
    with pytest.raises(MarketingError) as err:
        mall.mall_redeem(member=member, item_id=goods.pk)
    assert err.value.code == "address_required"
    shipped = mall.mall_redeem(member=member, item_id=goods.pk, recipient="张三", phone="13800000000",
                               address="广州市天河区")
    assert shipped.status == MallRedemption.Status.PENDING
    assert points.points_balance(member) == 100
    with pytest.raises(MarketingError) as err:
        mall.mall_redeem(member=member, item_id=bonus_item.pk)
    assert err.value.code == "insufficient_points"
    mall.mall_fulfil(redemption_id=shipped.pk, status="shipped", tracking_no="SF123")
    mall.mall_fulfil(redemption_id=shipped.pk, status="cancelled")
    assert points.points_balance(member) == 600
    assert MallItem.objects.get(pk=goods.pk).stock == 5
    assert points.points_verify().ok
    _ledger_ok()


def test_points_expire_oldest_first_and_entries_are_append_only(member, tenant):
    old = points.points_post(member=member, points=100, kind="earn", key="e1",
                             expires_at=timezone.now() - timedelta(days=1))
    points.points_post(member=member, points=50, kind="earn", key="e2")
    points.points_post(member=member, points=-30, kind="spend", key="s1")
    assert points.points_expire() == 70
    assert points.points_expire() == 0  # idempotent
    assert points.points_balance(member) == 50
    assert points.points_verify().ok
    with pytest.raises(DatabaseError), transaction.atomic():
        PointsEntry.objects.filter(pk=old.pk).update(points=1)


def test_a_scratch_card_after_a_charge_is_drawn_once(funded_member, connector, tariff, monkeypatch):
    campaign = ScratchCampaign.objects.create(name="充电刮刮乐", starts_at=timezone.now() - timedelta(days=1),
                                              ends_at=timezone.now() + timedelta(days=1), budget=D("10"))
    ScratchPrize.objects.create(campaign=campaign, name="2元红包", kind="bonus", weight=10000, stock=10,
                                bonus=D("2"), cost=D("2"))
    order = settled_order(funded_member, connector)
    card = scratch.ScratchCard.objects.get(member=funded_member, source_ref=order.number)
    drawn = scratch.scratch(member=funded_member, card_id=card.pk)
    assert drawn.prize.name == "2元红包"
    again = scratch.scratch(member=funded_member, card_id=card.pk)
    assert again.scratched_at == drawn.scratched_at
    assert ledger_selectors.wallet_balance(funded_member).bonus == D("2.00")
    assert ScratchCampaign.objects.get(pk=campaign.pk).spent == D("2.00")
    _ledger_ok()


def test_point_cards_generate_activate_redeem_and_throttle(member, tenant):
    from django.core.cache import cache

    cache.delete(cards._fail_key(member))  # a test database recreated reuses member ids
    batch = PointCardBatch.objects.create(name="百元卡", face_value=D("100"), count=3)
    made = cards.batch_generate(batch_id=batch.pk)
    assert len(made) == 3 and all(len(pin) == 12 for _n, pin in made)
    assert cards.batch_xlsx(batch, made)[:2] == b"PK"
    assert all(pin not in c.pin_hash for c, (_n, pin) in zip(batch.cards.order_by("pk"), made, strict=True))
    number, pin = made[0]
    with pytest.raises(MarketingError) as err:
        cards.card_redeem(member=member, number=number, pin=pin)
    assert err.value.code == "card_inactive"
    cards.batch_set_status(batch_id=batch.pk, status="active")
    cards.card_redeem(member=member, number=number, pin=pin)
    assert ledger_selectors.wallet_balance(member).cash == D("100.00")
    with pytest.raises(MarketingError) as err:
        cards.card_redeem(member=member, number=number, pin=pin)
    assert err.value.code == "card_used"
    for _i in range(cards.MAX_FAILURES):
        with pytest.raises(MarketingError) as err:
            cards.card_redeem(member=member, number=made[1][0], pin="000000000000")
        assert err.value.code == "card_invalid"
    with pytest.raises(MarketingError) as err:
        cards.card_redeem(member=member, number=made[1][0], pin=made[1][1])
    assert (err.value.code, err.value.status) == ("too_many_attempts", 429)
    _ledger_ok()


def test_driver_api(member_api, connector, tariff):
    member = member_api.member
    template = _template(current="dc")
    _template(name="交流专享", current="ac")
    r = member_api.get("/api/app/v1/coupons/claimable")
    assert r.status_code == 200 and {t["name"] for t in r.json()} == {"满10减3", "交流专享"}
    r = member_api.post("/api/app/v1/coupons/claim", {"template_id": template.pk}, format="json")
    assert r.status_code == 201, r.content
    r = member_api.post("/api/app/v1/coupons/claim", {"template_id": template.pk}, format="json",
                        HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert r.status_code == 400 and r.json()["code"] == "coupon_limit"
    member_api.post("/api/app/v1/coupons/claim",
                    {"template_id": CouponTemplate.objects.get(name="交流专享").pk}, format="json")
    r = member_api.get(f"/api/app/v1/coupons/applicable?connector_id={connector.pk}")
    assert [c["template"]["name"] for c in r.json()] == ["满10减3"]
    assert member_api.get("/api/app/v1/coupons?status=usable").json()["count"] == 2
    assert member_api.get("/api/app/v1/svip").json()["active"] is False
    r = member_api.post("/api/app/v1/svip/purchases", {"plan_id": _plan().pk}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "insufficient_balance"
    assert member_api.get("/api/app/v1/points").json()["balance"] == 0
    assert member_api.get("/api/app/v1/points/mall").status_code == 200
    r = member_api.post("/api/app/v1/point-cards/redeem", {"number": "1", "pin": "2"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "card_invalid"
    assert member_api.get("/api/app/v1/scratch-cards").json() == []
    assert member.pk


def test_the_driver_api_is_in_the_openapi_schema(client, tenant):
    schema = client.get("/api/schema/", HTTP_HOST="tenant-a.testserver", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/coupons/claimable", "/coupons/applicable", "/svip/purchases", "/points/mall/redemptions",
                 "/scratch-cards/{id}/scratch", "/point-cards/redeem"):
        assert path in schema, path


def test_hooks_without_a_member_give_nothing(tenant):
    class Anon:
        member_id = None
        number = "X1"

    assert hooks.order_discount(order=Anon(), gross=D("10")) == D("0.00")


def test_admin_pages_and_statistics(tenant, django_user_model, member):
    from django.core.management import call_command
    from django.test import Client

    user = django_user_model.objects.create_superuser("mkt-admin", password="x-pass-123")
    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(user)
    template = _template()
    coupons.coupon_claim(member=member, template_id=template.pk)
    for name in ("coupontemplate", "coupon", "svipplan", "svippurchase", "pointsentry", "mallitem",
                 "mallredemption", "scratchcampaign", "pointcardbatch", "pointcard"):
        r = client.get(f"/admin/marketing/{name}/", HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert r.status_code == 200, name
    r = client.get("/admin/marketing/coupontemplate/statistics/")
    assert r.status_code == 200 and "满10减3" in r.content.decode()
    r = client.post(f"/admin/marketing/coupontemplate/{template.pk}/grant/", {"segment": "all"})
    assert r.status_code == 302
    batch = PointCardBatch.objects.create(name="批次", face_value=D("10"), count=2)
    r = client.post("/admin/marketing/pointcardbatch/", {"action": "generate", "_selected_action": [batch.pk]})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxml")
    assert batch.cards.count() == 2
    call_command("points_verify", tenant=tenant.slug)


def test_a_coupon_chosen_at_start_through_the_orders_api(member_api, connector, tariff):
    from charging.tests.money import wallet_credit

    member = member_api.member
    wallet_credit(member, D("100"))
    small = coupons.coupon_grant(template_id=_template(name="减1", kind="fixed", amount=D("1")).pk,
                                 member=member, source="staff")[0]
    coupons.coupon_grant(template_id=_template(name="减2", kind="fixed", amount=D("2")).pk, member=member, source="staff")
    r = member_api.post("/api/app/v1/orders", {"connector_id": connector.pk, "coupon_id": 999999}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "coupon_unavailable"
    r = member_api.post("/api/app/v1/orders", {"connector_id": connector.pk, "coupon_id": small.pk}, format="json")
    assert r.status_code == 202, r.content
    small.refresh_from_db()
    assert (small.status, small.order_ref) == ("locked", r.json()["number"])
