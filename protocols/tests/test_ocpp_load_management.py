"""Load management end to end on OCPP 1.6J piles: simulated OCPP charge points behind the
real OCPP gateway and the real charging domain. A 100 kW station with three 60 kW piles:
each start re-plans the station, the caps go out as SetChargingProfile (ChargePointMaxProfile)
before RemoteStartTransaction, the piles honour them, the power they draw (sampled from all
the simulated piles at one instant, all along) stays under the limit and the power they
report (MeterValues Power.Active.Import, as the gateway keeps it live) settles at each
pile's share; when a session ends, the others get its share. A pile that refuses its cap
does not start: the order fails."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from charging import bus

from .conftest import SCHEMA
from .helpers import in_schema, station_with_limit, wait_for
from .test_load_management import (
    LIMIT,
    _caps,
    _order_states,
    _start,
    wait_charging,
)
from .test_ocpp_gateway import ocpp, sims  # noqa: F401

D = Decimal


@pytest.fixture
def ocpp_station(unblocked, operators):
    with station_with_limit(operators["tenant-a"], name="限功率站（OCPP）", station_prefix="LO",
                            pile_prefix="3203", limit=LIMIT, protocol="ocpp") as made:
        yield made


def _measured(codes) -> dict[str, D]:
    """The power each charging pile last reported (MeterValues, live state the gateway
    keeps); a connector marked charging before its first reading is left out."""
    from stations import live

    rows = live.connectors_get(SCHEMA, [(code, 1) for code in codes])
    return {code: D(str(row["power_kw"])) for code in codes
            if (row := rows.get((code, 1))) and row.get("status") == "charging"
            and row.get("power_kw") is not None}


def _online(sims, ocpp, codes):  # noqa: F811
    piles = [sims.pile(code, ocpp.url, power_kw=60, time_scale=30) for code in codes]
    for pile in piles:
        sims.online(pile)
        wait_for(lambda p=pile: bus._redis().get(bus.route_key(SCHEMA, p.code)), timeout=20)
        sims.run(pile.plug, 1)
    return piles


def test_ocpp_piles_take_their_caps_before_starting_and_draw_no_more(
        ocpp_station, ocpp, sims):  # noqa: F811
    station, codes = ocpp_station
    piles = _online(sims, ocpp, codes)
    drawn: list[float] = []

    def draw_now() -> float:
        """What all the simulated piles draw at this instant, kW (one loop callback)."""
        return sum(p.draw_w() for p in piles) / 1000

    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            drawn.append(sims.run(draw_now))
            time.sleep(0.02)

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()

    def sample_until(predicate, timeout=60.0):
        deadline = time.monotonic() + timeout
        measured = {}
        while time.monotonic() < deadline:
            drawn.append(sims.run(draw_now))
            ocpp.flush()
            measured = in_schema(_measured, codes)
            if predicate(measured):
                return measured
            time.sleep(0.2)
        raise AssertionError(f"not reached: {measured}")

    try:
        for n, code in enumerate(codes, start=1):
            assert in_schema(_start, station.pk, code, n) == "sent"
            wait_charging(station.pk, code)
            # The piles running now report their share: the cap they took (an equal
            # share to 0.1 kW; the plan hands out the remainder), the whole limit in all.
            share = min(D("60"), (LIMIT / n).quantize(D("0.1"), "ROUND_DOWN"))
            caps = in_schema(_caps, codes)
            sample_until(lambda m, n=n, s=share, caps=caps: len(m) == n and all(
                s - D("0.1") <= kw <= caps[c] <= s + D("0.1") for c, kw in m.items()))
        # Every pile got its cap before it was told to start, and holds the planned one.
        for pile in piles:
            assert pile.profiles and pile.profiles[0]["charging_profile_purpose"] == \
                "ChargePointMaxProfile"
        caps = in_schema(_caps, codes)
        assert [p.max_power_w for p in piles] == [float(caps[c] * 1000) for c in codes]
        assert sum(caps.values()) <= LIMIT
        assert max(drawn) <= float(LIMIT)

        # The first car is done: the re-plan gives the other two its share.
        sims.run(piles[0].finish, piles[0].connectors[1], "Local")

        def first_done():
            from charging import services
            from charging.models import ChargingOrder

            ChargingOrder.objects.filter(pile__code=codes[0]).update(state="settled")
            return services.station_schedule(station_id=station.pk, reason="order settled")

        assert in_schema(first_done)["plan"] is not None
        sample_until(lambda m: set(m) == set(codes[1:]) and all(
            D("49.9") <= kw <= D("50") for kw in m.values()))
        assert [p.max_power_w for p in piles[1:]] == [50000, 50000]
    finally:
        stop.set()
        watcher.join(5)
    assert len(drawn) > 50 and max(drawn) <= float(LIMIT)


def test_an_ocpp_pile_refusing_its_cap_does_not_start(ocpp_station, ocpp, sims):  # noqa: F811
    from charging.models import ChargingOrder

    station, codes = ocpp_station
    pile = _online(sims, ocpp, codes[:1])[0]
    sims.run(setattr, pile, "accept_charging_profile", False)
    assert in_schema(_start, station.pk, codes[0], 1) == "power_cap_refused"
    assert in_schema(_order_states, station.pk) == {codes[0]: "failed"}
    assert not pile.connectors[1].charging and pile.max_power_w is None
    assert in_schema(lambda: ChargingOrder.objects.get(pile__code=codes[0]).state) == "failed"
