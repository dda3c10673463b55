"""Races on committed data, in an operator made for this module (dropped afterwards): real
threads, each with its own database connection and transaction."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from marketing import cards, coupons, scratch
from marketing.common import MarketingError
from marketing.models import (
    Coupon,
    CouponTemplate,
    PointCardBatch,
    ScratchCampaign,
    ScratchCard,
    ScratchPrize,
)
from settlement import selectors as ledger_selectors

D = Decimal
SLUG = "mkt-live"
N = 50


@pytest.fixture(scope="module")
def live(operators, django_db_blocker):
    from accounts.models import Member
    from tenants.services import operator_create

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        operator = operator_create(slug=SLUG, name="营销并发", domain=f"{SLUG}.testserver",
                                   admin_username="admin", admin_password="admin-pass-123").operator
        with tenant_context(operator):
            operator.members = [Member.objects.create(openid=f"openid-mkt-{i}") for i in range(N)]
        try:
            yield operator
        finally:
            connection.set_schema_to_public()
            operator.delete(force_drop=True)


def _race(operator, func, args_list):
    def run(args):
        try:
            with tenant_context(operator):
                return func(*args)
        except MarketingError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(run, args_list))


def test_setup_needs_the_database(db, tenant):
    assert connection.schema_name  # (makes pytest-django set up the test database when run alone)


def test_50_concurrent_claims_of_a_10_unit_coupon_grant_exactly_10(live, django_db_blocker):
    with django_db_blocker.unblock(), tenant_context(live):
        template = CouponTemplate.objects.create(name="限量10张", amount=D("5"), claimable=True, total_quantity=10)
        results = _race(live, lambda m: coupons.coupon_claim(member=m, template_id=template.pk),
                        [(m,) for m in live.members])
        assert sum(isinstance(r, Coupon) for r in results) == 10
        assert results.count("coupon_sold_out") == N - 10
        assert Coupon.objects.filter(template=template).count() == 10
        assert CouponTemplate.objects.get(pk=template.pk).issued == 10


def test_50_concurrent_redemptions_of_one_point_card_credit_once(live, django_db_blocker):
    with django_db_blocker.unblock(), tenant_context(live):
        batch = PointCardBatch.objects.create(name="并发卡", face_value=D("50"), count=1)
        [(number, pin)] = cards.batch_generate(batch_id=batch.pk)
        cards.batch_set_status(batch_id=batch.pk, status="active")
        results = _race(live, lambda m: cards.card_redeem(member=m, number=number, pin=pin),
                        [(m,) for m in live.members])
        assert sum(not isinstance(r, str) for r in results) == 1
        assert results.count("card_used") == N - 1
        total = sum((ledger_selectors.wallet_balance(m).cash for m in live.members), D("0"))
        assert total == D("50.00")
        assert ledger_selectors.ledger_check().ok


def test_a_scratch_campaign_never_exceeds_its_budget_under_concurrency(live, django_db_blocker):
    with django_db_blocker.unblock(), tenant_context(live):
        now = timezone.now()
        campaign = ScratchCampaign.objects.create(name="并发刮刮乐", starts_at=now - timedelta(hours=1),
                                                  ends_at=now + timedelta(hours=1), budget=D("7.00"),
                                                  per_member_limit=5)
        ScratchPrize.objects.create(campaign=campaign, name="2元", kind="bonus", weight=10000, stock=100,
                                    bonus=D("2"), cost=D("2"))
        made = [ScratchCard.objects.create(campaign=campaign, member=m, source_ref=f"o-{m.pk}") for m in live.members]
        results = _race(live, lambda m, c: scratch.scratch(member=m, card_id=c.pk),
                        [(c.member, c) for c in made])
        won = [r for r in results if not isinstance(r, str) and r.prize_id]
        assert len(won) == 3  # ¥6 of the ¥7 budget; the 4th ¥2 prize would exceed it
        assert ScratchCampaign.objects.get(pk=campaign.pk).spent == D("6.00")
        bonus = sum((ledger_selectors.wallet_balance(m).bonus for m in live.members), D("0"))
        assert bonus == D("6.00")
        assert ledger_selectors.ledger_check().ok


def test_one_coupon_chosen_for_two_orders_at_once_goes_to_one(live, django_db_blocker):
    with django_db_blocker.unblock(), tenant_context(live):
        member = live.members[0]
        template = CouponTemplate.objects.create(name="抢用", amount=D("1"))
        coupon = coupons.coupon_grant(template_id=template.pk, member=member, source="staff")[0]
        results = _race(live, lambda ref: coupons.coupon_choose(member=member, coupon_id=coupon.pk, order_ref=ref),
                        [(f"ORDER{i}",) for i in range(20)])
        assert sum(isinstance(r, Coupon) for r in results) == 1
        assert results.count("coupon_unavailable") == 19
