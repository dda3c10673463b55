"""The pile simulator against the real gateway, the patched handler standing in for the
charging domain."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from charging import bus, port
from protocols.ykc.simulator import SimulatedPile, scenario

from .conftest import SCHEMA, GatewayThread
from .helpers import wait_for

TRADE = "32010200000001012026112008000003"


class SimThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks = []

    def run(self, pile: SimulatedPile, name: str | None = None, **kwargs) -> None:
        async def go():
            self.tasks.append(asyncio.create_task(pile.run()))
            if name:
                self.tasks.append(asyncio.create_task(scenario(pile, name, **kwargs)))
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    def call(self, fn, *args):
        async def wrapper():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(5)

    def stop(self) -> None:
        async def cancel():
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def sims():
    sim = SimThread()
    yield sim
    sim.stop()


def events(pile, kind):
    return [value for name, value in list(pile.events) if name == kind]


def test_normal_session_end_to_end(gateway, make_pile, recorder, sims):
    code = make_pile()
    pile = SimulatedPile(code, "127.0.0.1", gateway.port, time_scale=60, power_kw=60)
    sims.run(pile, "normal", charge_minutes=600)
    wait_for(lambda: pile.connectors[1].plugged and events(pile, "logged_in"))
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, code)))

    started = bus.send(SCHEMA, port.RemoteStart(pile_code=code, connector_no=1, trade_no=TRADE,
                                                balance_yuan=Decimal("100")), timeout=5)
    assert started.ok is True
    wait_for(lambda: len([p for p in recorder.of(port.Progress) if p.status == "charging"]) >= 3,
             timeout=10)
    stopped = bus.send(SCHEMA, port.RemoteStop(pile_code=code, connector_no=1), timeout=5)
    assert stopped.ok is True

    wait_for(lambda: events(pile, "record_acked") == [TRADE], timeout=10)
    stored = recorder.records[TRADE]
    assert stored.energy_kwh > 0
    assert (stored.stop_reason, stored.protocol_stop_code) == (port.StopReason.DRIVER, 0x40)
    assert stored.meter_stop_kwh - stored.meter_start_kwh == stored.energy_kwh
    charging = [p.energy_kwh for p in recorder.of(port.Progress) if p.status == "charging"]
    assert charging == sorted(charging) and charging[-1] > charging[0]
    assert recorder.of(port.StartResult)[0].accepted is True
    assert recorder.of(port.StopResult)[0].accepted is True


def test_card_start_and_fault_mid_charge(gateway, make_pile, recorder, sims):
    code = make_pile()
    pile = SimulatedPile(code, "127.0.0.1", gateway.port, time_scale=120)
    sims.run(pile, "card", charge_minutes=1)
    trade = "1" * 32  # the recorder's card decision

    wait_for(lambda: events(pile, "record_acked") == [trade], timeout=10)
    assert recorder.records[trade].card_no == "00000000D14B0A54"

    fault = SimulatedPile(make_pile(), "127.0.0.1", gateway.port, time_scale=120)
    sims.run(fault, "fault", charge_minutes=2)
    wait_for(lambda: fault.connectors[1].plugged and events(fault, "logged_in"))
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, fault.pile_code)))
    assert bus.send(SCHEMA, port.RemoteStart(pile_code=fault.pile_code, connector_no=1,
                                             trade_no=TRADE, balance_yuan=Decimal("9")),
                    timeout=5).ok
    wait_for(lambda: events(fault, "record_acked") == [TRADE], timeout=10)
    assert (recorder.records[TRADE].stop_reason,
            recorder.records[TRADE].protocol_stop_code) == (port.StopReason.EMERGENCY, 0x72)
    assert any(p.status == "fault" for p in recorder.of(port.Progress)
               if p.pile_code == fault.pile_code)


def test_disconnect_mid_session_then_reconnect(gateway, make_pile, recorder, sims):
    code = make_pile()
    pile = SimulatedPile(code, "127.0.0.1", gateway.port, time_scale=120)
    sims.run(pile, "disconnect", charge_minutes=4)
    wait_for(lambda: pile.connectors[1].plugged and events(pile, "logged_in"))
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, code)))
    assert bus.send(SCHEMA, port.RemoteStart(pile_code=code, connector_no=1, trade_no=TRADE,
                                             balance_yuan=Decimal("9")), timeout=5).ok

    wait_for(lambda: events(pile, "record_acked") == [TRADE], timeout=15)
    assert len(events(pile, "logged_in")) == 2
    assert (recorder.records[TRADE].stop_reason,
            recorder.records[TRADE].protocol_stop_code) == (port.StopReason.FULL, 0x41)


def test_gateway_restart_record_retransmitted_until_acknowledged(make_pile, recorder, sims):
    code = make_pile()
    first = GatewayThread()
    port_ = first.port
    pile = SimulatedPile(code, "127.0.0.1", port_, time_scale=60)
    try:
        sims.run(pile, "load")
        wait_for(lambda: events(pile, "started"))
        first.stop()
        trade = sims.call(lambda: pile.stop_local(1).trade_no)  # finished while the platform is away
        assert recorder.records == {}
        second = GatewayThread(port_)
    except BaseException:
        first.stop()
        raise
    try:
        wait_for(lambda: events(pile, "record_acked") == [trade], timeout=15)
        assert len(events(pile, "logged_in")) == 2
        assert trade in recorder.records
    finally:
        second.stop()
