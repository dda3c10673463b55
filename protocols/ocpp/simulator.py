"""A simulated OCPP 1.6J charge point built on the ``ocpp`` library's ChargePoint, for
tests, demos and load. No Django, no gateway imports.

A :class:`SimulatedOcppPile` connects to ``{url}/{pile code}`` with subprotocol
``ocpp1.6`` (HTTP Basic when given a password), sends BootNotification until accepted, a
StatusNotification per connector, Heartbeat at the interval the central system gave,
MeterValues every ``meter_interval_s`` while charging (energy rising at the rated power)
and answers the central system's calls: RemoteStartTransaction, RemoteStopTransaction,
Reset, ChangeAvailability, UnlockConnector, TriggerMessage, GetConfiguration,
ChangeConfiguration, DataTransfer, SetChargingProfile and ClearChargingProfile. A
ChargePointMaxProfile on connector 0 caps the pile (in W, or in A per phase at 230 V as its
``ChargingScheduleAllowedChargingRateUnit`` says): its output — the rated power under that
cap — is shared by the connectors charging at once, in the meter and in the readings. Transaction messages (StartTransaction, MeterValues,
StopTransaction) go through an outbox kept across connections, sent in order and removed
only once answered — so a pile that was offline replays them when it is back, as field
firmware does. It reconnects whenever the connection drops.

``time_scale`` speeds it up: intervals are divided by it and energy accrues in simulated
time (60: a minute of charging per second).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

logger = logging.getLogger("protocols.ocpp.simulator")

SCENARIOS = ("idle", "demo", "normal", "card", "disconnect")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Connector:
    number: int
    status: str = "Available"
    plugged: bool = False
    transaction_id: int | None = None
    id_tag: str = ""
    meter_wh: float = 0.0
    soc: float = 30.0
    charging: bool = False
    session_start_wh: float = 0.0
    tx: dict = field(default_factory=dict)  # this session's {"id": transactionId}


@dataclass
class Stats:
    boots: int = 0
    connects: int = 0
    refused: int = 0
    sent: int = 0
    call_errors: list = field(default_factory=list)
    latencies: list = field(default_factory=list)


class _ChargePoint(ChargePoint):
    """The library's ChargePoint with the pile's handlers for central-system calls."""

    def __init__(self, pile: SimulatedOcppPile, ws) -> None:
        super().__init__(pile.code, ws, response_timeout=30)
        self.pile = pile

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_):
        conn = self.pile.connector(connector_id or 1)
        ok = conn is not None and not conn.charging and conn.status not in (
            "Unavailable", "Faulted") and self.pile.accept_remote_start
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after(Action.remote_start_transaction)
    def after_remote_start(self, id_tag: str, connector_id: int | None = None, **_):
        conn = self.pile.connector(connector_id or 1)
        if conn is not None and not conn.charging and self.pile.accept_remote_start:
            self.pile.begin(conn, id_tag)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int):
        conn = self.pile.by_transaction(transaction_id)
        return call_result.RemoteStopTransaction(status="Accepted" if conn else "Rejected")

    @after(Action.remote_stop_transaction)
    def after_remote_stop(self, transaction_id: int):
        conn = self.pile.by_transaction(transaction_id)
        if conn is not None:
            self.pile.finish(conn, "Remote")

    @on(Action.reset)
    def on_reset(self, type: str):
        self.pile.resets.append(type)
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    async def after_reset(self, type: str):
        for conn in self.pile.connectors.values():
            if conn.charging:
                self.pile.finish(conn, "HardReset" if type == "Hard" else "SoftReset")
        self.pile.booted = False
        await asyncio.sleep(0.05)
        self.pile.drop_connection()

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str):
        return call_result.ChangeAvailability(status="Accepted")

    @after(Action.change_availability)
    def after_change_availability(self, connector_id: int, type: str):
        targets = (self.pile.connectors.values() if connector_id == 0
                   else [c for c in [self.pile.connector(connector_id)] if c])
        for conn in targets:
            self.pile.set_status(conn, "Unavailable" if type == "Inoperative" else "Available")

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict):
        if not self.pile.accept_charging_profile:
            return call_result.SetChargingProfile(status="Rejected")
        if cs_charging_profiles.get("charging_profile_purpose") != "ChargePointMaxProfile":
            return call_result.SetChargingProfile(status="NotSupported")
        schedule = cs_charging_profiles["charging_schedule"]
        unit = schedule["charging_rate_unit"]
        allowed = self.pile.configuration["ChargingScheduleAllowedChargingRateUnit"]
        periods = schedule.get("charging_schedule_period") or []
        if connector_id != 0 or not periods or \
                {"W": "Power", "A": "Current"}[unit] not in allowed:
            return call_result.SetChargingProfile(status="Rejected")
        first = periods[0]
        limit = float(first["limit"])
        if unit == "A":
            limit *= 230.0 * int(first.get("number_phases") or 3)
        self.pile.max_power_w = limit
        self.pile.profiles.append(cs_charging_profiles)
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **_):
        self.pile.max_power_w = None
        return call_result.ClearChargingProfile(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, connector_id: int):
        conn = self.pile.connector(connector_id)
        return call_result.UnlockConnector(status="Unlocked" if conn else "NotSupported")

    @on(Action.trigger_message)
    def on_trigger(self, requested_message: str, connector_id: int | None = None):
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger(self, requested_message: str, connector_id: int | None = None):
        self.pile.triggered(requested_message, connector_id)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list | None = None):
        known = self.pile.configuration
        keys = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": known[k]}
                               for k in keys if k in known],
            unknown_key=[k for k in keys if k not in known] or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str):
        if key not in self.pile.configuration:
            return call_result.ChangeConfiguration(status="NotSupported")
        self.pile.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                         data: str | None = None):
        return call_result.DataTransfer(status="Accepted", data=f"echo:{data or ''}")


class SimulatedOcppPile:
    """One simulated charge point; ``run()`` until ``stop()``."""

    def __init__(self, code: str, url: str, *, connectors: int = 1, power_kw: float = 7.0,
                 time_scale: float = 1.0, password: str | None = None,
                 meter_interval_s: float = 15.0, stats: Stats | None = None,
                 rate_unit: str = "Current,Power") -> None:
        self.code = code
        self.url = url.rstrip("/")
        self.password = password
        self.power_kw = power_kw
        self.time_scale = time_scale
        self.connectors = {n: Connector(n) for n in range(1, connectors + 1)}
        self.configuration = {"HeartbeatInterval": "60",
                              "MeterValueSampleInterval": str(int(meter_interval_s)),
                              "ChargingScheduleAllowedChargingRateUnit": rate_unit}
        self.max_power_w: float | None = None  # the ChargePointMaxProfile's cap (W)
        self.profiles: list[dict] = []  # charging profiles accepted, in order
        self.accept_charging_profile = True
        self.resets: list[str] = []  # Reset types received, in order
        self.stats = stats or Stats()
        self.outbox: deque = deque()
        self.outbox_event = asyncio.Event()
        self.cp: _ChargePoint | None = None
        self.ws = None
        self.booted = False
        self.online = asyncio.Event()
        self.accept_remote_start = True
        self.heartbeat_s = 60.0
        self.offline = False  # held offline by a test (power cut): no reconnect
        self._stopped = False
        self._tasks: list[asyncio.Task] = []

    # --- helpers --------------------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        return seconds / self.time_scale

    def connector(self, number: int) -> Connector | None:
        return self.connectors.get(number)

    def connector_power_w(self, conn: Connector) -> float:
        """What ``conn`` draws now: the rated power under the pile's cap, shared by the
        connectors charging at once (0 when it is not charging)."""
        if not conn.charging:
            return 0.0
        charging = sum(1 for c in self.connectors.values() if c.charging) or 1
        total = self.power_kw * 1000
        if self.max_power_w is not None:
            total = min(total, self.max_power_w)
        return total / charging

    def draw_w(self) -> float:
        """What the whole pile draws now (W)."""
        return sum(self.connector_power_w(c) for c in self.connectors.values())

    def by_transaction(self, transaction_id: int) -> Connector | None:
        return next((c for c in self.connectors.values()
                     if c.charging and c.transaction_id == transaction_id), None)

    def queue(self, build) -> None:
        """Queue a transaction message; ``build()`` makes its payload when it is sent (a
        StartTransaction's transactionId is known only then)."""
        self.outbox.append(build)
        self.outbox_event.set()

    async def send(self, payload):
        """Send one call now (None when offline)."""
        if self.cp is None:
            return None
        loop = asyncio.get_running_loop()
        start = loop.time()
        reply = await self.cp.call(payload)
        self.stats.latencies.append(loop.time() - start)
        self.stats.sent += 1
        return reply

    # --- actions --------------------------------------------------------------------

    def plug(self, number: int = 1, plugged: bool = True) -> None:
        conn = self.connectors[number]
        conn.plugged = plugged
        if not conn.charging:
            self.set_status(conn, "Preparing" if plugged else "Available")

    def set_status(self, conn: Connector, status: str, error_code: str = "NoError") -> None:
        conn.status = status
        if self.cp is not None:
            asyncio.ensure_future(self._status(conn, error_code))

    async def _status(self, conn: Connector, error_code: str = "NoError") -> None:
        with contextlib.suppress(Exception):
            await self.send(call.StatusNotification(
                connector_id=conn.number, error_code=error_code, status=conn.status,
                timestamp=_now()))

    def begin(self, conn: Connector, id_tag: str) -> None:
        """Start a transaction for ``id_tag`` (after a remote start or a local card)."""
        conn.charging, conn.id_tag, conn.transaction_id = True, id_tag, None
        tx = conn.tx = {"id": None}
        conn.plugged = True
        conn.session_start_wh = conn.meter_wh
        meter, at = int(conn.meter_wh), _now()

        def build():
            return call.StartTransaction(connector_id=conn.number, id_tag=id_tag,
                                         meter_start=meter, timestamp=at)

        async def answered(reply):
            tx["id"] = reply.transaction_id
            if conn.tx is tx:
                conn.transaction_id = reply.transaction_id
            if reply.id_tag_info["status"] != "Accepted" and conn.charging:
                self.finish(conn, "DeAuthorized")
            elif conn.charging:  # energy flows once the transaction is authorised
                self.set_status(conn, "Charging")

        build.answered = answered
        self.queue(build)

    def sample(self, conn: Connector, context: str = "Sample.Periodic") -> dict:
        watts = self.connector_power_w(conn)
        volts = 380.0 if conn.charging else 0.0
        return {"timestamp": _now(), "sampledValue": [
            {"value": str(int(conn.meter_wh)), "context": context,
             "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": f"{watts:.0f}", "context": context, "measurand": "Power.Active.Import",
             "unit": "W"},
            {"value": f"{watts / volts if volts else 0:.1f}", "context": context,
             "measurand": "Current.Import", "unit": "A"},
            {"value": f"{volts:.1f}", "context": context, "measurand": "Voltage", "unit": "V"},
            {"value": str(int(conn.soc)), "context": context, "measurand": "SoC",
             "unit": "Percent", "location": "EV"},
        ]}

    def meter(self, conn: Connector, context: str = "Sample.Periodic") -> None:
        value = self.sample(conn, context)
        tx = conn.tx if conn.charging else {}

        def build():
            return call.MeterValues(connector_id=conn.number, transaction_id=tx.get("id"),
                                    meter_value=[value])
        self.queue(build)

    def finish(self, conn: Connector, reason: str = "Local") -> None:
        """End the connector's transaction: StopTransaction with the end reading."""
        if not conn.charging:
            return
        conn.charging = False
        end = self.sample(conn, "Transaction.End")
        meter, at, tag, tx = int(conn.meter_wh), _now(), conn.id_tag, conn.tx

        def build():
            return call.StopTransaction(meter_stop=meter, timestamp=at,
                                        transaction_id=tx.get("id") or 0,
                                        reason=reason, id_tag=tag or None,
                                        transaction_data=[end])
        self.queue(build)
        self.set_status(conn, "Finishing" if conn.plugged else "Available")

    def triggered(self, message: str, connector_id: int | None) -> None:
        conns = ([self.connectors[connector_id]] if connector_id in self.connectors
                 else list(self.connectors.values()))
        if message == "MeterValues":
            for conn in conns:
                value = self.sample(conn, "Trigger")
                asyncio.ensure_future(self.send(call.MeterValues(
                    connector_id=conn.number, meter_value=[value],
                    transaction_id=conn.transaction_id if conn.charging else None)))
        elif message == "StatusNotification":
            for conn in conns:
                asyncio.ensure_future(self._status(conn))
        elif message == "Heartbeat":
            asyncio.ensure_future(self.send(call.Heartbeat()))
        elif message == "BootNotification":
            asyncio.ensure_future(self._boot())

    def drop_connection(self) -> None:
        if self.ws is not None:
            asyncio.ensure_future(self.ws.close())

    def go_offline(self) -> None:
        """Lose the connection and stay away (messages queue up) until ``go_online``."""
        self.offline = True
        self.drop_connection()

    def go_online(self) -> None:
        self.offline = False

    def stop(self) -> None:
        self._stopped = True
        self.drop_connection()

    # --- connection -----------------------------------------------------------------

    async def run(self) -> None:
        # The meter runs whether or not the link is up: offline readings queue up.
        meter = asyncio.create_task(self._meter_loop())
        try:
            await self._run()
        finally:
            meter.cancel()

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopped:
            if self.offline:
                await asyncio.sleep(0.05)
                continue
            headers = {}
            if self.password is not None:
                token = base64.b64encode(f"{self.code}:{self.password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            try:
                async with connect(f"{self.url}/{self.code}", subprotocols=["ocpp1.6"],
                                   additional_headers=headers, open_timeout=10) as ws:
                    backoff = 0.2
                    await self._connected(ws)
            except InvalidStatus:
                self.stats.refused += 1
            except (OSError, ConnectionClosed, TimeoutError):
                pass
            finally:
                self.cp = self.ws = None
                self.online.clear()
                for task in self._tasks:
                    task.cancel()
                self._tasks = []
            if not self._stopped:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _connected(self, ws) -> None:
        self.ws = ws
        self.cp = _ChargePoint(self, ws)
        self.stats.connects += 1
        reader = asyncio.create_task(self.cp.start())
        try:
            if not self.booted:
                await self._boot()
            for conn in self.connectors.values():
                await self._status(conn)
            self.online.set()
            self._tasks = [asyncio.create_task(self._heartbeats()),
                           asyncio.create_task(self._flush_outbox())]
            await reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _boot(self) -> None:
        while True:
            reply = await self.send(call.BootNotification(
                charge_point_vendor="EVP-Sim", charge_point_model="AC-7",
                firmware_version="ocpp-sim-1.0"))
            if reply is not None and reply.status == "Accepted":
                self.booted = True
                self.stats.boots += 1
                self.heartbeat_s = float(reply.interval or 60)
                return
            await asyncio.sleep(self.scaled(float(getattr(reply, "interval", 10) or 10)))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.scaled(self.heartbeat_s))
            with contextlib.suppress(Exception):
                await self.send(call.Heartbeat())

    async def _meter_loop(self) -> None:
        interval = float(self.configuration["MeterValueSampleInterval"])
        while True:
            await asyncio.sleep(self.scaled(interval))
            for conn in self.connectors.values():
                if conn.charging:
                    conn.meter_wh += self.connector_power_w(conn) * interval / 3600
                    conn.soc = min(100.0, conn.soc + 0.5)
                    self.meter(conn)

    async def _flush_outbox(self) -> None:
        while True:
            while self.outbox and self.cp is not None:
                build = self.outbox[0]
                reply = await self.send(build())
                if reply is None:
                    return
                answered = getattr(build, "answered", None)
                if answered is not None:
                    await answered(reply)
                if self.outbox and self.outbox[0] is build:
                    self.outbox.popleft()
            self.outbox_event.clear()
            await self.outbox_event.wait()


async def scenario(pile: SimulatedOcppPile, name: str, *, charge_minutes: float = 30,
                   card: str = "D14B0A54") -> None:
    """Drive ``pile``: ``idle`` and ``normal`` only answer; ``demo`` keeps connector 1
    plugged in so the app can start on it; ``card`` plugs in and starts with ``card`` at
    the pile, charging ``charge_minutes`` (simulated) each time; ``disconnect`` drops the
    connection every few (simulated) minutes."""
    await pile.online.wait()
    if name in ("demo", "card"):
        for number in pile.connectors:
            pile.plug(number)
    if name == "card":
        while True:
            conn = pile.connectors[1]
            if not conn.charging:
                pile.begin(conn, card)
            await asyncio.sleep(pile.scaled(charge_minutes * 60))
            pile.finish(conn, "Local")
            await asyncio.sleep(pile.scaled(120))
            pile.plug(1)
    if name == "disconnect":
        while True:
            await asyncio.sleep(pile.scaled(300))
            pile.drop_connection()
