"""Rewards: coupons after a top-up tier (through the fake WeChat Pay), and invite-a-friend
rewards on the invitee's first settled charge, with their anti-abuse limits."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Member
from billing.payments import services as payments
from billing.payments.tests.conftest import notify
from charging.tests.money import wallet_credit
from marketing import rewards
from marketing.common import MarketingError
from marketing.models import (
    Coupon,
    CouponTemplate,
    PointsEntry,
    Referral,
    ReferralProgram,
    TopUpReward,
)
from marketing.points import points_balance
from settlement import selectors as ledger_selectors

from .helpers import settled_order

D = Decimal
pytestmark = pytest.mark.django_db


def _template(name, amount="5"):
    return CouponTemplate.objects.create(name=name, kind="fixed", amount=D(amount), total_quantity=100)


def _top_up(fake, member, amount):  # noqa: F811
    started = payments.top_up_create(member=member, amount=D(amount))
    note = fake.paid_notification(started.payment.out_trade_no)
    assert notify(note).status_code == 204
    return note


def test_the_highest_top_up_tier_reached_grants_its_coupons_once(fake, member):  # noqa: F811
    small, big = _template("充50送5元券"), _template("充100送10元券", "10")
    TopUpReward.objects.create(min_amount=D("50"), coupon=small)
    TopUpReward.objects.create(min_amount=D("100"), coupon=big, count=2)
    TopUpReward.objects.create(min_amount=D("10"), coupon=small, active=False)
    note = _top_up(fake, member, "120")
    assert notify(note).status_code == 204  # a repeated notification rewards nothing more
    got = list(Coupon.objects.filter(member=member).values_list("template__name", "source"))
    assert got == [("充100送10元券", "reward")] * 2
    _top_up(fake, member, "30")  # below every active tier
    assert Coupon.objects.filter(member=member).count() == 2
    _top_up(fake, member, "50")
    assert Coupon.objects.filter(member=member, template=small).count() == 1
    assert ledger_selectors.wallet_balance(member).cash == D("200.00")
    assert ledger_selectors.ledger_check().ok


def test_a_sold_out_tier_coupon_is_no_reward_but_the_top_up_counts(fake, member):  # noqa: F811
    gone = CouponTemplate.objects.create(name="已领完", kind="fixed", amount=D("5"), total_quantity=0)
    TopUpReward.objects.create(min_amount=D("10"), coupon=gone)
    _top_up(fake, member, "20")
    assert not Coupon.objects.exists() and ledger_selectors.wallet_balance(member).cash == D("20.00")


def _program(**kw):
    base = {"active": True, "inviter_coupon": _template("邀请人券"), "invitee_coupon": _template("新人券"),
            "inviter_points": 100, "min_first_order": D("5")}
    return ReferralProgram.objects.create(**{**base, **kw})


def _invitee(n=1, **kw):
    member = Member.objects.create(openid=f"openid-invitee-{n}", nickname=f"好友{n}", **kw)
    wallet_credit(member, D("100"))
    return member


def test_both_sides_are_rewarded_once_after_the_invitees_first_charge(member, connector, tariff):
    _program()
    code = rewards.referral_code_for(member).code
    assert rewards.referral_code_for(member).code == code and len(code) == 8
    friend = _invitee()
    referral = rewards.referral_bind(member=friend, code=code.lower())
    assert referral.status == "pending"
    settled_order(friend, connector)  # pays 15.00
    referral.refresh_from_db()
    assert referral.status == "rewarded" and referral.order_ref
    assert list(Coupon.objects.filter(member=friend).values_list("template__name", "source_ref")) == [
        ("新人券", f"ref:{referral.pk}")]
    assert list(Coupon.objects.filter(member=member).values_list("template__name", flat=True)) == ["邀请人券"]
    assert points_balance(member) == 100
    assert PointsEntry.objects.filter(kind="referral").count() == 1
    settled_order(friend, connector)  # a second charge rewards nobody
    assert Coupon.objects.count() == 2 and points_balance(member) == 100
    assert ledger_selectors.ledger_check().ok


def test_binding_refusals(member, connector, tariff):
    code = rewards.referral_code_for(member).code
    friend = _invitee()
    with pytest.raises(MarketingError) as err:
        rewards.referral_bind(member=friend, code=code)
    assert err.value.code == "referral_inactive"
    _program()
    for who, given, expected in (
        (member, code, "referral_self"),
        (friend, "NOSUCH00", "referral_code_invalid"),
    ):
        with pytest.raises(MarketingError) as err:
            rewards.referral_bind(member=who, code=given)
        assert err.value.code == expected
    rewards.referral_bind(member=friend, code=code)
    with pytest.raises(MarketingError) as err:
        rewards.referral_bind(member=friend, code=rewards.referral_code_for(_invitee(2)).code)
    assert (err.value.code, err.value.status) == ("referral_exists", 409)
    old = _invitee(3)
    Member.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    with pytest.raises(MarketingError) as err:
        rewards.referral_bind(member=old, code=code)
    assert err.value.code == "referral_too_late"
    charged = _invitee(4)
    settled_order(charged, connector)
    with pytest.raises(MarketingError) as err:
        rewards.referral_bind(member=charged, code=code)
    assert err.value.code == "referral_too_late"
    Member.objects.filter(pk=member.pk).update(phone="13800000000")
    twin = _invitee(5, phone="13800000000")
    with pytest.raises(MarketingError) as err:
        rewards.referral_bind(member=twin, code=code)
    assert err.value.code == "referral_same_phone"
    assert list(Referral.objects.values_list("invitee", flat=True)) == [friend.pk]


def test_the_monthly_cap_and_the_minimum_first_charge_refuse_rewards(member, connector, tariff):
    _program(max_rewards_per_month=1, min_first_order=D("10"))
    code = rewards.referral_code_for(member).code
    first, second, small = _invitee(1), _invitee(2), _invitee(3)
    for friend in (first, second, small):
        rewards.referral_bind(member=friend, code=code)
    settled_order(small, connector, kwh="2")  # pays 3.00 < 10.00
    settled_order(first, connector)
    settled_order(second, connector)  # over the inviter's monthly cap
    got = dict(Referral.objects.values_list("invitee", "status"))
    assert got == {first.pk: "rewarded", second.pk: "refused", small.pk: "refused"}
    assert "monthly" in Referral.objects.get(invitee=second).reason
    assert Coupon.objects.filter(member=member).count() == 1 and points_balance(member) == 100
    assert not Coupon.objects.filter(member__in=[second, small]).exists()


def test_driver_api_referral(member_api):
    _program()
    r = member_api.get("/api/app/v1/referral")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["path"] == f"pages/index/index?invite={body['code']}" and body["invited"] == 0
    assert (body["invitee_coupon"], body["inviter_points"], body["invited_by"]) == ("新人券", 100, None)
    r = member_api.post("/api/app/v1/referral/bind", {"code": body["code"]}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "referral_self"
    r = member_api.post("/api/app/v1/referral/bind", {"code": "ZZZZZZZZ"}, format="json")
    assert r.status_code == 404 and r.json()["code"] == "referral_code_invalid"
    r = member_api.post("/api/app/v1/referral/bind", {}, format="json")
    assert r.status_code == 400
    assert not Referral.objects.exists()
