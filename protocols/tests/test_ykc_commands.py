"""Commands over the bus (charging.bus) to a pile on the gateway, with correlated replies."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from charging import bus, port
from protocols.ykc import messages as m
from protocols.ykc.commands import YkcReboot, YkcTimeSync, YkcWorkParams

from .conftest import SCHEMA
from .helpers import login, realtime, wait_for

TRADE = "32010200000001012026112008000002"


@pytest.fixture
def sender():
    with ThreadPoolExecutor(4) as pool:
        yield lambda command, timeout=5.0: pool.submit(bus.send, SCHEMA, command, timeout)


def test_remote_start_gets_its_0x33_and_reaches_the_domain(gateway, make_pile, pile_client,
                                                           sender, recorder):
    code = make_pile(connectors=2)
    client = pile_client()
    login(client, code, connectors=2)

    pending = sender(port.RemoteStart(pile_code=code, connector_no=2, trade_no=TRADE,
                                      balance_yuan=Decimal("50.00")))
    start = client.recv(0x34)
    client.send(m.RemoteStartReply(TRADE, code, 2, True, 0), sequence=start.sequence)

    assert start.message.balance == Decimal("50.00")
    assert start.message.connector_no == 2
    assert pending.result(5) == port.CommandResult(ok=True, detail={"trade_no": TRADE,
                                                                    "connector_no": 2})
    result = wait_for(lambda: recorder.of(port.StartResult))[0]
    assert (result.accepted, result.trade_no, result.connector_no) == (True, TRADE, 2)


def test_refused_start_and_stop_results(gateway, make_pile, pile_client, sender, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)

    pending = sender(port.RemoteStart(pile_code=code, connector_no=1, trade_no=TRADE,
                                      balance_yuan=Decimal("1")))
    client.recv(0x34)
    client.send(m.RemoteStartReply(TRADE, code, 1, False, 0x05))
    assert pending.result(5) == port.CommandResult(
        ok=False, error="refused", detail={"trade_no": TRADE, "connector_no": 1,
                                           "reason_code": 5})

    pending = sender(port.RemoteStop(pile_code=code, connector_no=1))
    try:
        client.recv(0x36)
    except TimeoutError:
        raise AssertionError(pending.result(5)) from None
    client.send(m.RemoteStopReply(code, 1, True, 0))
    assert pending.result(5).ok is True
    stop = wait_for(lambda: recorder.of(port.StopResult))[0]
    assert (stop.accepted, stop.protocol_code) == (True, None)
    assert recorder.of(port.StartResult)[0].protocol_code == 5


def test_balance_update_and_read_realtime(gateway, make_pile, pile_client, sender, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)

    pending = sender(port.BalanceUpdate(pile_code=code, connector_no=1,
                                        balance_yuan=Decimal("12.50")))
    update = client.recv(0x42).message
    client.send(m.BalanceUpdateReply(code, update.physical_card_no, 0))
    assert update.balance == Decimal("12.50")
    assert pending.result(5).ok is True

    pending = sender(port.ReadRealtime(pile_code=code, connector_no=1))
    ask = client.recv(0x12)
    client.send(realtime(code, status=3, plugged=True, trade_no=TRADE, energy="3.5"),
                sequence=ask.sequence)
    result = pending.result(5)
    assert result.ok is True
    assert (result.detail["status"], result.detail["energy_kwh"]) == ("charging", "3.5000")


def test_ykc_maintenance_commands(gateway, make_pile, pile_client, sender):
    code = make_pile()
    client = pile_client()
    login(client, code)

    pending = sender(YkcTimeSync(pile_code=code))
    sync = client.recv(0x56).message
    client.send(m.TimeSyncReply(code, sync.current_time))
    assert pending.result(5).ok is True

    pending = sender(YkcReboot(pile_code=code, when=1))
    assert int(client.recv(0x92).message.when) == 1
    client.send(m.RebootReply(code, True))
    assert pending.result(5).ok is True

    pending = sender(YkcWorkParams(pile_code=code, enabled=False, max_power_percent=50))
    params = client.recv(0x52).message
    client.send(m.WorkParamsReply(code, False))
    assert (params.enabled, params.max_power_percent) == (False, 50)
    assert pending.result(5) == port.CommandResult(ok=False, error="refused")


def test_power_limit_is_one_0x52_for_load_management_and_remote_control(
        gateway, make_pile, pile_client, sender):
    """Load management's kW cap and remote control's percent cap / off are the same port
    command and the same frame (0x52 工作参数设置)."""
    code = make_pile()
    client = pile_client()
    login(client, code)

    pending = sender(port.PowerLimit(code, max_power_kw=Decimal("50"),
                                     rated_power_kw=Decimal("120")))
    params = client.recv(0x52).message
    client.send(m.WorkParamsReply(code, True))
    assert (params.enabled, params.max_power_percent) == (True, 41)  # 41 % of 120 = 49.2 kW
    assert pending.result(5) == port.CommandResult(ok=True, detail={"percent": 41,
                                                                    "applied_kw": "49.2"})

    pending = sender(port.PowerLimit.percent_of_rating(code, 60, rated_power_kw=Decimal("120")))
    params = client.recv(0x52).message
    client.send(m.WorkParamsReply(code, True))
    assert (params.enabled, params.max_power_percent) == (True, 60)
    assert pending.result(5).detail == {"percent": 60, "applied_kw": "72.0"}

    pending = sender(port.PowerLimit.percent_of_rating(code, 100, enabled=False))
    params = client.recv(0x52).message
    client.send(m.WorkParamsReply(code, True))
    assert (params.enabled, params.max_power_percent) == (False, 100)
    assert pending.result(5) == port.CommandResult(ok=True, detail={"percent": 100})

    for bad in (port.PowerLimit.percent_of_rating(code, 20),
                port.PowerLimit(code, max_power_kw=Decimal("10"), rated_power_kw=Decimal("120")),
                port.PowerLimit(code)):
        assert pending_result(sender(bad)).error == "invalid"


def pending_result(pending):
    return pending.result(5)


def test_silent_pile_times_out(gateway, make_pile, pile_client):
    code = make_pile()
    login(pile_client(), code)

    started = time.monotonic()
    result = bus.send(SCHEMA, port.RemoteStop(pile_code=code, connector_no=1), timeout=0.5)

    assert result == port.CommandResult(ok=False, error="timeout")
    assert time.monotonic() - started < 2


def test_offline_pile_fails_fast(gateway, make_pile, pile_client):
    code = make_pile()

    started = time.monotonic()
    result = bus.send(SCHEMA, port.RemoteStop(pile_code=code, connector_no=1), timeout=5)

    assert result == port.CommandResult(ok=False, error="pile_offline")
    assert time.monotonic() - started < 0.5


def test_pile_offline_after_disconnect_and_route_removed(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, code)))

    client.close()

    wait_for(lambda: not bus._redis().get(bus.route_key(SCHEMA, code)))
    result = bus.send(SCHEMA, port.RemoteStop(pile_code=code, connector_no=1), timeout=5)
    assert result.error == "pile_offline"


def test_command_of_another_operator_does_not_reach_the_pile(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)

    result = bus.send("op_tenant_b", port.RemoteStop(pile_code=code, connector_no=1), timeout=1)

    assert result.error == "pile_offline"
    assert client.frames == []
