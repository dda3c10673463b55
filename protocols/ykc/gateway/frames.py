"""What the gateway does with each frame a pile sends (YKC upstream messages)."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from decimal import Decimal

from django_tenants.utils import get_public_schema_name

from charging import bus, handlers, port
from evplatform import money
from protocols import adapters

from .. import codes
from .. import messages as m
from ..enums import StartMode
from ..fields import PILE_TZ
from ..frame import Frame, encode_frame
from ..heartbeats import SIZE as HEARTBEAT_SIZE
from .common import (
    CODES,
    HEARTBEAT_TYPES,
    PERIODS,
    SESSION_TYPES,
    ZERO_CARD,
    ZERO_TRADE,
    _jsonable,
    _utc,
    adapters_call,
    connector_status,
    logger,
)
from .connection import ConnectorState, PileConnection

# While a connector reports faults, tell the domain again this often (its "last seen").
FAULTS_RESEND_S = 300.0


def record_event(pile_code: str, record: m.TransactionRecord, raw_hex: str, now: datetime,
                 held: tuple[int | None, datetime | None] = (None, None)
                 ) -> port.TransactionRecord:
    """The port's record of a 0x3B: every price group kept (the four standard ones by
    period name, a non-standard record's 5th … 9th as ``group5`` …), times in UTC (``now``
    when the pile sent none), ``held`` the (model number, since) the pile confirmed holding
    (:func:`protocols.adapters.billing_model_held`)."""
    names = PERIODS + port.EXTRA_GROUPS
    groups = list(zip(names, record.periods, strict=False))
    return port.TransactionRecord(
        pile_code=pile_code, connector_no=record.connector_no,
        trade_no=record.trade_no,
        started_at=_utc(record.start_time, now), stopped_at=_utc(record.end_time, now),
        meter_start_kwh=record.meter_start, meter_stop_kwh=record.meter_end,
        energy_kwh=record.total_energy,
        pile_amount_yuan=money.yuan(record.total_amount),
        stop_reason=codes.stop_reason(int(record.stop_reason)),
        protocol_stop_code=int(record.stop_reason),
        energy_by_period={name: usage.energy for name, usage in groups},
        amount_by_period={name: money.yuan(usage.amount) for name, usage in groups},
        vin=record.vin, card_no="" if record.physical_card_no == ZERO_CARD
        else record.physical_card_no, raw_hex=raw_hex,
        pile_tariff_version=held[0], pile_tariff_since=held[1])


def logins_decide(claims: dict[tuple[str, str], port.PileLogin]
                  ) -> dict[tuple[str, str], port.LoginDecision]:
    """The batch function of the gateway's login :class:`BatchedQuery`: the logins
    gathered in one window, keyed by (pile code, connection id), decided with one
    :class:`port.PileLogins`."""
    decisions = handlers.dispatch(None, port.PileLogins(tuple(claims.values())))
    return dict(zip(claims, decisions, strict=True))


def online_marks(claims: dict[str, port.PileOnline]) -> dict[str, bool]:
    """The batch function of the gateway's online marks: pile code → its
    :class:`port.PileOnline`, marked with one :class:`port.PilesOnline`; pile code →
    whether it came back online."""
    from django.db import connection

    back = set(handlers.dispatch(connection.schema_name,
                                 port.PilesOnline(tuple(claims.values()))))
    return {code: code in back for code in claims}


def offline_marks(claims: dict[str, port.PileOffline]) -> dict[str, bool]:
    """The batch function of the gateway's offline marks: pile code → the
    :class:`port.PileOffline` of its dropped link, marked with one
    :class:`port.PilesOffline`; pile code → whether it was marked offline."""
    from django.db import connection

    marked = set(handlers.dispatch(connection.schema_name,
                                   port.PilesOffline(tuple(claims.values()))))
    return {code: code in marked for code in claims}


RealtimeEvents = tuple[port.ConnectorStatusChanged | None, port.FaultsReported | None,
                       port.Progress]


def connector_reports(claims: dict[int, RealtimeEvents]) -> dict[int, bool]:
    """The batch function of the gateway's real-time reports: a number (the order the
    0x13 frames came in) → the (status change or None, fault set or None, reading) of one
    0x13, applied with one :class:`port.ConnectorReports`; every key → True."""
    from django.db import connection

    events = list(claims.values())
    handlers.dispatch(connection.schema_name, port.ConnectorReports(
        statuses=tuple(status for status, _faults, _reading in events if status is not None),
        faults=tuple(faults for _status, faults, _reading in events if faults is not None),
        readings=tuple(reading for _status, _faults, reading in events)))
    return dict.fromkeys(claims, True)


class FrameHandlers:
    """The gateway's frame handlers (mixed into :class:`YkcGateway`): one
    method per upstream message, ``HANDLERS`` maps the frame type to it."""

    def log_frame(self, conn: PileConnection, direction: str, frame_type: int, name: str,
                  trade_no: str, data) -> None:
        """Queue one frame log row (written in batches by :class:`Batcher`); ``data`` is
        the bytes sent or the :class:`Frame` received (its bytes kept as they came)."""
        if not conn.schema:
            return  # before login there is no operator to log it for
        if frame_type in HEARTBEAT_TYPES and not conn.heartbeat_logged:
            return
        self.batcher.frame(conn.schema, (conn.pile_code, time.time(), direction, frame_type,
                                         name, trade_no or "", data))

    def heartbeat_log_due(self, conn: PileConnection) -> bool:
        """Whether the heartbeat just received on ``conn`` (and its reply) goes into the
        frame log: none of the link's was logged in the last ``YKC_FRAME_LOG_HEARTBEAT_SECONDS``
        (0: every one; negative: none). Heartbeats are ~80 % of the frames and say only that
        the pile is there, which its live state and last-seen time keep."""
        seconds = self.heartbeat_log_seconds
        if seconds < 0:
            return False
        now = self.loop.time()
        if now - conn.heartbeat_logged_at < seconds:
            return False
        conn.heartbeat_logged_at = now
        return True

    def handle(self, conn: PileConnection, frame: Frame, received: float):
        """Handle one frame; returns an awaitable when the reply needs the database."""
        message = frame.message
        frame_type = message.frame_type
        code = CODES[frame_type]
        self.metrics.frames_in.inc(code)
        if frame.encrypted:
            self.metrics.error("encrypted")
            return None
        if isinstance(message, m.UnknownMessage):
            self.metrics.error("unknown_type")
            logger.info("%s: unknown frame type %s ignored", conn.pile_code or conn.peer, code)
            return None
        if frame_type == 0x01:
            if conn.login_at is None:
                conn.login_at = received
            return self.on_login(conn, frame, received)
        if not conn.logged_in:
            self.metrics.error("before_login")
            logger.info("%s: %s before login dropped", conn.peer, code)
            return None
        pile_code = getattr(message, "pile_code", conn.pile_code)
        if pile_code != conn.pile_code:
            self.metrics.error("pile_mismatch")
            logger.warning("%s: frame %s for pile %s dropped", conn.pile_code, code, pile_code)
            return None
        if frame_type == 0x03:
            conn.heartbeat_logged = self.heartbeat_log_due(conn)
        now = time.time()
        self.log_frame(conn, "in", frame_type, type(message).__name__,
                       getattr(message, "trade_no", ""), frame)
        self.live.pile_seen(conn.schema, conn.pile_code, now)
        self.still_online(conn)
        handler = self.HANDLERS.get(frame_type)
        if handler is None:
            if not message.upstream:
                self.metrics.error("downstream_type")
            return None
        return handler(self, conn, frame, received)

    # 0x01 → 0x02 (+ 0x56)
    async def on_login(self, conn: PileConnection, frame: Frame, received: float) -> None:
        login: m.Login = frame.message
        if conn.logged_in:
            if login.pile_code == conn.pile_code:  # the pile did not see our 0x02: again
                conn.send(m.LoginReply(login.pile_code, True), frame.sequence, received)
            else:
                self.metrics.error("pile_mismatch")
            return
        at = datetime.now(UTC)
        event = port.PileLogin(pile_code=login.pile_code, peer=conn.peer, at=at,
                               firmware_version=login.firmware_version, iccid=login.sim,
                               protocol="ykc")
        try:
            # Decided with the other logins of the moment (a storm: one batch per window).
            outcome = await self.logins.ask(get_public_schema_name(), (login.pile_code, conn.id),
                                             event)
        except Exception:
            # The batch failed (say, the database dropped its connection): this pile is
            # decided on its own, so no pile of the batch is lost with it.
            self.metrics.error("login_batch_failed")
            logger.warning("%s: login batch failed, deciding alone", login.pile_code,
                           exc_info=True)
            outcome = await self.run_db(handlers.dispatch, None, event)
        if conn.closed:
            return
        if not outcome.accepted:
            self.metrics.error(f"login_{outcome.refusal}")
            logger.warning("login of %s from %s refused: %s", login.pile_code, conn.peer,
                           outcome.refusal)
            conn.send(m.LoginReply(login.pile_code, False), frame.sequence, received)
            conn.close()  # §4.2: "fail (platform may then close the socket)"
            return
        previous = self.sessions.get(login.pile_code)
        if previous is not None and previous is not conn and not self.may_take_over(previous, conn):
            self.takeover_refuse(conn, previous.peer, frame, received, outcome.schema, at)
            return
        if previous is None:  # held by another gateway process? the same rule
            try:
                # Asked with the other logins the same batch decided: one Redis pipeline.
                holder = await self.holder_checks.ask(outcome.schema, login.pile_code, None)
            except Exception:
                # The batch failed: this pile asks alone. At most LOGIN_REDIS_AT_ONCE at a
                # time, so a failed batch of 500 does not wait past the Redis pool's timeout.
                self.metrics.error("holder_batch_failed")
                async with self.login_redis:
                    holder = await self.bus.holder(outcome.schema, login.pile_code)
            if conn.closed:
                return
            if holder is not None and not self.may_take_over_remote(
                    holder, conn, float(outcome.heartbeat_interval_s)):
                self.takeover_refuse(conn, holder.peer or holder.gateway_id, frame, received,
                                     outcome.schema, at)
                return
        conn.pile_code, conn.schema = login.pile_code, outcome.schema
        conn.pile_bcd = bytes.fromhex(login.pile_code)
        conn.heartbeat_interval = float(outcome.heartbeat_interval_s)
        conn.connectors = {no: ConnectorState(s) for no, s in outcome.connectors.items()}
        if previous is not None and previous is not conn:
            logger.info("%s: new connection from %s replaces %s", login.pile_code, conn.peer,
                        previous.peer)
            previous.logged_in = False  # its close must not mark the pile offline
            previous.close()
        self.sessions[login.pile_code] = conn
        conn.logged_in = True
        self.log_frame(conn, "in", 0x01, "Login", "", frame)
        conn.send(m.LoginReply(login.pile_code, True), frame.sequence, received)
        conn.send(m.TimeSync(login.pile_code, datetime.now(PILE_TZ)))
        try:
            try:  # written with the other routes of the moment: one Redis pipeline
                await self.route_writes.ask(conn.schema, conn.pile_code, (conn.id, conn.peer))
            except Exception:
                self.metrics.error("route_batch_failed")  # this pile's route alone
                await self.bus.register(conn.schema, conn.pile_code, conn.id, conn.peer)
        except Exception:
            # Redis away or its pool busy past its timeout (a storm's burst of logins): the
            # pile is logged in all the same; its route is written from its next frame.
            conn.relink = True
            self.metrics.error("route_not_registered")
            logger.warning("%s: route not registered, again from its next frame",
                           conn.pile_code, exc_info=True)
        conn.marked_online_at = self.loop.time()
        self.mark_online(conn, at)

    def mark_online(self, conn: PileConnection, at: datetime) -> None:
        """The domain hears that the pile just logged in is online, marked with the other
        piles logged in at the moment (one :class:`port.PilesOnline` per window), in order
        with the pile's other jobs; a failed batch marks each of its piles alone."""
        event = port.PileOnline(conn.pile_code, at)

        async def mark() -> None:
            try:
                await self.online_marks.ask(conn.schema, conn.pile_code, event)
            except Exception:
                self.metrics.error("online_batch_failed")
                logger.warning("%s: online batch failed, marking alone", conn.pile_code,
                               exc_info=True)
                await self.run_background(handlers.dispatch, conn.schema, event)

        conn.job_await(mark)

    def may_take_over(self, previous: PileConnection, conn: PileConnection) -> bool:
        """A second login for a pile replaces the live connection only from the same host
        (the pile reconnecting, its old socket not yet seen closed) or when the live one is
        stale: no frame for ``idle_heartbeats`` heartbeat intervals."""
        if previous.host == conn.host:
            return True
        silent = self.loop.time() - previous.last_rx
        return silent > self.idle_heartbeats * previous.heartbeat_interval

    def may_take_over_remote(self, holder: bus.Holder, conn: PileConnection,
                             heartbeat_interval_s: float) -> bool:
        """``may_take_over`` for a pile another gateway holds (its bus route): the holder's
        address from the route, its silence from the pile's last-seen time in Redis."""
        if holder.peer and holder.peer.rsplit(":", 1)[0] == conn.host:
            return True
        if holder.last_seen is None:
            return True
        return time.time() - holder.last_seen > self.idle_heartbeats * heartbeat_interval_s

    def takeover_refuse(self, conn: PileConnection, holder_peer: str, frame: Frame,
                        received: float, schema: str, at: datetime) -> None:
        """Refuse a competing login (0x02 failure, socket closed) and have the domain
        record it: a refused login and an alarm on the pile. ``holder_peer``: the address
        of the connection that holds the pile."""
        login: m.Login = frame.message
        self.metrics.error("login_takeover")
        logger.warning("login of %s from %s refused: connected from %s", login.pile_code,
                       conn.peer, holder_peer)
        conn.send(m.LoginReply(login.pile_code, False), frame.sequence, received)
        conn.close()
        task = self.loop.create_task(self.run_background(
            handlers.dispatch, schema, port.PileTakeoverRefused(
                pile_code=login.pile_code, peer=conn.peer, holder_peer=holder_peer, at=at)))
        self._offline_tasks.add(task)
        task.add_done_callback(self._takeover_recorded)

    def _takeover_recorded(self, task) -> None:
        self._offline_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("recording a refused takeover failed: %r", task.exception())

    def pile_gone(self, conn: PileConnection) -> None:
        """A logged-in pile's connection closed and no newer one holds the pile."""
        async def offline():
            with contextlib.suppress(Exception):
                # With the other links closed at the moment: one Redis pipeline.
                await self.route_deletes.ask(conn.schema, (conn.pile_code, conn.id), None)
            if conn.job_runner is not None:
                with contextlib.suppress(Exception):
                    await conn.job_runner
            if self.sessions.get(conn.pile_code) is None:
                event = port.PileOffline(conn.pile_code, datetime.now(UTC))
                try:
                    try:  # with the other links closed at the moment: one batch per window
                        await self.offline_marks.ask(conn.schema, conn.pile_code, event)
                    except Exception:
                        # The batch failed: this pile is marked alone, none lost with it.
                        self.metrics.error("offline_batch_failed")
                        logger.warning("%s: offline batch failed, marking alone",
                                       conn.pile_code, exc_info=True)
                        await self.run_background(handlers.dispatch, conn.schema, event)
                except Exception:
                    logger.exception("%s: marking offline failed", conn.pile_code)
        task = self.loop.create_task(offline())
        self._offline_tasks.add(task)
        task.add_done_callback(self._offline_tasks.discard)

    def kick(self, schema: str, pile_code: str, route: str) -> None:
        """The bus says a newer connection on another gateway took ``pile_code``."""
        conn = self.sessions.get(pile_code)
        if conn is not None and self.bus.route_value(conn.id) == route:
            logger.info("%s: connected elsewhere now, closing here", pile_code)
            del self.sessions[pile_code]
            conn.logged_in = False
            conn.close()

    # 0x03 → 0x04
    def on_heartbeat(self, conn: PileConnection, frame: Frame, received: float) -> None:
        beat: m.Heartbeat = frame.message
        conn.send_heartbeat_reply(beat.pile_code, beat.connector_no, bytes(frame.sequence),
                                  received)

    def heartbeats_answered(self, conn: PileConnection, data: bytes, count: int,
                            replies: bytes, received: float) -> None:
        """What :meth:`handle` and :meth:`on_heartbeat` do for each heartbeat, done once
        for the ``count`` heartbeats at the start of ``data`` that the connection answered
        in bulk (:func:`protocols.ykc.heartbeats.heartbeat_replies`, ``replies`` their
        0x04s, 17 bytes each): counted in and out, the receive → reply latency, the frame
        log's sampled rows, the pile seen and still online."""
        metrics = self.metrics
        metrics.frames_in.inc("0x03", amount=count)
        metrics.frames_out.inc("0x04", amount=count)
        metrics.latency.observe(self.loop.time() - received, "0x04", times=count)
        at = time.time()
        for start in range(0, count * HEARTBEAT_SIZE, HEARTBEAT_SIZE):
            if not self.heartbeat_log_due(conn):
                break  # at most one a read, unless every heartbeat is logged
            end = start + HEARTBEAT_SIZE
            self.batcher.frame(conn.schema, (conn.pile_code, at, "in", 0x03, "Heartbeat", "",
                                             data[start:end]))
            self.batcher.frame(conn.schema, (conn.pile_code, at, "out", 0x04,
                                             "HeartbeatReply", "", replies[start:end]))
        self.live.pile_seen(conn.schema, conn.pile_code, at)
        self.still_online(conn)

    # 0x05 → 0x06
    async def on_billing_verify(self, conn: PileConnection, frame: Frame, received: float):
        verify: m.BillingModelVerify = frame.message
        # Batched with the other piles' verifications of the moment (a login storm).
        same = await self.verifier.ask(conn.schema, verify.pile_code, verify.billing_model_no)
        if same is None:  # the pile left the estate since its login
            self.metrics.error("billing_verify_unknown_pile")
            return
        conn.send(m.BillingModelVerifyReply(verify.pile_code, verify.billing_model_no,
                                            not same), frame.sequence, received)

    # 0x09 → 0x0A
    async def on_billing_request(self, conn: PileConnection, frame: Frame, received: float):
        try:
            # Batched with the other piles' requests of the moment (a login storm), each
            # model recorded as delivered in the batch's transaction.
            model = await self.model_requests.ask(conn.schema, conn.pile_code, None)
            recorded = True
        except Exception:
            # The batch failed: this pile is answered on its own, none lost with it.
            self.metrics.error("billing_batch_failed")
            logger.warning("%s: billing model batch failed, answering alone", conn.pile_code,
                           exc_info=True)
            model = await self.run_db(adapters_call, adapters.billing_model_for, conn.schema,
                                      conn.pile_code)
            recorded = False
        if model is None:
            self.metrics.error("no_billing_model")
            logger.info("%s asks for a billing model and has none", conn.pile_code)
            return
        conn.send(m.BillingModelReply(conn.pile_code, model), frame.sequence, received)
        if not recorded:
            conn.job(adapters_call, adapters.billing_model_delivered, conn.schema,
                     conn.pile_code, model)

    # 0x13 (unsolicited or answering 0x12)
    def on_realtime(self, conn: PileConnection, frame: Frame, received: float) -> None:
        data: m.RealtimeData = frame.message
        now = time.time()
        at = datetime.fromtimestamp(now, UTC)
        no = data.connector_no
        status = connector_status(data)
        trade_no = "" if data.trade_no == ZERO_TRADE else data.trade_no
        power = (data.output_voltage * data.output_current / 1000).quantize(Decimal("0.01"))
        conn.resolve(0x13, no, data)
        self.live.connector(conn.schema, conn.pile_code, no, {
            "status": status, "trade_no": trade_no, "energy_kwh": data.energy,
            "amount_yuan": data.amount, "power_kw": power, "voltage_v": data.output_voltage,
            "current_a": data.output_current, "soc_percent": data.soc,
            "remaining_min": data.remaining_minutes})
        state = conn.connectors.get(no)
        if state is None:
            state = conn.connectors[no] = ConnectorState(None)
        state.trade_no = trade_no
        changed = state.status != status
        status_event = faults_event = None
        if changed:
            state.status = status
            status_event = port.ConnectorStatusChanged(conn.pile_code, no, status, at)
        faults = int(data.hardware_faults)
        active = codes.active_faults(faults, status_fault=status == port.ConnectorStatus.FAULT)
        if active != state.faults or (active and now - state.faults_sent_at >= FAULTS_RESEND_S):
            state.faults, state.faults_sent_at = active, now
            faults_event = port.FaultsReported(conn.pile_code, no, active, at)
        progress = port.Progress(
            pile_code=conn.pile_code, connector_no=no, status=status, at=at,
            trade_no=trade_no or None, plugged=data.plugged, energy_kwh=data.energy,
            amount_yuan=money.yuan(data.amount),
            power_kw=power, voltage_v=data.output_voltage, current_a=data.output_current,
            soc_percent=data.soc, elapsed_min=data.charged_minutes,
            remaining_min=data.remaining_minutes,
            fault_code=f"0x{faults:04X}" if faults else None)
        if changed or now - state.sampled_at >= self.sample_interval:
            state.sampled_at = now
            self.batcher.sample(conn.schema, progress)
        self.report_realtime(conn, (status_event, faults_event, progress))

    def report_realtime(self, conn: PileConnection, events: RealtimeEvents) -> None:
        """The domain hears what one 0x13 says (status change, fault set, reading) with
        the other piles' reports of the moment (one :class:`port.ConnectorReports` per
        window), in order with the pile's other jobs; a failed batch applies each of its
        0x13s alone, event by event."""
        key = next(self.report_keys)

        async def report() -> None:
            try:
                await self.connector_reports.ask(conn.schema, key, events)
            except Exception:
                self.metrics.error("realtime_batch_failed")
                logger.warning("%s: real-time batch failed, reporting alone", conn.pile_code,
                               exc_info=True)
                for event in events:
                    if event is None:
                        continue
                    try:  # each on its own, as one job each: one failing loses no other
                        await self.run_background(handlers.dispatch, conn.schema, event)
                    except Exception:
                        self.metrics.error("job_failed")
                        logger.exception("%s: %s failed", conn.pile_code,
                                         type(event).__name__)

        conn.job_await(report)

    # 0x15 … 0x25: kept with their session
    def on_session_message(self, conn: PileConnection, frame: Frame, received: float) -> None:
        message = frame.message
        raw = encode_frame(message, frame.sequence)
        self.batcher.message(conn.schema, {
            "trade_no": message.trade_no, "pile_code": conn.pile_code,
            "connector_no": message.connector_no, "at": datetime.now(UTC),
            "frame_type": message.FRAME_TYPE, "name": type(message).__name__,
            "data": {k: v for k, v in _jsonable(message).items()
                     if k not in ("trade_no", "pile_code", "connector_no")},
            "hex": raw.hex().upper()})

    # 0x31 → 0x32
    async def on_card_start(self, conn: PileConnection, frame: Frame, received: float):
        request: m.PileStartRequest = frame.message
        vin_start = request.start_mode == StartMode.VIN
        event = port.CardStartRequest(
            pile_code=conn.pile_code, connector_no=request.connector_no,
            start_mode="vin" if vin_start else "card",
            card_no="" if vin_start else request.physical_card_no,
            vin=request.vin if vin_start else "",
            password=request.password_md5.hex() if request.needs_password else "")
        try:
            await conn.settle()
            decision = await self.run_db(handlers.dispatch, conn.schema, event)
        except Exception:
            self.metrics.error("dispatch_failed")
            logger.exception("%s: card start decision failed; no 0x32", conn.pile_code)
            return
        if not isinstance(decision, port.CardStartDecision):
            self.metrics.error("dispatch_failed")
            return
        logical = decision.card_no if decision.card_no.isdigit() else ""
        conn.send(m.StartAuthReply(
            decision.trade_no or ZERO_TRADE, conn.pile_code, request.connector_no,
            logical.zfill(16)[-16:], decision.balance_yuan, decision.accepted,
            0 if decision.accepted else codes.start_refusal_code(decision.refusal,
                                                                 vin=vin_start)),
            frame.sequence, received)

    # 0x33: answer to our 0x34
    def on_start_reply(self, conn: PileConnection, frame: Frame, received: float) -> None:
        reply: m.RemoteStartReply = frame.message
        conn.resolve(0x33, reply.connector_no, reply)
        conn.job(handlers.dispatch, conn.schema, port.StartResult(
            pile_code=conn.pile_code, connector_no=reply.connector_no, trade_no=reply.trade_no,
            accepted=reply.started,
            protocol_code=None if reply.started else int(reply.failure_reason),
            at=datetime.now(UTC)))

    # 0x35: answer to our 0x36
    def on_stop_reply(self, conn: PileConnection, frame: Frame, received: float) -> None:
        reply: m.RemoteStopReply = frame.message
        conn.resolve(0x35, reply.connector_no, reply)
        conn.job(handlers.dispatch, conn.schema, port.StopResult(
            pile_code=conn.pile_code, connector_no=reply.connector_no, accepted=reply.stopped,
            refusal=None if reply.stopped else codes.stop_refusal(int(reply.failure_reason)),
            protocol_code=None if reply.stopped else int(reply.failure_reason),
            at=datetime.now(UTC)))

    # 0x3B → stored by the domain → 0x40
    async def on_transaction(self, conn: PileConnection, frame: Frame, received: float):
        record: m.TransactionRecord = frame.message
        now = datetime.now(UTC)
        raw = encode_frame(record, frame.sequence)
        if frame.crc_swapped:
            raw = raw[:-2] + raw[-1:] + raw[-2:-1]
        try:
            await conn.settle()
            held = await self.run_db(adapters_call, adapters.billing_model_held, conn.schema,
                                     conn.pile_code)
            event = record_event(conn.pile_code, record, raw.hex().upper(), now, held)
            ack = await self.run_db(handlers.dispatch, conn.schema, event)
        except Exception:
            # Not stored: no 0x40, the pile sends the record again (§5 retransmission).
            self.metrics.error("record_not_stored")
            logger.exception("%s: record %s not stored, not acknowledged", conn.pile_code,
                             record.trade_no)
            return
        if isinstance(ack, port.RecordAck) and ack.stored:
            conn.send(m.TransactionRecordAck(record.trade_no, True), frame.sequence, received)
        else:
            self.metrics.error("record_not_stored")

    def on_reply(self, conn: PileConnection, frame: Frame, received: float) -> None:
        """0x41, 0x51, 0x55, 0x57, 0x91: answers to our commands (one outstanding each)."""
        conn.resolve(frame.message.FRAME_TYPE, None, frame.message)

    # 0x93 升级状态 → port.FirmwareStatus.status (stations' FirmwareUpdate statuses)
    UPDATE_STATUS = {0x00: "accepted", 0x01: "refused", 0x02: "refused",
                     0x03: "download_failed"}

    def on_update_reply(self, conn: PileConnection, frame: Frame, received: float) -> None:
        """0x93 远程更新应答: answers a waiting 0x94 and is recorded on the pile's update
        under way (it may come long after the 0x94, once the download ends)."""
        reply: m.UpdateReply = frame.message
        conn.resolve(0x93, None, reply)
        code = int(reply.status)
        conn.job(handlers.dispatch, conn.schema, port.FirmwareStatus(
            pile_code=conn.pile_code, status=self.UPDATE_STATUS.get(code, "refused"),
            at=datetime.now(UTC), detail=f"0x93 {code:#04x}"))

    HANDLERS = {
        0x03: on_heartbeat, 0x05: on_billing_verify, 0x09: on_billing_request,
        0x13: on_realtime, 0x31: on_card_start, 0x33: on_start_reply, 0x35: on_stop_reply,
        0x3B: on_transaction, 0x41: on_reply, 0x51: on_reply, 0x55: on_reply, 0x57: on_reply,
        0x91: on_reply, 0x93: on_update_reply,
        **dict.fromkeys(SESSION_TYPES, on_session_message),
    }
