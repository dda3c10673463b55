"""Load management end to end: simulated YKC piles behind the real gateway and the real
charging domain. A 100 kW station with three 60 kW piles: each start re-plans the station,
the caps go out as 0x52 before the start, the piles honour them, the power they draw
(sampled from all the simulated piles at one instant, all along) stays under the limit and
the power they report (0x13 voltage × current, as the gateway keeps it live) settles at
each pile's share; when a session ends, the others get its share."""

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
LIMIT = D("100")


@pytest.fixture
def limited_station(unblocked, operators):
    with station_with_limit(operators["tenant-a"], name="限功率站", station_prefix="LM",
                            pile_prefix="3202", limit=LIMIT) as made:
        yield made


def _starting_order(station_id: int, code: str, n: int) -> int:
    from datetime import timedelta

    from billing.tariffs import pricing
    from charging.models import ChargingOrder
    from stations.models import Pile

    pile = Pile.objects.get(code=code)
    now = timezone.now()
    return ChargingOrder.objects.create(
        tariff_snapshot=pricing.flat_tariff(D("1.0"), D("0.5")).to_dict(),
        number=f"CDLM{code[-10:]}{n:02d}", connector=pile.connectors.get(), pile=pile,
        station_id=station_id, trade_no=f"{code}01{now:%y%m%d%H%M%S}{n:04d}", mode="wallet",
        state="starting", start_deadline=now + timedelta(minutes=5),
        hold_amount=D("500.00"),  # funds held as order_create does (none: a balance stop)
    ).pk


def _start(station_id: int, code: str, n: int) -> str:
    from charging import services

    order_id = _starting_order(station_id, code, n)
    return services.order_start_send(order_id=order_id)


def _order_states(station_id: int) -> dict:
    from charging.models import ChargingOrder

    return dict(ChargingOrder.objects.filter(station_id=station_id)
                .values_list("pile__code", "state"))


def _order_story(station_id: int) -> list[dict]:
    """Every order at the station with its transitions (what a failed wait shows)."""
    from charging.models import ChargingOrder

    return [{"pile": o.pile.code, "trade_no": o.trade_no, "state": o.state,
             "created": o.created_at.isoformat(), "progress": o.progress,
             "transitions": [(t.from_state, t.to_state, t.actor, t.reason, t.at.isoformat())
                             for t in o.transitions.all()]}
            for o in ChargingOrder.objects.filter(station_id=station_id)
            .select_related("pile").prefetch_related("transitions").order_by("pk")]


def wait_charging(station_id: int, code: str, timeout: float = 60.0) -> None:
    """Wait until ``code``'s order is charging; on timeout, fail with the station's orders."""
    try:
        wait_for(lambda: in_schema(_order_states, station_id).get(code) == "charging",
                 timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"{code} not charging: {in_schema(_order_story, station_id)}") from None


def _caps(codes) -> dict:
    from stations.models import Pile

    return dict(Pile.objects.filter(code__in=codes).values_list("code", "power_cap_kw"))


def _measured(codes) -> dict[str, D]:
    """The power each pile last reported (live state the gateway keeps from 0x13)."""
    from stations import live

    rows = live.connectors_get(SCHEMA, [(code, 1) for code in codes])
    return {code: D(rows[(code, 1)]["power_kw"]) for code in codes
            if (code, 1) in rows and rows[(code, 1)].get("status") == "charging"}


def test_caps_follow_starts_and_ends_and_measured_power_stays_under_the_limit(
        limited_station, gateway, sims):  # noqa: F811
    station, codes = limited_station
    piles = [SimulatedPile(code, "127.0.0.1", gateway.port, time_scale=30, power_kw=60)
             for code in codes]
    for pile in piles:
        sims.run(pile)
    for pile in piles:
        wait_for(lambda p=pile: p.events and bus._redis().get(bus.route_key(SCHEMA, p.pile_code)),
                 timeout=60)
        sims.call(pile.plug, 1)
    drawn: list[D] = []

    def draw_now() -> D:
        """What all the simulated piles draw at this instant (one loop callback)."""
        return sum((p.session_power_kw() for p in piles if p.connectors[1].session), D(0))

    stop = threading.Event()

    def sampler():  # all along, starts and re-plans included
        while not stop.is_set():
            drawn.append(sims.call(draw_now))
            time.sleep(0.02)

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()

    def sample_until(predicate, timeout=60.0):
        """Sample the draw until the reported power satisfies ``predicate(measured)``."""
        deadline = time.monotonic() + timeout
        measured = {}
        while time.monotonic() < deadline:
            drawn.append(sims.call(draw_now))
            gateway.flush()
            measured = in_schema(_measured, codes)
            if predicate(measured):
                return measured
            time.sleep(0.2)
        raise AssertionError(f"not reached: {measured}")

    for n, code in enumerate(codes, start=1):
        assert in_schema(_start, station.pk, code, n) == "sent"
        wait_charging(station.pk, code)  # a shared machine can take its time; the cap is checked
        expected_each = min(D("60"), (LIMIT / n).quantize(D("0.1"), "ROUND_DOWN"))
        # The piles running now report at most their share (a whole % of 60 kW, rounded down).
        sample_until(lambda m, n=n, e=expected_each: len(m) == n and all(
            e - D("0.7") <= kw <= e for kw in m.values()))

    assert [p.max_power_percent for p in piles] == [55, 55, 55]  # 33.3 kW → 55 % = 33.0 kW
    caps = in_schema(_caps, codes)
    assert sum(caps.values()) <= LIMIT
    assert max(drawn) <= LIMIT

    # The first car is done (the pile ends its session; settlement is the worker's): the
    # worker's re-plan gives the other two its share.
    sims.call(piles[0].stop_local, 1)

    def first_done():
        from charging import services
        from charging.models import ChargingOrder

        ChargingOrder.objects.filter(pile__code=codes[0]).update(state="settled")
        return services.station_schedule(station_id=station.pk, reason="order settled")

    assert in_schema(first_done)["plan"] is not None
    sample_until(lambda m: set(m) == set(codes[1:]) and all(D("49.2") <= kw <= D("50") for kw in m.values()))
    assert [p.max_power_percent for p in piles[1:]] == [83, 83]
    stop.set()
    watcher.join(5)
    assert len(drawn) > 50 and max(drawn) <= LIMIT
