"""The SVIP priority-reservation benefit where charging decides: a station's queue serves
priority members first (first come, first served among them), in positions and offers."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import priority as standings
from accounts.models import Member
from charging import services
from charging.models import ChargingOrder, OrderState
from charging.tests.money import wallet_credit
from charging.tests.test_scheduling import make_pile, running_order, set_status
from marketing import svip
from marketing.models import SvipPlan, SvipPurchase

D = Decimal
pytestmark = pytest.mark.django_db


def _member(n, plan=None):
    member = Member.objects.create(openid=f"openid-prio-{n}", nickname=f"车主{n}")
    if plan is not None:
        wallet_credit(member, D("50"))
        svip.svip_buy(member=member, plan_id=plan.pk)
    return member


def test_priority_members_are_offered_the_freed_connector_first(station):
    priority = SvipPlan.objects.create(name="尊享", months=1, price=D("30"), priority_reservation=True)
    plain_plan = SvipPlan.objects.create(name="普通", months=1, price=D("20"))
    pile = make_pile(station)
    order = running_order(pile)
    early = services.queue_join(member=_member(1), station=station, kind="dc")
    svip_plain = services.queue_join(member=_member(2, plain_plan), station=station, kind="dc")
    vip = services.queue_join(member=_member(3, priority), station=station, kind="dc")
    vip2 = services.queue_join(member=_member(4, priority), station=station, kind="")
    positions = [services.queue_status(e).position for e in (early, svip_plain, vip, vip2)]
    assert positions == [3, 4, 1, 2]
    assert standings.members_with(standings.PRIORITY_RESERVATION,
                                  {early.member_id, vip.member_id, vip2.member_id},
                                  timezone.now()) == {vip.member_id, vip2.member_id}
    ChargingOrder.objects.filter(pk=order.pk).update(state=OrderState.SETTLED)
    set_status(pile, "idle")
    offered = services.queue_offer(station_id=station.pk)
    assert [e.pk for e in offered] == [vip.pk]


def test_an_ended_membership_loses_its_place(station):
    priority = SvipPlan.objects.create(name="尊享", months=1, price=D("30"), priority_reservation=True)
    pile = make_pile(station)
    running_order(pile)
    early = services.queue_join(member=_member(1), station=station)
    vip = services.queue_join(member=_member(2, priority), station=station)
    assert services.queue_status(vip).position == 1
    SvipPurchase.objects.filter(member_id=vip.member_id).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert [services.queue_status(e).position for e in (early, vip)] == [1, 2]
    assert standings.members_with(standings.PRIORITY_RESERVATION, [vip.member_id],
                                  timezone.now()) == set()
