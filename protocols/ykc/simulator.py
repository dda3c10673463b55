"""A YKC v1.6 pile simulator that behaves like field firmware (reference §5), for tests,
demos and load. Shares only the codec with the gateway (no Django, no gateway imports).

A :class:`SimulatedPile` connects, logs in (0x01, retried until 0x02), syncs its billing
model (0x05 → 0x06, then 0x09 → 0x0A if it differs), reports each connector (0x13), sends
a heartbeat 0x03 every 10 s per connector, answers the platform's commands (0x34 start,
0x36 stop, 0x12 read, 0x42 balance, 0x52 work parameters, 0x56 time, 0x58 tariff, 0x92
reboot), sends real-time data 0x13 every 15 s while charging (energy rising at the rated
power) and every 5 min when idle, and keeps every transaction record 0x3B until a 0x40
acknowledges it — re-sending it every 30 s and after each re-login, so it survives a
gateway restart. It reconnects whenever the connection drops.

``time_scale`` speeds everything up: intervals are divided by it and energy accrues in
simulated time (``time_scale=60`` makes a minute of charging last a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from . import messages as m
from .billing import BillingModel
from .enums import ConnectorHomed, ConnectorStatus, StartMode, TradeType
from .fields import PILE_TZ
from .frame import encode_frame
from .splitter import FrameSplitter

HEARTBEAT_S = 10.0
REALTIME_CHARGING_S = 15.0
REALTIME_IDLE_S = 300.0
RECORD_RETRY_S = 30.0
REPLY_WAIT_S = 10.0
ZERO_TRADE = "0" * 32
ZERO_CARD = "0" * 16
Q4 = Decimal("0.0001")


@dataclass
class Stats:
    """Counters and reply latencies (seconds) shared by the piles of one process."""

    frames_out: int = 0
    frames_in: int = 0
    logins: int = 0
    login_refused: int = 0
    connects: int = 0
    disconnects: int = 0
    records_acked: int = 0
    records_made: int = 0
    latencies: list[float] = field(default_factory=list)
    keep_latencies: bool = True

    def latency(self, seconds: float) -> None:
        if self.keep_latencies:
            self.latencies.append(seconds)


@dataclass
class Session:
    trade_no: str
    started: datetime
    meter_start: Decimal
    card_no: str = ZERO_CARD
    trade_type: int = TradeType.APP
    energy: Decimal = Decimal("0")
    by_period: list[Decimal] = field(default_factory=lambda: [Decimal("0")] * 4)
    minutes: float = 0.0


class Connector:
    def __init__(self, number: int) -> None:
        self.number = number
        self.plugged = False
        self.fault = False
        self.session: Session | None = None
        self.meter = Decimal(random.randint(1000, 90000))
        self.last_tick: float | None = None
        self.sent_at: deque[float] = deque()
        # The balance sent with the remote start (0x34): the pile stops at it (0x6E).
        self.limit: Decimal | None = None

    @property
    def status(self) -> ConnectorStatus:
        if self.fault:
            return ConnectorStatus.FAULT
        return ConnectorStatus.CHARGING if self.session else ConnectorStatus.IDLE


class SimulatedPile:
    """One pile. ``run()`` until cancelled; ``events`` records what happened (for tests)."""

    _counter = itertools.count(1)

    def __init__(self, pile_code: str, host: str, port: int, *, connectors: int = 1,
                 power_kw: Decimal | float = 60, time_scale: float = 1.0,
                 stats: Stats | None = None, model_no: str = "0000",
                 jitter: bool = True) -> None:
        self.pile_code = pile_code
        self.host, self.port = host, port
        self.connectors = {n: Connector(n) for n in range(1, connectors + 1)}
        self.power_kw = Decimal(str(power_kw))
        self.time_scale = time_scale
        self.stats = stats or Stats()
        self.model: BillingModel | None = None
        self.model_no = model_no
        self.jitter = jitter
        self.unacked: dict[str, m.TransactionRecord] = {}
        self.events: list[tuple[str, object]] = []
        self.logged_in = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self.sequence = 0
        self.clock_offset = timedelta()
        self.enabled = True
        self.max_power_percent = 100
        self.balance = Decimal("0")
        self._login_reply: asyncio.Future | None = None
        self._card_reply: asyncio.Future | None = None
        self._stop = False
        self.powered_off_until = 0.0  # loop time; the pile is dark until then
        self.last_record: m.TransactionRecord | None = None

    # --- time ---------------------------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        return seconds / self.time_scale

    def now(self) -> datetime:
        return datetime.now(PILE_TZ) + self.clock_offset

    # --- connection ---------------------------------------------------------------------

    def send(self, message, sequence: bytes | None = None) -> None:
        if self.writer is None or self.writer.is_closing():
            return
        if sequence is None:
            sequence, self.sequence = self.sequence, (self.sequence + 1) & 0xFFFF
        self.writer.write(encode_frame(message, sequence))
        self.stats.frames_out += 1

    async def run(self) -> None:
        """Connect, log in, work; reconnect after any disconnect (like firmware)."""
        backoff = 1.0
        guard = asyncio.create_task(self._balance_guard())
        try:
            await self._run(backoff)
        finally:
            guard.cancel()

    async def _run(self, backoff: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop:
            if loop.time() < self.powered_off_until:
                await asyncio.sleep(min(0.5, self.powered_off_until - loop.time()))
                continue
            try:
                reader, self.writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(self.scaled(backoff) if self.time_scale > 1 else backoff)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1.0
            self.stats.connects += 1
            self.sequence = 0  # §1.3: resets on reconnect
            self.events.append(("connected", None))
            try:
                await self._connected(reader)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                pass
            finally:
                self.logged_in.clear()
                self.stats.disconnects += 1
                self.events.append(("disconnected", None))
                with contextlib.suppress(Exception):
                    self.writer.close()
                self.writer = None
            if not self._stop:
                await asyncio.sleep(min(1.0, self.scaled(5)))

    def stop(self) -> None:
        self._stop = True
        if self.writer is not None:
            self.writer.close()

    def drop_connection(self) -> None:
        """Simulate a lost link (modem reset) — the pile reconnects by itself."""
        if self.writer is not None:
            self.writer.transport.abort()

    def power_off(self, seconds: float) -> None:
        """Lose power for ``seconds`` (real time): sessions end where they are (0x50), their
        records and any unacknowledged ones stay in flash, the link drops; on power-up the
        pile logs in again and re-sends them until acknowledged."""
        for connector in self.connectors.values():
            if connector.session is not None:
                self.finish(connector, 0x50, send=False)
        self.powered_off_until = asyncio.get_running_loop().time() + seconds
        self.events.append(("power_off", seconds))
        self.drop_connection()

    def repeat_record(self) -> bool:
        """Send the latest record again (acknowledged or not), as firmware may."""
        if self.last_record is None:
            return False
        self.send(self.last_record)
        return True

    async def _balance_guard(self) -> None:
        """Stop a session when its amount reaches the balance of its remote start, online
        or not (as the pile's own meter would)."""
        while True:
            await asyncio.sleep(self.scaled(REALTIME_CHARGING_S) / 3)
            for connector in self.connectors.values():
                session = connector.session
                if session is None or connector.limit is None or self.model is None:
                    continue
                self.accrue(connector)
                if self.amount(session) >= connector.limit:
                    self.events.append(("balance_stop", session.trade_no))
                    self.finish(connector, 0x6E)

    async def _connected(self, reader: asyncio.StreamReader) -> None:
        read_task = asyncio.create_task(self._read(reader))
        work: list[asyncio.Task] = []
        try:
            await self._login(read_task)
            work = [asyncio.create_task(self._heartbeats()),
                    asyncio.create_task(self._realtime()),
                    asyncio.create_task(self._retransmit())]
            await read_task
        finally:
            for task in [read_task, *work]:
                task.cancel()
            for task in [read_task, *work]:
                with contextlib.suppress(BaseException):
                    await task

    async def _login(self, read_task: asyncio.Task) -> None:
        while True:
            self._login_reply = asyncio.get_running_loop().create_future()
            self.send(m.Login(self.pile_code, 0, len(self.connectors), 0x10, "SIM1.6.0", 0,
                              "0" * 20, 4))
            done, _ = await asyncio.wait({self._login_reply, read_task},
                                         timeout=self.scaled(REPLY_WAIT_S),
                                         return_when=asyncio.FIRST_COMPLETED)
            if read_task in done:
                raise ConnectionError("closed during login")
            if self._login_reply in done:
                break
        if not self._login_reply.result():
            self.stats.login_refused += 1
            self.events.append(("login_refused", None))
            raise ConnectionError("login refused")
        self.stats.logins += 1
        self.events.append(("logged_in", None))
        self.logged_in.set()
        self.send(m.BillingModelVerify(self.pile_code, self.model_no))
        for connector in self.connectors.values():
            self.send_realtime(connector)
        for record in list(self.unacked.values()):  # bills kept across the outage
            self.send(record)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        splitter = FrameSplitter()
        while True:
            data = await reader.read(4096)
            if not data:
                raise ConnectionError("closed by the platform")
            frames, _errors = splitter.feed(data)
            for frame in frames:
                self.stats.frames_in += 1
                self.on_frame(frame.message, frame.sequence)

    # --- periodic frames ----------------------------------------------------------------

    async def _heartbeats(self) -> None:
        interval = self.scaled(HEARTBEAT_S)
        if self.jitter:
            await asyncio.sleep(random.uniform(0, interval))
        loop = asyncio.get_running_loop()
        while True:
            for connector in self.connectors.values():
                connector.sent_at.append(loop.time())
                self.send(m.Heartbeat(self.pile_code, connector.number, connector.fault))
            await asyncio.sleep(interval)

    async def _realtime(self) -> None:
        if self.jitter:
            await asyncio.sleep(random.uniform(0, self.scaled(REALTIME_CHARGING_S)))
        idle_due = 0.0
        loop = asyncio.get_running_loop()
        while True:
            charging = [c for c in self.connectors.values() if c.session]
            for connector in charging:
                self.accrue(connector)
                self.send_realtime(connector)
            if loop.time() >= idle_due:
                for connector in self.connectors.values():
                    if not connector.session:
                        self.send_realtime(connector)
                idle_due = loop.time() + self.scaled(REALTIME_IDLE_S)
            await asyncio.sleep(self.scaled(REALTIME_CHARGING_S))

    async def _retransmit(self) -> None:
        while True:
            await asyncio.sleep(self.scaled(RECORD_RETRY_S))
            for record in list(self.unacked.values()):
                self.send(record)

    # --- charging -----------------------------------------------------------------------

    def slot_period(self) -> int:
        if self.model is None:
            return 2  # flat
        moment = self.now()
        return int(self.model.slots[moment.hour * 2 + (moment.minute >= 30)])

    def accrue(self, connector: Connector) -> None:
        """Add the energy delivered since the last tick at the rated power (sim time)."""
        loop_time = asyncio.get_running_loop().time()
        session = connector.session
        if session is None or connector.last_tick is None:
            connector.last_tick = loop_time
            return
        hours = Decimal(str((loop_time - connector.last_tick) * self.time_scale / 3600))
        connector.last_tick = loop_time
        energy = (self.session_power_kw() * hours).quantize(Q4, ROUND_HALF_UP)
        session.energy += energy
        session.by_period[self.slot_period()] += energy
        session.minutes += float(hours) * 60
        connector.meter += energy

    def session_power_kw(self) -> Decimal:
        """What each running session draws: the pile's rating under its 0x52 cap (% of the
        rating), shared by the connectors charging at once (the cap is the pile's)."""
        charging = sum(1 for c in self.connectors.values() if c.session is not None) or 1
        return self.power_kw * self.max_power_percent / 100 / charging

    def amount(self, session: Session) -> Decimal:
        total = Decimal("0")
        for period, energy in enumerate(session.by_period):
            price = self.model.unit_price(period) if self.model else Decimal("0")
            total += (energy * price).quantize(Q4, ROUND_HALF_UP)
        return total

    def send_realtime(self, connector: Connector, sequence: bytes | None = None) -> None:
        session = connector.session
        charging = session is not None
        voltage = Decimal("380.0") if charging else Decimal("0.0")
        current = ((self.session_power_kw() * 1000 / voltage)
                   .quantize(Decimal("0.1"), ROUND_DOWN) if charging else Decimal("0.0"))
        energy = session.energy if charging else Decimal("0")
        self.send(m.RealtimeData(
            session.trade_no if charging else ZERO_TRADE, self.pile_code, connector.number,
            connector.status, ConnectorHomed.NO if connector.plugged else ConnectorHomed.YES,
            connector.plugged, voltage, current, 30, ZERO_CARD,
            min(99, 20 + int(session.minutes)) if charging else 0, 30,
            int(session.minutes) if charging else 0, 60 if charging else 0,
            energy, energy, self.amount(session) if charging else Decimal("0"),
            m.HardwareFault(0x01 if connector.fault else 0)), sequence)

    def trade_no_for(self, connector: Connector) -> str:
        stamp = self.now().strftime("%y%m%d%H%M%S")
        return f"{self.pile_code}{connector.number:02d}{stamp}{next(self._counter) % 10000:04d}"

    def begin(self, connector: Connector, trade_no: str, *, card_no: str = ZERO_CARD,
              trade_type: int = TradeType.APP) -> None:
        connector.session = Session(trade_no, self.now(), connector.meter, card_no, trade_type)
        connector.last_tick = asyncio.get_running_loop().time()
        self.events.append(("started", trade_no))
        self.send_realtime(connector)

    def finish(self, connector: Connector, stop_reason: int,
               send: bool = True) -> m.TransactionRecord:
        """End the session: 0x13 idle, then the 0x3B kept until acknowledged."""
        self.accrue(connector)
        session = connector.session
        assert session is not None
        connector.session = None
        connector.last_tick = None
        end = self.now()
        periods = []
        for period, energy in enumerate(session.by_period):
            price = self.model.unit_price(period) if self.model else Decimal("0")
            periods.append(m.PeriodUsage(price, energy, energy,
                                         (energy * price).quantize(Q4, ROUND_HALF_UP)))
        # Sped up (time_scale > 1), the session lived time_scale times longer in pile time
        # than on the wall clock: its record starts that much earlier, so the energy stays
        # within what the rated power can deliver in the session's duration.
        started = session.started
        if self.time_scale > 1:
            started = end - (end - session.started) * self.time_scale
        record = m.TransactionRecord(
            session.trade_no, self.pile_code, connector.number, started, end,
            tuple(periods), session.meter_start, connector.meter, session.energy,
            session.energy, self.amount(session), "", session.trade_type, end, stop_reason,
            session.card_no)
        connector.limit = None
        self.unacked[session.trade_no] = record
        self.last_record = record
        self.stats.records_made += 1
        self.events.append(("finished", session.trade_no))
        if send:
            self.send_realtime(connector)
            self.send(record)
        return record

    def plug(self, connector_no: int = 1, plugged: bool = True) -> None:
        connector = self.connectors[connector_no]
        connector.plugged = plugged
        self.send_realtime(connector)

    def set_fault(self, connector_no: int = 1) -> None:
        """A fault mid-charge: the session ends with 0x72 emergency stop (§4.5)."""
        connector = self.connectors[connector_no]
        connector.fault = True
        if connector.session:
            self.finish(connector, 0x72)
        else:
            self.send_realtime(connector)

    def clear_fault(self, connector_no: int = 1) -> None:
        """The fault is repaired: the next 0x13 reports the connector healthy."""
        connector = self.connectors[connector_no]
        connector.fault = False
        self.send_realtime(connector)

    def start_local(self, connector_no: int = 1) -> str:
        """Start a session without the platform (load tests): the pile mints the number."""
        connector = self.connectors[connector_no]
        connector.plugged = True
        trade_no = self.trade_no_for(connector)
        self.begin(connector, trade_no)
        return trade_no

    def stop_local(self, connector_no: int = 1, reason: int = 0x45) -> m.TransactionRecord:
        return self.finish(self.connectors[connector_no], reason)

    async def card_start(self, connector_no: int = 1, card_no: str = "00000000D14B0A54",
                         vin: str = "") -> bool:
        """Swipe a card (0x31) or start by VIN; returns whether 0x32 authorised it."""
        connector = self.connectors[connector_no]
        if not connector.plugged:
            self.plug(connector_no)  # the gun goes in first, reported like any status change
        self._card_reply = asyncio.get_running_loop().create_future()
        mode = StartMode.VIN if vin else StartMode.CARD
        self.send(m.PileStartRequest(self.pile_code, connector_no, mode, False,
                                     ZERO_CARD if vin else card_no, bytes(16), vin))
        reply: m.StartAuthReply = await asyncio.wait_for(self._card_reply,
                                                          self.scaled(REPLY_WAIT_S) + 5)
        if reply.authorized:
            self.begin(connector, reply.trade_no, card_no=card_no,
                       trade_type=TradeType.VIN if vin else TradeType.CARD)
        return reply.authorized

    # --- frames from the platform -------------------------------------------------------

    def on_frame(self, message, sequence: bytes) -> None:
        code = message.frame_type
        pile = self.pile_code
        if code == 0x02:
            if self._login_reply is not None and not self._login_reply.done():
                self._login_reply.set_result(message.success)
        elif code == 0x04:
            sent = self.connectors.get(message.connector_no)
            if sent is not None and sent.sent_at:
                self.stats.latency(asyncio.get_running_loop().time() - sent.sent_at.popleft())
        elif code == 0x06:
            if message.model_differs:
                self.send(m.BillingModelRequest(pile))
        elif code in (0x0A, 0x58):
            self.model = message.billing_model
            self.model_no = self.model.model_no
            self.events.append(("billing_model", self.model_no))
            if code == 0x58:
                self.send(m.SetBillingModelReply(pile, True), sequence)
        elif code == 0x12:
            connector = self.connectors.get(message.connector_no)
            if connector is not None:
                self.accrue(connector)
                self.send_realtime(connector, sequence)
        elif code == 0x32:
            if self._card_reply is not None and not self._card_reply.done():
                self._card_reply.set_result(message)
        elif code == 0x34:
            self.on_remote_start(message, sequence)
        elif code == 0x36:
            connector = self.connectors.get(message.connector_no)
            charging = connector is not None and connector.session is not None
            self.send(m.RemoteStopReply(pile, message.connector_no, charging,
                                        0 if charging else 0x02), sequence)
            if charging:
                self.finish(connector, 0x40)
        elif code == 0x40:
            if self.unacked.pop(message.trade_no, None) is not None:
                self.stats.records_acked += 1
                self.events.append(("record_acked", message.trade_no))
        elif code == 0x42:
            self.balance = message.balance
            self.send(m.BalanceUpdateReply(pile, message.physical_card_no, 0), sequence)
        elif code == 0x52:
            self.enabled, self.max_power_percent = message.enabled, message.max_power_percent
            self.send(m.WorkParamsReply(pile, True), sequence)
        elif code == 0x56:
            if message.current_time is not None:
                self.clock_offset = message.current_time - datetime.now(PILE_TZ)
            self.send(m.TimeSyncReply(pile, self.now()), sequence)
        elif code == 0x92:
            self.send(m.RebootReply(pile, True), sequence)
            self.events.append(("reboot", None))

    def on_remote_start(self, message: m.RemoteStart, sequence: bytes) -> None:
        connector = self.connectors.get(message.connector_no)
        if connector is None:
            reason = 0x01
        elif connector.session is not None:
            reason = 0x02
        elif connector.fault or not self.enabled:
            reason = 0x03
        elif not connector.plugged:
            reason = 0x05
        else:
            reason = 0
        self.send(m.RemoteStartReply(message.trade_no, self.pile_code, message.connector_no,
                                     reason == 0, reason), sequence)
        if reason == 0:
            self.balance = message.balance
            self.begin(connector, message.trade_no, card_no=message.physical_card_no)
            connector.limit = message.balance if message.balance > 0 else None


# --- scenarios --------------------------------------------------------------------------

SCENARIOS = ("idle", "demo", "normal", "disconnect", "card", "fault", "load")


async def scenario(pile: SimulatedPile, name: str, *, charge_minutes: float = 30) -> None:
    """Drive one pile through a named scenario (the pile's ``run()`` must be running).

    - ``idle``: log in and heartbeat.
    - ``demo``: every connector has a car plugged in and stays so: the platform may start
      and stop sessions on any of them, again and again (``make run``'s simulated piles).
    - ``normal``: plug in, wait for the platform's remote start (0x34), charge, stop when the
      platform stops it (0x36) or after ``charge_minutes`` (SOC full, 0x41).
    - ``disconnect``: as normal, but the link drops halfway; the pile reconnects, keeps
      charging and delivers its record after the re-login.
    - ``card``: swipe a card (0x31 → 0x32) and charge ``charge_minutes``.
    - ``fault``: as normal, and a fault (emergency stop, 0x72) ends it halfway.
    - ``load``: start a local session at once (for the load benchmark's charging piles).
    """
    await pile.logged_in.wait()
    connector = pile.connectors[1]
    if name == "idle":
        return
    if name == "demo":
        for number in pile.connectors:
            pile.plug(number)
        return
    if name == "load":
        pile.start_local(1)
        return
    if name == "card":
        if not await pile.card_start(1):
            return
    else:
        pile.plug(1)
        while connector.session is None:
            await asyncio.sleep(0.05)
    half = pile.scaled(charge_minutes * 30)
    if name == "disconnect":
        await asyncio.sleep(half)
        pile.drop_connection()
        await asyncio.sleep(0.1)
        await pile.logged_in.wait()
    elif name == "fault":
        await asyncio.sleep(half)
        pile.set_fault(1)
        return
    deadline = asyncio.get_running_loop().time() + pile.scaled(charge_minutes * 60)
    while connector.session is not None:
        if asyncio.get_running_loop().time() >= deadline:
            pile.stop_local(1, 0x41)
            break
        await asyncio.sleep(0.05)


# --- control channel --------------------------------------------------------------------


async def serve_control(piles: dict[str, SimulatedPile], host: str, port: int,
                        stats: Stats) -> asyncio.Server:
    """A line-oriented TCP control channel for fault injection (one JSON reply per line):

    - ``drop PILE|*`` — drop the links (the piles reconnect by themselves);
    - ``power_off PILE|* SECONDS`` — lose power (records kept in flash, see power_off);
    - ``repeat PILE|*`` — send the latest record again;
    - ``stats`` — {"piles", "logged_in", "charging", "unacked", "records_made",
      "records_acked", "charging_trades": [...]}.
    """
    def targets(name: str) -> list[SimulatedPile]:
        return list(piles.values()) if name == "*" else [p for p in [piles.get(name)] if p]

    def run(words: list[str]) -> dict:
        if not words:
            return {"error": "empty"}
        command = words[0]
        if command == "stats":
            charging = [c.session.trade_no for p in piles.values()
                        for c in p.connectors.values() if c.session is not None]
            return {"piles": len(piles),
                    "logged_in": sum(p.logged_in.is_set() for p in piles.values()),
                    "charging": len(charging), "charging_trades": charging,
                    "unacked": sum(len(p.unacked) for p in piles.values()),
                    "records_made": stats.records_made, "records_acked": stats.records_acked}
        if command in ("drop", "power_off", "repeat") and len(words) >= 2:
            chosen = targets(words[1])
            for pile in chosen:
                if command == "drop":
                    pile.drop_connection()
                elif command == "power_off":
                    pile.power_off(float(words[2]) if len(words) > 2 else 10.0)
                else:
                    pile.repeat_record()
            return {"ok": True, "piles": len(chosen)}
        return {"error": f"unknown command {' '.join(words)!r}"}

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import json

        try:
            while line := await reader.readline():
                try:
                    reply = run(line.decode().split())
                except (ValueError, IndexError) as exc:
                    reply = {"error": str(exc)}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port)
