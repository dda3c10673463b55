"""The simulator's fault injection against the real gateway: the balance limit of the
remote start, power loss with records kept in flash, the control channel."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal

from charging import bus, port
from protocols.ykc.billing import BillingModel
from protocols.ykc.enums import TariffPeriod
from protocols.ykc.simulator import SimulatedPile, Stats, serve_control

from .conftest import SCHEMA
from .helpers import wait_for
from .test_ykc_simulator import events, sims  # noqa: F401  (fixture)

TRADE = "32010200000001012026112008000077"
ONE = Decimal("1.00000")
FLAT = BillingModel("0100", ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE, 0,
                    tuple([TariffPeriod.FLAT] * 48))


def _started(pile, gateway, sims, balance: str):  # noqa: F811
    sims.run(pile, "normal", charge_minutes=600)
    wait_for(lambda: pile.connectors[1].plugged and events(pile, "logged_in"))
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, pile.pile_code)))
    sims.call(setattr, pile, "model", FLAT)
    result = bus.send(SCHEMA, port.RemoteStart(pile_code=pile.pile_code, connector_no=1,
                                               trade_no=TRADE, balance_yuan=Decimal(balance)), 5)
    assert result.ok


def test_the_pile_stops_at_the_balance_of_the_remote_start(gateway, make_pile, recorder, sims):  # noqa: F811
    pile = SimulatedPile(make_pile(), "127.0.0.1", gateway.port, time_scale=600, power_kw=60)
    _started(pile, gateway, sims, "1.50")
    wait_for(lambda: TRADE in recorder.records, timeout=15)
    record = recorder.records[TRADE]
    assert (record.stop_reason, record.protocol_stop_code) == (port.StopReason.BALANCE, 0x6E)
    assert Decimal("1.50") <= record.pile_amount_yuan < Decimal("3.00")


def test_power_loss_keeps_the_record_in_flash_until_power_returns(gateway, make_pile, recorder, sims):  # noqa: F811
    pile = SimulatedPile(make_pile(), "127.0.0.1", gateway.port, time_scale=60, power_kw=60)
    _started(pile, gateway, sims, "100")
    wait_for(lambda: any(p.status == "charging" for p in recorder.of(port.Progress)))
    sims.call(pile.power_off, 2.0)
    assert pile.connectors[1].session is None and TRADE in pile.unacked
    assert TRADE not in recorder.records  # dark: nothing sent
    wait_for(lambda: TRADE in recorder.records, timeout=15)
    wait_for(lambda: TRADE not in pile.unacked, timeout=5)
    assert (recorder.records[TRADE].stop_reason,
            recorder.records[TRADE].protocol_stop_code) == (port.StopReason.EMERGENCY, 0x50)
    assert [e for e in events(pile, "power_off")] == [2.0]


def test_control_channel_stats_drop_and_repeat(gateway, make_pile, recorder, sims):  # noqa: F811
    stats = Stats()
    pile = SimulatedPile(make_pile(), "127.0.0.1", gateway.port, time_scale=60, stats=stats)
    _started(pile, gateway, sims, "100")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        control_port = s.getsockname()[1]
    server = asyncio.run_coroutine_threadsafe(
        serve_control({pile.pile_code: pile}, "127.0.0.1", control_port, stats), sims.loop
    ).result(5)
    try:
        with socket.create_connection(("127.0.0.1", control_port), timeout=5) as conn:
            f = conn.makefile("rw")

            def ask(line):
                f.write(line + "\n")
                f.flush()
                return json.loads(f.readline())

            assert ask("stats")["charging_trades"] == [TRADE]
            bus.send(SCHEMA, port.RemoteStop(pile_code=pile.pile_code, connector_no=1), 5)
            wait_for(lambda: events(pile, "record_acked") == [TRADE], timeout=10)
            assert ask("stats") | {"charging_trades": []} == {
                "piles": 1, "logged_in": 1, "charging": 0, "charging_trades": [], "unacked": 0,
                "records_made": 1, "records_acked": 1,
            }
            assert ask(f"repeat {pile.pile_code}") == {"ok": True, "piles": 1}
            wait_for(lambda: len(recorder.of(port.TransactionRecord)) == 2)
            assert ask("drop *") == {"ok": True, "piles": 1}
            wait_for(lambda: len(events(pile, "disconnected")) == 1)
            assert "error" in ask("explode *")
    finally:
        sims.loop.call_soon_threadsafe(server.close)
