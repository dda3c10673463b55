"""The demo's load management, end to end on simulated YKC piles behind the real gateway:
a 200 kW station with two 120 kW DC piles of two 60 kW guns each (琶洲 in demo/seed.py).
Four sessions get 50 kW each (each pile capped at 100 kW by 0x52 — 83 % of 120 kW — and
its two guns sharing it), the draw measured from the piles stays under 200 kW all along,
and a fifth car finds no DC connector free: it joins the queue, first in line."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from charging import bus
from protocols.ykc.simulator import SimulatedPile

from .conftest import SCHEMA
from .helpers import in_schema, station_with_limit, wait_for
from .test_ykc_simulator import sims  # noqa: F401

D = Decimal
LIMIT = D("200")


@pytest.fixture
def demo_station(unblocked, operators):
    from accounts.models import Member

    member = None
    try:
        with station_with_limit(operators["tenant-a"], name="琶洲演示站", station_prefix="HZ",
                                pile_prefix="4401", limit=LIMIT, piles=2, connectors=2,
                                pile_kw=D("120")) as (station, codes):
            member = in_schema(lambda: Member.objects.create(
                openid=f"openid-demo5-{codes[0][4:11]}", nickname="第五位车主"))
            yield station, codes, member
    finally:
        if member is not None:  # after its orders went with the station
            in_schema(member.delete)


def _start(station_id: int, code: str, connector_no: int, n: int) -> str:
    from datetime import timedelta

    from billing.tariffs import pricing
    from charging import services
    from charging.models import ChargingOrder
    from stations.models import Pile

    pile = Pile.objects.get(code=code)
    now = timezone.now()
    order = ChargingOrder.objects.create(
        tariff_snapshot=pricing.flat_tariff(D("1.0"), D("0.5")).to_dict(),
        number=f"CDHZ{code[-10:]}{n:02d}", connector=pile.connectors.get(number=connector_no),
        pile=pile, station_id=station_id,
        trade_no=f"{code}{connector_no:02d}{now:%y%m%d%H%M%S}{n:04d}", mode="wallet",
        state="starting", start_deadline=now + timedelta(minutes=5),
        hold_amount=D("500.00"))  # funds held as order_create does (none: a balance stop)
    return services.order_start_send(order_id=order.pk)


def _states(station_id: int) -> list[str]:
    from charging.models import ChargingOrder

    return list(ChargingOrder.objects.filter(station_id=station_id).values_list("state", flat=True))


def _measured(codes) -> dict[tuple[str, int], D]:
    from stations import live

    keys = [(code, n) for code in codes for n in (1, 2)]
    rows = live.connectors_get(SCHEMA, keys)
    return {k: D(rows[k]["power_kw"]) for k in keys
            if k in rows and rows[k].get("status") == "charging" and rows[k].get("power_kw")}


def _plan(station_id: int) -> dict:
    from charging.models import PowerPlan

    plan = PowerPlan.objects.filter(station_id=station_id).first()
    return {row["pile"]: row.get("cap_kw") for row in plan.caps} if plan else {}


def _fifth_car(station, member) -> tuple[str, int | None]:
    from charging import services

    entry = services.queue_join(member=member, station=station, kind="dc")
    return entry.state, services.queue_status(entry).position


def test_demo_four_sessions_get_50_kw_each_and_a_fifth_car_queues(
        demo_station, gateway, sims):  # noqa: F811
    station, codes, member = demo_station
    piles = [SimulatedPile(code, "127.0.0.1", gateway.port, connectors=2, time_scale=30,
                           power_kw=120) for code in codes]
    for pile in piles:
        sims.run(pile)
    for pile in piles:
        wait_for(lambda p=pile: p.events and bus._redis().get(bus.route_key(SCHEMA, p.pile_code)),
                 timeout=60)
        for n in (1, 2):
            sims.call(pile.plug, n)
    drawn: list[D] = []
    stop = threading.Event()

    def draw_now() -> D:
        return sum((p.session_power_kw() * sum(1 for c in p.connectors.values() if c.session)
                    for p in piles), D(0))

    def sampler():
        while not stop.is_set():
            drawn.append(sims.call(draw_now))
            time.sleep(0.02)

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    n = 0
    for code in codes:
        for connector_no in (1, 2):
            n += 1
            assert in_schema(_start, station.pk, code, connector_no, n) == "sent"
            try:
                wait_for(lambda k=n: in_schema(_states, station.pk).count("charging") == k,
                         timeout=90)
            except AssertionError:
                raise AssertionError(f"start {n}: orders {in_schema(_states, station.pk)}, "
                                     f"plan {in_schema(_plan, station.pk)}") from None
    assert in_schema(_plan, station.pk) == {codes[0]: "100.0", codes[1]: "100.0"}
    assert [p.max_power_percent for p in piles] == [83, 83]  # 99.6 kW: two guns × 49.8

    deadline = time.monotonic() + 60
    measured = {}
    while time.monotonic() < deadline:
        gateway.flush()
        measured = in_schema(_measured, codes)
        if len(measured) == 4 and all(D("49.5") <= kw <= D("50") for kw in measured.values()):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"not 4 × 50 kW: {measured}")
    stop.set()
    watcher.join(5)
    assert len(drawn) > 20 and max(drawn) <= LIMIT
    # A fifth car: every DC gun is taken, so it queues (first in line).
    assert in_schema(_fifth_car, station, member) == ("waiting", 1)
