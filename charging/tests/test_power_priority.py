"""Sharing a station's power by priority (SVIP, fleet, leaving soon) or equally, per station;
the caps never add up to more than the limit, whatever arrives and leaves."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging import services
from charging.models import ChargingOrder, OrderState
from charging.tests.test_scheduling import FakeBus, make_pile, running_order

D = Decimal


@pytest.fixture
def fake_bus(monkeypatch):
    from charging import bus

    fake = FakeBus()
    monkeypatch.setattr(bus, "send", fake.send)
    return fake


def _member(openid, *, svip=False, fleet=""):
    from accounts.models import Member
    from marketing.models import SvipPlan, SvipPurchase

    member = Member.objects.create(openid=openid, nickname=openid, fleet=fleet)
    if svip:
        plan = SvipPlan.objects.create(name="SVIP", months=1, price=D("30"))
        now = timezone.now()
        SvipPurchase.objects.create(member=member, plan=plan, amount=D("30"),
                                    starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=29))
    return member


def _caps(plan):
    return {row["pile"]: D(row["cap_kw"]) for row in plan.caps}


def test_equal_sharing_ignores_priority(station, fake_bus):
    station.max_power_kw = D("120")
    station.save()
    a, b = make_pile(station), make_pile(station)
    running_order(a, _member("o-svip", svip=True))
    running_order(b, _member("o-plain"))
    plan = services.station_power_plan(station_id=station.pk)
    assert _caps(plan) == {a.code: D("60.0"), b.code: D("60.0")}
    assert {row["weight"] for row in plan.caps} == {"1"}


@pytest.mark.parametrize("standing", ["svip", "fleet", "departure"])
def test_priority_sharing_gives_the_weighted_pile_more(station, fake_bus, standing):
    station.max_power_kw = D("120")
    station.power_sharing = "priority"
    station.save()
    a, b = make_pile(station), make_pile(station)
    first = running_order(a, _member("o-a", svip=standing == "svip",
                                     fleet="顺丰车队" if standing == "fleet" else ""))
    if standing == "departure":
        services.order_departure_set(order_id=first.pk,
                                     departure_at=timezone.now() + timedelta(minutes=30))
    running_order(b, _member("o-b"))
    plan = services.station_power_plan(station_id=station.pk)
    weight = {"svip": D("2"), "fleet": D("2"), "departure": D("3")}[standing]
    # Floors 36 + 36 kW; the 48 kW left shared weight : 1.
    share = (D("48") * weight / (weight + 1)).quantize(D("0.1"), "ROUND_DOWN")
    assert _caps(plan)[a.code] == D("36") + share
    assert _caps(plan)[a.code] + _caps(plan)[b.code] <= D("120")
    row = next(r for r in plan.caps if r["pile"] == a.code)
    assert row["priority"] == [standing] and D(row["weight"]) == weight


def test_a_departure_far_ahead_is_no_priority(station, fake_bus):
    station.max_power_kw = D("120")
    station.power_sharing = "priority"
    station.save()
    a, b = make_pile(station), make_pile(station)
    order = running_order(a, _member("o-a"))
    services.order_departure_set(order_id=order.pk, departure_at=timezone.now() + timedelta(hours=3))
    running_order(b, _member("o-b"))
    assert set(_caps(services.station_power_plan(station_id=station.pk)).values()) == {D("60.0")}


def test_departure_api(station, member_api, member, fake_bus):
    pile = make_pile(station)
    order = running_order(pile, member)
    url = f"/api/app/v1/orders/{order.pk}/departure"
    at = (timezone.now() + timedelta(minutes=40)).isoformat()
    r = member_api.post(url, {"departure_at": at}, format="json")
    assert r.status_code == 200 and r.json()["departure_at"] is not None
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    r = member_api.post(url, {"departure_at": past}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "departure_invalid"
    r = member_api.post(url, {"departure_at": "soon"}, format="json")
    assert r.status_code == 400
    assert member_api.post(url, {"departure_at": None}, format="json").json()["departure_at"] is None
    ChargingOrder.objects.filter(pk=order.pk).update(state=OrderState.SETTLED)
    r = member_api.post(url, {"departure_at": at}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "order_not_active"
    stranger = ChargingOrder.objects.exclude(member=member).first()
    assert stranger is None or member_api.post(
        f"/api/app/v1/orders/{stranger.pk}/departure", {"departure_at": at}, format="json"
    ).status_code == 404


standings = st.sampled_from(["plain", "svip", "fleet", "departure"])
steps = st.lists(st.tuples(st.booleans(), st.sampled_from(["60", "120", "160"]), standings),
                 min_size=1, max_size=14)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(limit=st.sampled_from([D("90"), D("200"), D("350")]), sharing=st.sampled_from(["equal", "priority"]),
       steps=steps)
def test_every_replan_over_random_arrivals_and_departures_with_priorities_stays_under_the_limit(
        station, fake_bus, limit, sharing, steps):
    """Sessions arrive (admitted only when the station's power admits them, as a start is)
    and leave at random, with random standings; after every re-plan the caps the piles hold
    add up to no more than the limit, every served pile holds at least its floor, and under
    priority sharing a heavier pile of the same rating never gets less than a lighter one
    unless it is at its ceiling."""
    with transaction.atomic():
        station.max_power_kw = limit
        station.power_sharing = sharing
        station.save()
        running: list[ChargingOrder] = []
        for n, (arrives, rating, standing) in enumerate(steps):
            if arrives or not running:
                pile = make_pile(station, rated=rating, status="plugged")
                if not services.power_admits(station=station, pile=pile):
                    continue  # this car queues
                member = _member(f"o-h-{n}-{pile.pk}", svip=standing == "svip",
                                 fleet="车队" if standing == "fleet" else "")
                order = running_order(pile, member)
                if standing == "departure":
                    ChargingOrder.objects.filter(pk=order.pk).update(
                        departure_at=timezone.now() + timedelta(minutes=10))
                running.append(order)
            else:
                ended = running.pop(n % len(running))
                ChargingOrder.objects.filter(pk=ended.pk).update(state=OrderState.SETTLED)
            plan = services.station_power_plan(station_id=station.pk, reason="property")
            assert plan.total_kw <= limit
            held = [D(row["believed_kw"]) for row in plan.caps]
            assert sum(held, D(0)) <= limit
            assert not plan.unserved  # admitted sessions always keep their floor
            rows = {row["pile"]: row for row in plan.caps}
            piles = {o.pile.code: o.pile for o in running}
            for code, row in rows.items():
                assert D(row["cap_kw"]) >= piles[code].rated_power_kw * D("0.3")
            if sharing == "priority":
                for x in rows.values():
                    for y in rows.values():
                        px, py = piles[x["pile"]], piles[y["pile"]]
                        if (px.rated_power_kw == py.rated_power_kw
                                and D(x["weight"]) > D(y["weight"])
                                and D(x["cap_kw"]) < px.rated_power_kw):
                            assert D(x["cap_kw"]) >= D(y["cap_kw"])
        transaction.set_rollback(True)
