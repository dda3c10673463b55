"""The OCPP 1.6J gateway process: a WebSocket server holding many charge points.

Piles connect to ``ws://H:P/ocpp/{chargePointId}`` with subprotocol ``ocpp1.6``. The
handshake is the login: the path names the pile code, which the domain routes through the
platform-wide registry (:class:`charging.port.PileLogin` with ``protocol="ocpp"`` and the
HTTP Basic password, security profile 1); a refused pile gets an HTTP error and is listed
with the refused YKC logins. TLS (security profile 2) is terminated at a reverse proxy.
The handshake carries no SIM: the ICCID is checked at BootNotification, which repeats the
login with it; a pile refused there is answered Rejected (interval ``BOOT_RETRY_S``) and
then disconnected (close code 1008, OCPP 1.6 §4.2), its earlier boot forgotten. Past
``max_piles`` open connections (the open-files limit less the gateway's own descriptors,
``protocols.limits``) a handshake is answered 503 and counted.

Each connection is an :class:`OcppSession` (the library's ``ChargePoint``, central-system
side): messages are parsed and schema-checked by the ``ocpp`` library and handled in order;
what needs PostgreSQL runs in a thread pool and goes to the domain only through
``charging.handlers.dispatch`` (``transactions``). A call whose reply says nothing of the
domain (StatusNotification, MeterValues: empty confirmations) is answered at once and its
events queued as the pile's ordered jobs (``OcppSession.job``, as YKC's per-pile jobs); the
pile's next call (bar Heartbeat) is handled once they are dispatched, so a StopTransaction
reaches the domain after the MeterValues before it, and a PileOffline after the pile's last
status. The jobs of a lane go to the database in batches, and the MeterValues of a batch
as one call (``transactions.meter_values_batch``: one ``port.ProgressBatch``, a fixed
number of statements whatever the number of readings). Live state goes to Redis through
YKC's batched ``LiveWriter``. Bad input is answered with a CALLERROR
and the connection stays usable: malformed JSON or a message that is not an OCPP array →
FormationViolation; a wrong message-type id → ProtocolError; schema violations → the
library's FormationViolation / PropertyConstraintViolation / TypeConstraintViolation /
OccurenceConstraintViolation; unknown actions → NotImplemented / NotSupported; any call
but BootNotification from a pile that never booted → SecurityError; a repeated unique id
with a different call → ProtocolError (the same call again is answered again, idempotent).

Commands from ``charging.bus`` (the port's RemoteStart, RemoteStop, ReadRealtime, PowerLimit,
Reboot and the OCPP-only ``commands``) become calls to the pile; the reply is
correlated by the library (by unique id) or the bus deadline expires. PowerLimit (load
management's kW cap and remote control's percent cap alike) is a ChargePointMaxProfile on
connector 0 (SetChargingProfile, Smart Charging profile) in W, or in A per phase at
3 × 230 V when the pile's ``ChargingScheduleAllowedChargingRateUnit`` allows only current;
with ``enabled`` given it first switches the pile Operative / Inoperative
(ChangeAvailability); Reboot is Reset Soft (``when_idle``) or
Hard. BalanceUpdate, TimeSync and PushTariff have no OCPP 1.6 message: ``unsupported``. Frames in and out go to the frame log
(``protocols.FrameLog``, the JSON text hex-encoded, ``frame_type`` the message-type id);
Prometheus metrics on ``--metrics-port``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import itertools
import json
import logging
import os
import socket
import time
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from http import HTTPStatus

import redis.asyncio as aioredis
from django.conf import settings
from django_tenants.utils import get_public_schema_name
from ocpp import messages as ocpp_messages
from ocpp.exceptions import FormatViolationError, OCPPError
from ocpp.messages import Call, CallError, CallResult, MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from charging import bus, handlers, port
from protocols import gc_pauses, limits, metrics
from protocols.ykc.gateway.batches import BatchedQuery
from protocols.ykc.gateway.frames import logins_decide
from protocols.ykc.gateway.server import LOGIN_REDIS_AT_ONCE

from . import mapping, transactions
from .commands import OCPP_COMMANDS

logger = logging.getLogger("protocols.ocpp.gateway")

SUBPROTOCOL = "ocpp1.6"
PATH_PREFIX = "/ocpp/"
LAST_SEEN_DB_EVERY_S = 30
ONLINE_FLUSH_S = 0.5  # the queued online marks of all piles are written this often
BOOTED_TTL_S = 30 * 24 * 3600
BOOT_RETRY_S = 300  # BootNotification Rejected: the pile waits this long to boot again
CLOSE_POLICY = 1008  # WebSocket close code: policy violation (RFC 6455 §7.4.1)
REDIS_CONNECTIONS = 64  # the gateway's Redis pool, at most
JOB_LANES = 4  # batches of the piles' domain jobs dispatched at once
RECENT_IDS = 64  # unique ids remembered per connection (duplicate detection)
LAG_PROBE_S = 0.05  # the event-loop lag probe sleeps this long and records how late it woke
LAG_WINDOW_S = 60  # ``ocpp_event_loop_lag_max_seconds``: the largest lag of this window
GC_FREEZE_EVERY_S = 5  # the gateway process (``run``) freezes its survivors this often …
GC_THAW_EVERY_S = 3600  # … and collects everything once this often
STOP_CLOSE_S = 30  # at stop, the connections' handlers and job lanes get this long to end
STOP_OFFLINE_S = 15  # … then the closed piles' offline marks are written for this long
STOP_OFFLINE_BATCH = 500  # piles marked offline per thread call and transaction at stop
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RATE_UNIT_KEY = "ChargingScheduleAllowedChargingRateUnit"
MAX_PROFILE_ID = 1  # our ChargePointMaxProfile: each cap replaces the previous one
# A pile that takes schedules only in amperes is capped per phase at these (AC, 3 × 230 V).
NOMINAL_VOLTAGE_V = 230
NOMINAL_PHASES = 3
MIN_CURRENT_A = 6  # IEC 61851: the lowest current an EV charges at

# OCPP-J 1.6 spells two error codes differently from later versions.
_V16_CODES = {"FormatViolation": "FormationViolation",
              "OccurrenceConstraintViolation": "OccurenceConstraintViolation"}


def booted_key(pile_code: str) -> str:
    """Redis key set once a pile's BootNotification was accepted (any gateway)."""
    return f"{settings.REDIS_KEY_PREFIX}:ocpp:booted:{pile_code}"


def call_error(unique_id: str, code: str, description: str, details: dict | None = None) -> str:
    """A CALLERROR frame; of ``details`` only the text ``cause`` is kept (the library puts
    the offending message object there too)."""
    cause = (details or {}).get("cause")
    return json.dumps([MessageType.CallError, unique_id, _V16_CODES.get(code, code),
                       description[:255], {"cause": str(cause)[:255]} if cause else {}],
                      separators=(",", ":"), ensure_ascii=False)


class GatewayMetrics:
    def __init__(self, gateway: OcppGateway) -> None:
        r = self.registry = metrics.Registry()
        r.add(metrics.Gauge("ocpp_connections", "Open WebSocket connections.",
                            read=lambda: len(gateway.sessions)))
        r.add(metrics.Gauge("ocpp_connections_max",
                            "Pile connections held at most (open-files limit less a reserve).",
                            read=lambda: gateway.max_piles))
        self.refused = r.add(metrics.Counter(
            "ocpp_connections_refused", "Handshakes refused with 503, by reason.",
            ("reason",)))
        self.messages_in = r.add(metrics.Counter("ocpp_messages_in",
                                                 "Messages received, by action.", ("action",)))
        self.messages_out = r.add(metrics.Counter("ocpp_messages_out",
                                                  "Messages sent, by action.", ("action",)))
        self.errors = r.add(metrics.Counter("ocpp_errors", "Bad input and failures, by kind.",
                                            ("kind",)))
        self.latency = r.add(metrics.Histogram(
            "ocpp_reply_latency_seconds", "Time from receiving a call to sending its reply.",
            ("action",)))
        r.add(metrics.Gauge("ocpp_framelog_backlog", "Frame log rows waiting to be written.",
                            read=lambda: len(gateway.frames)))
        self.loop_lag = r.add(metrics.Histogram(
            "ocpp_event_loop_lag_seconds",
            f"How late the event loop ran a timer due every {LAG_PROBE_S * 1000:g} ms (a "
            "message waits this long before it is read).", buckets=LAG_BUCKETS))
        self.loop_lag_recent: deque = deque(maxlen=int(LAG_WINDOW_S / LAG_PROBE_S))
        r.add(metrics.Gauge("ocpp_event_loop_lag_max_seconds",
                            f"The largest event-loop lag of the last {LAG_WINDOW_S} s.",
                            read=lambda: max(self.loop_lag_recent, default=0.0)))
        self.gc_pause = r.add(metrics.Histogram(
            "ocpp_gc_pause_seconds", "Garbage collections (any thread) and how long each "
            "stopped the process, by generation.", ("generation",), buckets=LAG_BUCKETS))
        r.add(metrics.Gauge("ocpp_jobs_backlog",
                            "Domain events of answered calls not yet dispatched (all piles).",
                            read=lambda: gateway.jobs_backlog))

    def error(self, kind: str) -> None:
        self.errors.inc(kind)


class _Wire:
    """The session's connection: every message in and out goes to the frame log."""

    def __init__(self, ws: ServerConnection, session: OcppSession) -> None:
        self.ws = ws
        self.session = session

    async def recv(self) -> str:
        message = await self.ws.recv()
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        self.session.log("in", message)
        return message

    async def send(self, message: str) -> None:
        self.session.log("out", message)
        await self.ws.send(message)


class OcppSession(ChargePoint):
    """One charge point's connection, central-system side (OCPP 1.6J core profile)."""

    _ids = itertools.count(1)

    def __init__(self, gateway: OcppGateway, ws: ServerConnection, pile_code: str,
                 decision: port.LoginDecision) -> None:
        super().__init__(pile_code, _Wire(ws, self),
                         response_timeout=settings.YKC_COMMAND_TIMEOUT_S * 3)
        self.gateway = gateway
        self.ws = ws
        self.cid = f"ocpp-{next(self._ids)}"
        self.pile_code = pile_code
        self.schema = decision.schema
        self.heartbeat_interval = decision.heartbeat_interval_s
        self.connectors: dict[int, str] = {no: str(s) for no, s in decision.connectors.items()}
        self.booted = False
        self.rejected = False  # our BootNotification reply said Rejected: closing
        self.closed = False
        self.recent: dict[str, tuple[str, str]] = {}  # unique id → (request, response)
        self.meter_waiters: dict[int, list[asyncio.Future]] = {}
        self.marked_online_at = 0.0
        self.opened_at = time.time()
        self.peer = ""
        self.password: str | None = None  # presented at the handshake (checked again at boot)
        self.rate_unit: str | None = None  # "W" / "A" for charging profiles, asked once
        # Domain events of calls already answered, dispatched in order (``job``).
        self.jobs_pending = 0
        self.idle = asyncio.Event()
        self.idle.set()

    # --- plumbing -------------------------------------------------------------------

    def log(self, direction: str, text: str) -> None:
        self.gateway.frame(self, direction, text)

    def db(self, fn, *args):
        return self.gateway.run_db(fn, self.schema, *args)

    def job(self, fn, *args, done=None, failed=None) -> None:
        """Run ``fn(schema, *args)`` in the background after this pile's earlier jobs,
        without holding the reply; then ``done(result)`` (or ``failed()``) on the loop."""
        self.jobs_pending += 1
        self.idle.clear()
        self.gateway.lane(self.pile_code).add((self, fn, args, done, failed))

    def job_finished(self) -> None:
        self.jobs_pending -= 1
        if not self.jobs_pending:
            self.idle.set()

    async def settle(self) -> None:
        """Wait for this pile's queued jobs, so what the next call does reaches the domain
        after the events of the calls before it."""
        if self.jobs_pending:
            await self.idle.wait()

    async def route_message(self, raw_msg):
        """Route one message: calls are answered (a CALLERROR for bad input), replies go
        to the pending call; nothing here closes the connection."""
        received = time.monotonic()
        gw = self.gateway
        gw.live.pile_seen(self.schema, self.pile_code, time.time())
        gw.still_online(self)
        try:
            msg = unpack(raw_msg)
        except OCPPError as error:
            await self._bad_frame(raw_msg, error)
            return
        except (ValueError, RecursionError):
            # Not JSON the library can read: nesting deeper than the parser's recursion
            # limit, or an integer longer than Python converts (4,300 digits).
            await self._bad_frame(raw_msg, FormatViolationError(
                description="message is not JSON we can read"))
            return
        if msg.message_type_id != MessageType.Call:
            gw.metrics.messages_in.inc("CallResult" if msg.message_type_id == MessageType.CallResult
                                       else "CallError")
            self._response_queue.put_nowait(msg)
            return
        action = str(msg.action)
        gw.metrics.messages_in.inc(action[:40])
        if not isinstance(msg.unique_id, str) or not isinstance(msg.payload, dict) or \
                not isinstance(msg.action, str):
            gw.metrics.error("formation_violation")
            await self._send(call_error(str(msg.unique_id)[:36], "FormationViolation",
                                        "unique id and action are strings, payload an object"))
            return
        seen = self.recent.get(msg.unique_id)
        if seen is not None:
            if seen[0] == raw_msg:  # the pile missed our reply: answer it again
                gw.metrics.error("repeated_call")
                await self._send(seen[1])
            else:
                gw.metrics.error("duplicate_unique_id")
                await self._send(call_error(msg.unique_id, "ProtocolError",
                                            "unique id already used for another call"))
            return
        if action != Action.boot_notification and not self.booted:
            self.booted = bool(await gw.redis.exists(booted_key(self.pile_code)))
            if not self.booted:
                gw.metrics.error("before_boot")
                await self._send(call_error(msg.unique_id, "SecurityError",
                                            "BootNotification not accepted yet"))
                return
        self._replied = None
        try:
            # OCPP-J lets a pile have one call outstanding (§4.1.1): each call but Heartbeat
            # (nothing of the domain in it) is handled once the domain events of the calls
            # before it are dispatched (nothing to wait for at protocol cadence). The events
            # of this one (StatusNotification, MeterValues) are dispatched after its reply,
            # while the pile sends the next.
            if self.jobs_pending and action != "Heartbeat":
                await self.settle()
            if action == "Heartbeat" and not msg.payload:
                # The most frequent call and the simplest (its schema is an empty object):
                # answered here, without the library's per-call schema validation,
                # signature inspection and dataclass round trip.
                await self._send(json.dumps(
                    [MessageType.CallResult, msg.unique_id,
                     {"currentTime": datetime.now(UTC).isoformat()}], separators=(",", ":")),
                    "CallResult")
            else:
                await self._handle_call(msg)
        except OCPPError as error:
            gw.metrics.error(f"call_{error.code}")
            logger.info("%s: %s refused: %s %s", self.pile_code, action, error.code,
                        error.description)
            await self._send(call_error(msg.unique_id, error.code, error.description or "",
                                        error.details if isinstance(error.details, dict) else None))
        except Exception:
            # Whatever the library or a handler did not expect (a payload nested past the
            # recursion limit in schema validation, say): this call fails, the session stays.
            gw.metrics.error("call_failed")
            logger.exception("%s: %s failed", self.pile_code, action[:40])
            await self._send(call_error(msg.unique_id, "InternalError", "call not processed"))
        gw.metrics.latency.observe(time.monotonic() - received, action[:40])
        if self.rejected:  # BootNotification rejected: the reply is out, hang up
            gw.metrics.error("boot_rejected_closed")
            await self.ws.close(CLOSE_POLICY, "BootNotification rejected")
            return
        if self._replied is not None:
            self.recent[msg.unique_id] = (raw_msg, self._replied)
            if len(self.recent) > RECENT_IDS:
                del self.recent[next(iter(self.recent))]

    async def _send(self, message, name: str | None = None):
        """Send ``message`` (JSON text); ``name`` is its action or "CallResult" /
        "CallError" when the caller knows it (else read from the message)."""
        kind = None
        if name is None:
            try:
                kind = json.loads(message)
                name = kind[2] if kind[0] == MessageType.Call else (
                    "CallResult" if kind[0] == MessageType.CallResult else "CallError")
            except (ValueError, IndexError, TypeError, KeyError):
                name = "?"
        if name in ("CallResult", "CallError"):
            self._replied = message  # the answer to the call being handled
            if name == "CallError" and kind is not None and kind[2] == "InternalError":
                self.gateway.metrics.error("handler_failed")
        self.gateway.metrics.messages_out.inc(str(name)[:40])
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(message)

    async def _bad_frame(self, raw_msg, error: OCPPError) -> None:
        """A message that is not an OCPP array: answered with the unique id we can read."""
        unique_id = "-1"
        code = error.code
        try:
            data = json.loads(raw_msg)
        except (ValueError, RecursionError):
            data = None
            code = "FormationViolation"
        if isinstance(data, list):
            if len(data) > 1 and isinstance(data[1], str):
                unique_id = data[1]
            if not data or data[0] not in (2, 3, 4):
                code = "ProtocolError"
                description = "unknown message type id"
            else:
                description = error.description or "malformed message"
        else:
            code = "FormationViolation"
            description = "not an OCPP-J message array"
        self.gateway.metrics.error(f"bad_{_V16_CODES.get(code, code)}")
        logger.info("%s: bad message %.200r: %s", self.pile_code, raw_msg, code)
        if isinstance(data, list) and data and data[0] in (3, 4):
            return  # never answer a reply with an error (OCPP-J §4.2.3)
        await self._send(call_error(unique_id, code, description))

    # --- calls from the pile --------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str,
                      firmware_version: str = "", iccid: str = "", **_):
        decision = await self.gateway.login(port.PileLogin(
            pile_code=self.pile_code, peer=self.peer, at=datetime.now(UTC),
            firmware_version=firmware_version or "", iccid=iccid or "", protocol="ocpp",
            password=self.password), self.cid)
        now = datetime.now(UTC).isoformat()
        if not decision.accepted:
            # OCPP 1.6 §4.2: a rejected pile sends nothing until ``interval`` has passed and
            # answers nothing meanwhile; the Central System may close the connection to free
            # its resources. We do, once this reply is out (``route_message``), and forget
            # any earlier boot, so a reconnect must boot again.
            self.gateway.metrics.error(f"boot_{decision.refusal}")
            logger.warning("OCPP boot of %s from %s rejected: %s", self.pile_code, self.peer,
                           decision.refusal)
            self.booted = False
            self.rejected = True
            await self.gateway.redis.delete(booted_key(self.pile_code))
            return call_result.BootNotification(current_time=now, interval=BOOT_RETRY_S,
                                                status="Rejected")
        self.booted = True
        self.heartbeat_interval = decision.heartbeat_interval_s
        await self.gateway.redis.set(booted_key(self.pile_code), "1", ex=BOOTED_TTL_S)
        return call_result.BootNotification(current_time=now,
                                            interval=decision.heartbeat_interval_s,
                                            status="Accepted")

    @on(Action.heartbeat)
    def on_heartbeat(self):
        return call_result.Heartbeat(current_time=datetime.now(UTC).isoformat())

    @on(Action.status_notification)
    async def on_status(self, connector_id: int, error_code: str, status: str,
                        timestamp: str | None = None, info: str | None = None,
                        vendor_error_code: str | None = None, **_):
        at = mapping.timestamp(timestamp)
        fault = None if error_code == "NoError" else "/".join(
            x for x in (error_code, vendor_error_code, info) if x)[:40]
        if connector_id == 0:  # the pile itself: a pile fault is every connector's
            targets = {no: mapping.status(status) for no in self.connectors} \
                if status in ("Faulted", "Unavailable") else {}
        else:
            targets = {connector_id: mapping.status(status)}
        events: list = []
        changed: dict[int, str] = {}
        for no, new in targets.items():
            self.gateway.live.connector(self.schema, self.pile_code, no, {"status": new})
            if self.connectors.get(no) != new:
                self.connectors[no] = changed[no] = str(new)
                events.append(port.ConnectorStatusChanged(self.pile_code, no, new, at))
            events.append(port.Progress(
                pile_code=self.pile_code, connector_no=no, status=new, at=at,
                plugged=status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE",
                                   "Finishing"),
                fault_code=fault))

        def forget() -> None:
            # Not dispatched: the next report of the same status is a change again.
            for no, new in changed.items():
                if self.connectors.get(no) == new:
                    self.connectors[no] = ""

        if events:  # the reply is empty: the events follow it, in order (``job``)
            self.job(_dispatch_all, events, failed=forget)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str):
        status = await self.db(transactions.authorize, self.pile_code, id_tag)
        return call_result.Authorize(id_tag_info={"status": status})

    @on(Action.start_transaction)
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                       **_):
        if connector_id < 1:
            raise _property("connectorId of a transaction is 1 or more")
        started = await self.db(transactions.start_transaction, self.pile_code, connector_id,
                                id_tag, meter_start, mapping.timestamp(timestamp))
        self.gateway.live.connector(self.schema, self.pile_code, connector_id,
                                    {"trade_no": started.trade_no})
        return call_result.StartTransaction(transaction_id=started.transaction_id,
                                            id_tag_info={"status": started.status})

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list,
                              transaction_id: int | None = None):
        readings = [mapping.readings(v) for v in meter_value]
        status = port.ConnectorStatus(self.connectors.get(connector_id) or "idle") \
            if self.connectors.get(connector_id) in set(port.ConnectorStatus) \
            else port.ConnectorStatus.IDLE

        def live(sent: list[port.Progress]) -> None:
            for event in sent[-1:]:
                self.gateway.live.connector(self.schema, self.pile_code, connector_id, {
                    "status": event.status, "trade_no": event.trade_no or "",
                    "energy_kwh": event.energy_kwh, "power_kw": event.power_kw,
                    "voltage_v": event.voltage_v, "current_a": event.current_a,
                    "soc_percent": event.soc_percent})

        # The reply is empty: the readings reach the domain after it, in order (``job``;
        # a StopTransaction waits for them), deduplicated there by transaction and time.
        self.job(transactions.meter_values, self.pile_code, connector_id, transaction_id,
                 readings, status, done=live)
        for future in self.meter_waiters.pop(connector_id, []):
            if not future.done():
                future.set_result(readings[-1] if readings else None)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int,
                      reason: str | None = None, id_tag: str | None = None,
                      transaction_data: list | None = None, **kwargs):
        data = [mapping.readings(v) for v in transaction_data or ()]
        running = [no for no, s in self.connectors.items() if s in ("charging", "finishing")]
        raw = json.dumps({"transactionId": transaction_id, "meterStop": meter_stop,
                          "timestamp": timestamp, "reason": reason, "idTag": id_tag})
        ack = await self.db(transactions.stop_transaction, self.pile_code, transaction_id,
                            meter_stop, mapping.timestamp(timestamp), reason, id_tag, data,
                            running[0] if len(running) == 1 else 1, raw)
        if not (isinstance(ack, port.RecordAck) and ack.stored):
            self.gateway.metrics.error("record_not_stored")
            raise _internal("transaction not stored; send it again")
        return call_result.StopTransaction(
            id_tag_info={"status": "Accepted"} if id_tag else None)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                         data: str | None = None):
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics(self, status: str):
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware(self, status: str):
        """Progress of an UpdateFirmware: recorded on the pile's update under way."""
        ours = mapping.FIRMWARE_STATUS.get(status)
        if ours is not None:
            await self.db(handlers.dispatch, port.FirmwareStatus(
                pile_code=self.pile_code, status=str(ours), at=datetime.now(UTC),
                detail=status))
        return call_result.FirmwareStatusNotification()


def _dispatch_all(schema: str, events: list) -> None:
    for event in events:
        handlers.dispatch(schema, event)


def _property(text: str) -> OCPPError:
    from ocpp.exceptions import PropertyConstraintViolationError

    return PropertyConstraintViolationError(description=text)


def _internal(text: str) -> OCPPError:
    from ocpp.exceptions import InternalError

    return InternalError(description=text)


class JobLane:
    """Runs the queued jobs of its piles in arrival order (so each pile's in order), as
    batches: whatever queued while the previous batch ran goes to the database in one
    thread call and one transaction, a savepoint per job (one commit instead of one per
    statement); a batch that fails to commit is run again job by job."""

    MAX_BATCH = 200

    def __init__(self, gateway: OcppGateway) -> None:
        self.gateway = gateway
        self.queue: deque = deque()
        self.task: asyncio.Task | None = None

    def add(self, item: tuple) -> None:
        self.queue.append(item)
        self.gateway.jobs_backlog += 1
        if self.task is None:
            self.task = self.gateway.loop.create_task(self._run())

    async def _run(self) -> None:
        gw = self.gateway
        try:
            while self.queue:
                batch = [self.queue.popleft()
                         for _ in range(min(len(self.queue), self.MAX_BATCH))]
                calls = [(session.schema, fn, args) for session, fn, args, _, _ in batch]
                try:
                    results = await gw.run_jobs(_run_batch, calls, True)
                except Exception:
                    gw.metrics.error("job_batch_failed")
                    logger.exception("a batch of %d jobs failed; running them one by one",
                                     len(batch))
                    try:
                        results = await gw.run_jobs(_run_batch, calls, False)
                    except Exception:
                        logger.exception("a batch of %d jobs failed again", len(batch))
                        results = [(False, None)] * len(batch)
                for (session, fn, _, done, failed), (ok, result) in zip(batch, results,
                                                                        strict=True):
                    gw.jobs_backlog -= 1
                    try:
                        if not ok:
                            gw.metrics.error("job_failed")
                            if failed is not None:
                                failed()
                        elif done is not None:
                            done(result)
                    except Exception:
                        logger.exception("%s: after %s", session.pile_code,
                                         getattr(fn, "__name__", fn))
                    finally:
                        session.job_finished()
        finally:
            self.task = None


# Jobs whose batch form takes many calls at once: ``batch(schema, [args, ...])`` returns
# the result of each, in a fixed number of statements (MeterValues: ``transactions``).
BATCHED = {transactions.meter_values: transactions.meter_values_batch}


def _run_batch(calls: list[tuple], together: bool) -> list[tuple[bool, object]]:
    """Run ``fn(schema, *args)`` for each call, in order: (ok, result) each. ``together``:
    in one transaction, a savepoint per call (a failing call is rolled back alone), and
    the calls of a job with a batch form (``BATCHED``) of one schema as one call of it, in
    the place of the first (a pile's next call waits for its job, so a batch holds at most
    one job of each pile and regrouping keeps every pile's order); a group that fails is
    run again call by call. A broken connection fails the whole batch (run again, not
    together). Alone, a call that meets a broken connection is tried once more on a new
    one. Celery tasks the calls queue in batch form (``evplatform.queue.tasks_batched``,
    e.g. CEC status pushes) go as one per kind once the batch has committed."""
    from django.db import InterfaceError, OperationalError, connection, transaction

    from evplatform.queue import tasks_batched

    out: list[tuple[bool, object] | None] = [None] * len(calls)
    groups: dict[tuple, list[int]] = {}
    if together:
        for i, (schema, fn, _) in enumerate(calls):
            if fn in BATCHED:
                groups.setdefault((BATCHED[fn], schema), []).append(i)
        groups = {key: members for key, members in groups.items() if len(members) > 1}

    def grouped(first: int) -> bool:
        for (batch, schema), members in groups.items():
            if members[0] != first:
                continue
            try:
                with transaction.atomic():
                    results = batch(schema, [calls[i][2] for i in members])
            except (OperationalError, InterfaceError):
                raise
            except Exception:
                logger.exception("%s failed; its calls run one by one",
                                 getattr(batch, "__name__", batch))
                return False
            for i, result in zip(members, results, strict=True):
                out[i] = (True, result)
            return True
        return False

    def each() -> list[tuple[bool, object]]:
        for position, (schema, fn, args) in enumerate(calls):
            if out[position] is not None or (groups and grouped(position)):
                continue
            for attempt in (1, 2):
                try:
                    with transaction.atomic():
                        out[position] = (True, fn(schema, *args))
                    break
                except (OperationalError, InterfaceError):
                    if together:
                        raise
                    connection.close()
                    if attempt == 2:
                        logger.exception("%s failed", getattr(fn, "__name__", fn))
                        out[position] = (False, None)
                except Exception:
                    logger.exception("%s failed", getattr(fn, "__name__", fn))
                    out[position] = (False, None)
                    break
        return out

    # The batch's CEC status pushes (``cec.connector_statuses``) go as one task at its end.
    with tasks_batched():
        if not together:
            return each()
        with transaction.atomic():
            return each()


class OcppGateway:
    """The server: accepts charge points on ``host:port``, serves metrics on
    ``metrics_port``, consumes the command bus as ``gateway_id``."""

    def __init__(self, *, host: str = "0.0.0.0", port: int = 8769,
                 metrics_host: str = "127.0.0.1", metrics_port: int | None = None,
                 gateway_id: str | None = None, db_threads: int | None = None,
                 redis_url: str | None = None, max_piles: int | None = None) -> None:
        self.host, self.port = host, port
        self.metrics_host, self.metrics_port = metrics_host, metrics_port
        self.gateway_id = gateway_id or f"ocpp-{socket.gethostname()}-{os.getpid()}"
        db_threads = db_threads or settings.YKC_DB_THREADS
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="ocpp-db")
        # One descriptor per pile under the open-files limit, less the gateway's own
        # (``protocols.limits``): past it, handshakes are answered 503.
        capacity = limits.pile_capacity(own_connections=db_threads + 4 + JOB_LANES
                                           + REDIS_CONNECTIONS)
        self.max_piles = capacity if max_piles is None else min(max_piles, capacity)
        # Liveness and frame-log writes: a slow database delays these before the replies.
        # The piles' domain jobs too (``JobLane``), one thread per lane.
        self.background = ThreadPoolExecutor(max_workers=4 + JOB_LANES,
                                             thread_name_prefix="ocpp-bg")
        self.redis_url = redis_url or settings.REDIS_URL
        self.sessions: dict[str, OcppSession] = {}
        self.frames: list[tuple] = []
        self.jobs_backlog = 0
        # Online marks queued (``mark_online``): schema → pile code → when heard.
        self.online_marks: dict[str, dict[str, datetime]] = {}
        self.online_flushing: asyncio.Task | None = None
        # At stop: the piles whose connections it closed, schema → [(code, when)], marked
        # offline together (``_mark_offline_at_stop``); None once that began (the piles
        # gone after it are left to the reconciler and counted in ``offline_left``).
        self.stopping = False
        self.offline_at_stop: dict[str, list[tuple[str, datetime]]] | None = {}
        self.offline_left = 0
        # The piles' domain jobs: a pile always on the same lane (its order kept), lanes in
        # parallel on the background pool.
        self.lanes = [JobLane(self) for _ in range(JOB_LANES)]
        self.metrics = GatewayMetrics(self)
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        # YKC's ``BatchedQuery`` keeps its batch tasks here (the same set: awaited at stop).
        self._offline_tasks = self._background
        self.server = None
        self.metrics_server = None
        self.gc_timer: gc_pauses.PauseTimer | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        from protocols.ykc.gateway.writers import LiveWriter

        self.loop = asyncio.get_running_loop()
        # Logins (handshake and BootNotification) decided with the others of the moment:
        # one ``port.PileLogins`` per 20 ms window, as YKC's 0x01 (a connect storm of
        # thousands of piles is tens of database calls a second, not one per pile).
        self.logins = BatchedQuery(self, logins_decide)
        self.login_redis = asyncio.Semaphore(LOGIN_REDIS_AT_ONCE)
        # The library validates each message against its JSON schema in the default
        # thread pool (two thread hops per call, the event loop waiting on the GIL):
        # validating inline costs less than the hops.
        ocpp_messages.ASYNC_VALIDATION = False
        pool = aioredis.BlockingConnectionPool.from_url(
            self.redis_url, max_connections=REDIS_CONNECTIONS, timeout=10,
            decode_responses=True)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.live = LiveWriter(self.redis, sentinel=bus.keys_key(self.gateway_id),
                               on_lost=self.redis_lost)
        self.bus = bus.GatewayBus(self.redis, self.gateway_id, self.execute, self.kick,
                                  on_lost=self.redis_lost)
        await self.bus.start()
        self.live.start()
        # Each collection's pause into ``ocpp_gc_pause_seconds`` (the whole process stops).
        self.gc_timer = gc_pauses.PauseTimer(self.metrics.gc_pause)
        self.gc_timer.install()
        self.server = await serve(self.connection, self.host, self.port,
                                  subprotocols=[SUBPROTOCOL], process_request=self.handshake,
                                  ping_interval=60, ping_timeout=60, max_size=2**20,
                                  backlog=limits.LISTEN_BACKLOG)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        if self.metrics_port is not None:
            self.metrics_server = await metrics.serve(self.metrics.registry, self.metrics_host,
                                                      self.metrics_port)
            self.metrics_port = self.metrics_server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._flush_frames(), name="ocpp-frames"),
                       asyncio.create_task(self._sweep(), name="ocpp-sweep"),
                       asyncio.create_task(self._flush_online(), name="ocpp-online"),
                       asyncio.create_task(self._probe_lag(), name="ocpp-lag")]
        logger.info("OCPP gateway %s listening on ws://%s:%s%s{chargePointId}",
                    self.gateway_id, self.host, self.port, PATH_PREFIX)

    async def stop(self) -> None:
        """Stop accepting, close every connection (each pile's queued jobs run first), mark
        the closed piles offline in batches for up to ``STOP_OFFLINE_S`` s (the rest are
        left to the reconciler, ``stations.services.piles_mark_offline``: offline once
        silent for 3 heartbeat intervals), flush the buffers and close the thread pools
        after the last work given to them."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        if self.gc_timer is not None:
            self.gc_timer.remove()
        if self.metrics_server is not None:
            self.metrics_server.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), STOP_CLOSE_S)
        lanes = [lane.task for lane in self.lanes if lane.task is not None]
        if lanes:
            await asyncio.wait(lanes, timeout=STOP_CLOSE_S)
        if self._background:
            await asyncio.wait(list(self._background), timeout=10)
        await self._mark_offline_at_stop()
        self.live.sentinel = ""
        await self.bus.stop()
        await self.live.stop()
        await self.flush_frames()
        await self.redis.aclose(close_connection_pool=True)
        await self.loop.run_in_executor(None, self._close_db_threads)
        if self.offline_left:
            logger.info("%d piles closed late in the stop: offline marks left to the "
                        "reconciler", self.offline_left)

    async def _mark_offline_at_stop(self) -> None:
        """Mark offline the piles whose connections the stop closed (``offline_at_stop``):
        ``STOP_OFFLINE_BATCH`` at a time, each batch one thread call and one transaction
        with a savepoint per pile (``_run_batch``), one after another until
        ``STOP_OFFLINE_S`` s have passed; the piles not written then (or whose batch
        failed) are left to the reconciler. One log line says how many of each. At
        10,000 piles one by one this was 10,000 thread calls still being queued when the
        pools shut down ("cannot schedule new futures after shutdown")."""
        marks, self.offline_at_stop = self.offline_at_stop or {}, None
        deadline = self.loop.time() + STOP_OFFLINE_S
        written = left = 0
        for schema, gone in marks.items():
            for start in range(0, len(gone), STOP_OFFLINE_BATCH):
                chunk = gone[start:start + STOP_OFFLINE_BATCH]
                if self.loop.time() > deadline:
                    left += len(chunk)
                    continue
                calls = [(schema, handlers.dispatch, (port.PileOffline(code, at),))
                         for code, at in chunk]
                try:
                    results = await self.run_background(_run_batch, calls, True)
                except Exception as error:
                    logger.warning("stop: %d offline marks not written: %s", len(chunk),
                                   str(error).splitlines()[0][:200] if str(error)
                                   else type(error).__name__)
                    left += len(chunk)
                    continue
                done = sum(1 for ok, _ in results if ok)
                written, left = written + done, left + len(chunk) - done
        if written or left:
            logger.info("stop: %d piles marked offline, %d left to the reconciler",
                        written, left)

    def _close_db_threads(self) -> None:
        from protocols.ykc.gateway.server import YkcGateway

        YkcGateway._close_db_threads(self.executor)
        YkcGateway._close_db_threads(self.background)

    async def run_db(self, fn, *args):
        """Run ``fn`` in the pool for what a pile's reply waits on."""
        from protocols.ykc import store

        return await self.loop.run_in_executor(self.executor,
                                               lambda: store.db_call(fn, *args))

    async def run_jobs(self, fn, *args):
        from protocols.ykc import store

        return await self.loop.run_in_executor(self.background,
                                               lambda: store.db_call(fn, *args))

    async def run_background(self, fn, *args):
        from protocols.ykc import store

        return await self.loop.run_in_executor(self.background,
                                               lambda: store.db_call(fn, *args))

    def lane(self, pile_code: str) -> JobLane:
        return self.lanes[zlib.crc32(pile_code.encode()) % len(self.lanes)]

    def spawn(self, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- handshake = login ----------------------------------------------------------

    async def handshake(self, connection: ServerConnection, request):
        """Refuse anything but ``/ocpp/{known pile}`` with subprotocol ocpp1.6 (and the
        right password when the pile has one) before the upgrade."""
        if len(self.server.all_connections) >= self.max_piles:
            self.metrics.refused.inc("pile_limit")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "gateway full\n")
        path = request.path.split("?", 1)[0]
        code = path[len(PATH_PREFIX):].strip("/") if path.startswith(PATH_PREFIX) else ""
        if not code or "/" in code or len(code) > 14:
            self.metrics.error("bad_path")
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if SUBPROTOCOL not in offered:
            self.metrics.error("no_subprotocol")
            return connection.respond(HTTPStatus.BAD_REQUEST, "subprotocol ocpp1.6 required\n")
        password = _basic_password(request.headers.get("Authorization", ""), code)
        peer = connection.remote_address
        peer_text = f"{peer[0]}:{peer[1]}" if peer else ""
        decision = await self.login(port.PileLogin(
            pile_code=code, peer=peer_text, at=datetime.now(UTC), protocol="ocpp",
            password=password, iccid=None), id(connection))  # the SIM: at BootNotification
        if not decision.accepted:
            self.metrics.error(f"login_{decision.refusal}")
            logger.warning("OCPP login of %s from %s refused: %s", code, peer_text,
                           decision.refusal)
            if decision.refusal == port.LoginRefusal.BAD_PASSWORD:
                response = connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
                return response
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        holder = await self.takeover_holder(code, decision, peer_text)
        if holder is not None:
            self.takeover_refuse(code, decision.schema, peer_text, holder)
            return connection.respond(HTTPStatus.CONFLICT, "charge point connected\n")
        connection.evp_login = (code, decision, peer_text, password)
        return None

    async def login(self, event: port.PileLogin, key) -> port.LoginDecision:
        """Decide ``event`` with the other logins of the moment (``self.logins``: one
        ``port.PileLogins`` per window); ``key`` tells this attempt from another of the same
        pile in the window (a connection or session id). When the batch fails (say, the
        database dropped its connection), this login is decided on its own, so no pile of
        the batch is lost with it; a second failure propagates."""
        try:
            return await self.logins.ask(get_public_schema_name(), (event.pile_code, key),
                                         event)
        except Exception:
            self.metrics.error("login_batch_failed")
            logger.warning("%s: login batch failed, deciding alone", event.pile_code,
                           exc_info=True)
            return await self.run_db(handlers.dispatch, None, event)

    async def takeover_holder(self, code: str, decision: port.LoginDecision,
                              peer: str) -> str | None:
        """The address of a live connection that keeps ``peer`` from taking the pile, or
        None. As YKC's rule (issue #21): a connection for a pile already held — here or by
        another gateway (the bus route names it) — replaces it only from the same host
        (the pile reconnecting, its old socket not yet seen closed) or when the held one is
        stale: nothing heard for ``YKC_IDLE_HEARTBEATS`` heartbeat intervals."""
        host = _host(peer)
        limit = settings.YKC_IDLE_HEARTBEATS
        now = time.time()
        session = self.sessions.get(code)
        if session is not None and not session.closed:
            last = getattr(session.ws, "evp_last_rx", 0.0) or session.opened_at
            if _host(session.peer) == host or now - last > limit * session.heartbeat_interval:
                return None
            return session.peer
        # At most LOGIN_REDIS_AT_ONCE handshakes ask Redis at a time: a login batch
        # releases hundreds together, more than the Redis pool holds.
        async with self.login_redis:
            held = await self.bus.holder(decision.schema, code)
        if held is None:
            return None
        stale = held.last_seen is None or \
            now - held.last_seen > limit * decision.heartbeat_interval_s
        if stale or (held.peer and _host(held.peer) == host):
            return None
        return held.peer or held.gateway_id

    def takeover_refuse(self, code: str, schema: str, peer: str, holder: str) -> None:
        """Count a refused takeover and have the domain record it (a refused login and an
        alarm on the pile)."""
        self.metrics.error("login_takeover")
        logger.warning("OCPP login of %s from %s refused: connected from %s", code, peer,
                       holder)
        self.spawn(self.run_background(handlers.dispatch, schema, port.PileTakeoverRefused(
            pile_code=code, peer=peer, holder_peer=holder, at=datetime.now(UTC))))

    async def connection(self, ws: ServerConnection) -> None:
        code, decision, peer, password = ws.evp_login
        # Two handshakes for one pile may both have passed the rule: the later loses.
        holder = await self.takeover_holder(code, decision, peer)
        if holder is not None:
            self.takeover_refuse(code, decision.schema, peer, holder)
            await ws.close(1008, "charge point connected")
            return
        session = OcppSession(self, ws, code, decision)
        session.peer, session.password = peer, password
        previous = self.sessions.get(code)
        self.sessions[code] = session
        if previous is not None:
            logger.info("%s: new connection from %s replaces %s", code, peer, previous.peer)
            previous.closed = True
            await previous.ws.close(1000, "replaced")
            with contextlib.suppress(Exception):
                await previous.settle()  # its events before the new connection's
        await self.bus.register(session.schema, code, session.cid, peer)
        session.marked_online_at = self.loop.time()
        self.mark_online(session)  # written with the others of the moment, off its path
        try:
            await session.start()
        except ConnectionClosed:
            pass
        except Exception:
            self.metrics.error("session_failed")
            logger.exception("%s: session failed", code)
        finally:
            await self._gone(session)

    async def _gone(self, session: OcppSession) -> None:
        replaced = session.closed
        session.closed = True
        for waiters in session.meter_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(ConnectionError("pile disconnected"))
        if self.sessions.get(session.pile_code) is session:
            del self.sessions[session.pile_code]
        if replaced:
            return
        with contextlib.suppress(Exception):
            await self.bus.unregister(session.schema, session.pile_code, session.cid)
        with contextlib.suppress(Exception):
            await session.settle()  # its last events before the offline one
        # Its online mark must not land after the offline one and bring the pile back:
        # a queued one is dropped, one being written is waited for.
        self.online_marks.get(session.schema, {}).pop(session.pile_code, None)
        flushing = self.online_flushing
        if flushing is not None and not flushing.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(flushing)
        if session.pile_code not in self.sessions:
            if self.stopping:  # written with the others by ``stop``, or left (see there)
                if self.offline_at_stop is None:
                    self.offline_left += 1
                else:
                    self.offline_at_stop.setdefault(session.schema, []).append(
                        (session.pile_code, datetime.now(UTC)))
                return
            try:
                await self.run_db(handlers.dispatch, session.schema, port.PileOffline(
                    session.pile_code, datetime.now(UTC)))
            except Exception:
                logger.exception("%s: marking offline failed", session.pile_code)

    def kick(self, schema: str, pile_code: str, route: str) -> None:
        """The bus says a newer connection on another gateway took ``pile_code``."""
        session = self.sessions.get(pile_code)
        if session is not None and self.bus.route_value(session.cid) == route:
            logger.info("%s: connected elsewhere now, closing here", pile_code)
            del self.sessions[pile_code]
            session.closed = True
            self.spawn(session.ws.close(1000, "connected elsewhere"))

    def still_online(self, session: OcppSession) -> None:
        now = self.loop.time()
        if now - session.marked_online_at < LAST_SEEN_DB_EVERY_S:
            return
        session.marked_online_at = now
        self.mark_online(session)

    def mark_online(self, session: OcppSession) -> None:
        """Queue the pile's online mark: every ``ONLINE_FLUSH_S`` the marks of all piles
        go to the domain as one ``port.PilesOnline`` per operator (a fixed number of
        statements: at 10,000 piles ~300 marks a second, and 10,000 in a connect storm).
        A pile that goes offline drops its queued mark (``_gone``)."""
        self.online_marks.setdefault(session.schema, {})[session.pile_code] = \
            datetime.now(UTC)

    async def _flush_online(self) -> None:
        while True:
            await asyncio.sleep(ONLINE_FLUSH_S)
            self.online_flushing = self.loop.create_task(self.flush_online())
            with contextlib.suppress(Exception):
                await self.online_flushing

    async def flush_online(self) -> None:
        """Write the queued online marks (``mark_online``). Marks whose write fails (say,
        the batch lost a deadlock with a job batch updating the same connectors) are
        queued again for the next flush, but for piles no longer connected here."""
        marks, self.online_marks = self.online_marks, {}
        for schema, seen in marks.items():
            try:
                await self.run_background(handlers.dispatch, schema, port.PilesOnline(
                    tuple(port.PileOnline(code, at) for code, at in seen.items())))
            except Exception as error:
                self.metrics.error("online_marks_failed")
                logger.warning("%d online marks not written, again at the next flush: %s",
                               len(seen), str(error).splitlines()[0][:200] if str(error)
                               else type(error).__name__)
                queued = self.online_marks.setdefault(schema, {})
                for code, at in seen.items():
                    session = self.sessions.get(code)
                    if session is not None and session.schema == schema and \
                            not session.closed:
                        queued.setdefault(code, at)

    def redis_lost(self, just_seen=None) -> None:
        self.metrics.error("redis_lost")

        async def restore():
            with contextlib.suppress(Exception):
                await bus.set_alive(self.redis, self.gateway_id)
                await self.bus.refresh_routes()
                for session in list(self.sessions.values()):
                    if session.booted:
                        await self.redis.set(booted_key(session.pile_code), "1",
                                             ex=BOOTED_TTL_S)
        self.spawn(restore())

    async def _sweep(self) -> None:
        """Close connections silent for ``YKC_IDLE_HEARTBEATS`` heartbeat intervals (the
        WebSocket pings catch half-open TCP too)."""
        while True:
            await asyncio.sleep(5)
            horizon = time.time()
            # One pass, each session read once: building ``live_last`` per session made
            # this O(piles²), 0.15 s of the loop every 5 s at 1,000 piles (15 s at 10,000).
            for session in list(self.sessions.values()):
                last = getattr(session.ws, "evp_last_rx", 0.0)
                if last and horizon - last > settings.YKC_IDLE_HEARTBEATS * max(
                        session.heartbeat_interval, 60):
                    self.metrics.error("idle_timeout")
                    self.spawn(session.ws.close(1001, "silent"))

    async def _probe_lag(self) -> None:
        """Event-loop lag: sleep ``LAG_PROBE_S`` and record how late the loop woke us
        (seconds; ``ocpp_event_loop_lag_seconds``). A late timer is a late read of every
        socket: sync work on the loop thread, the job threads holding the GIL, GC."""
        clock = time.monotonic
        while True:
            due = clock() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            lag = max(clock() - due, 0.0)
            self.metrics.loop_lag.observe(lag)
            self.metrics.loop_lag_recent.append(lag)

    @property
    def live_last(self) -> dict[str, float]:
        return {s.pile_code: getattr(s.ws, "evp_last_rx", 0.0) for s in self.sessions.values()}

    # --- frame log ------------------------------------------------------------------

    def frame(self, session: OcppSession, direction: str, text: str) -> None:
        if direction == "in":
            session.ws.evp_last_rx = time.time()
        if len(self.frames) >= 100_000:
            self.metrics.error("framelog_dropped")
            return
        self.frames.append((session.schema, session.pile_code, time.time(), direction, text))

    async def _flush_frames(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.flush_frames()
            except Exception:
                self.metrics.error("batch_write_failed")
                logger.exception("frame log write failed")

    async def flush_frames(self) -> None:
        if not self.frames:
            return
        rows, self.frames = self.frames, []
        await self.run_background(_write_frames, rows)

    # --- commands from the bus ------------------------------------------------------

    async def execute(self, schema: str, data: dict) -> port.CommandResult:
        """Run one bus command on the pile's connection; the bus applies the deadline."""
        try:
            kind = data["type"]
            if kind in port.COMMANDS:
                command = port.command_from_dict(data)
            else:
                command = OCPP_COMMANDS[kind](**data["fields"])
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return port.CommandResult(ok=False, error="unsupported",
                                      detail={"type": str(data.get("type"))})
        session = self.sessions.get(command.pile_code)
        if session is None or session.schema != schema or session.closed:
            return port.CommandResult(ok=False, error="pile_offline")
        try:
            return await self._run(session, command)
        except OCPPError as error:
            return port.CommandResult(ok=False, error="refused",
                                      detail={"call_error": _V16_CODES.get(error.code,
                                                                           error.code),
                                              "description": error.description or ""})
        except ConnectionClosed:
            return port.CommandResult(ok=False, error="pile_offline")
        except ConnectionError:
            return port.CommandResult(ok=False, error="pile_offline")

    async def _call(self, session: OcppSession, payload):
        return await session.call(payload, suppress=False)

    async def _run(self, session: OcppSession, command) -> port.CommandResult:
        from . import commands as c

        if isinstance(command, port.RemoteStart):
            id_tag = await session.db(transactions.remote_start_prepare, session.pile_code,
                                      command.connector_no, command.trade_no)
            reply = await self._call(session, call.RemoteStartTransaction(
                id_tag=id_tag, connector_id=command.connector_no))
            detail = {"trade_no": command.trade_no, "connector_no": command.connector_no}
            if reply.status == "Accepted":
                return port.CommandResult(ok=True, detail=detail)
            # As YKC's refused 0x33: the order fails and its funds are released.
            self.spawn(session.db(transactions.remote_start_refused, session.pile_code,
                                  command.connector_no, command.trade_no))
            return port.CommandResult(ok=False, error="refused",
                                      detail={**detail, "status": reply.status})
        if isinstance(command, port.RemoteStop):
            found = await session.db(transactions.running, session.pile_code,
                                     command.connector_no, command.trade_no)
            if found is None:
                return port.CommandResult(ok=False, error="refused", detail={
                    "refusal": str(port.StopRefusal.NOT_CHARGING)})
            reply = await self._call(session, call.RemoteStopTransaction(transaction_id=found[0]))
            accepted = reply.status == "Accepted"
            self.spawn(session.db(handlers.dispatch, port.StopResult(
                pile_code=session.pile_code, connector_no=command.connector_no,
                accepted=accepted, refusal=None if accepted else port.StopRefusal.OTHER,
                at=datetime.now(UTC))))
            if accepted:
                return port.CommandResult(ok=True, detail={"transaction_id": found[0]})
            return port.CommandResult(ok=False, error="refused", detail={
                "refusal": str(port.StopRefusal.OTHER), "status": reply.status})
        if isinstance(command, port.ReadRealtime):
            future = self.loop.create_future()
            session.meter_waiters.setdefault(command.connector_no, []).append(future)
            reply = await self._call(session, call.TriggerMessage(
                requested_message="MeterValues", connector_id=command.connector_no))
            if reply.status != "Accepted":
                return port.CommandResult(ok=False, error="refused",
                                          detail={"status": reply.status})
            readings = await future
            detail = {"status": session.connectors.get(command.connector_no, "")}
            if readings is not None:
                detail.update({k: (str(v) if v is not None and not isinstance(v, int) else v)
                               for k, v in (("power_kw", readings.power_kw),
                                            ("voltage_v", readings.voltage_v),
                                            ("current_a", readings.current_a),
                                            ("soc_percent", readings.soc_percent))})
            return port.CommandResult(ok=True, detail=detail)
        if isinstance(command, port.BalanceUpdate):
            return port.CommandResult(ok=False, error="unsupported",
                                      detail={"reason": "OCPP 1.6 has no balance message"})
        if isinstance(command, port.PowerLimit):
            return await self._power_limit(session, command)
        if isinstance(command, port.Reboot):
            reply = await self._call(session, call.Reset(
                type="Soft" if command.when_idle else "Hard"))
            if reply.status == "Accepted":
                return port.CommandResult(ok=True)
            return port.CommandResult(ok=False, error="refused", detail={"status": reply.status})
        if isinstance(command, port.FirmwareUpdate):
            # UpdateFirmware's answer is empty: progress comes as FirmwareStatusNotification.
            await self._call(session, call.UpdateFirmware(
                location=command.url, retries=max(command.retries, 0),
                retrieve_date=datetime.now(UTC).isoformat().replace("+00:00", "Z")))
            return port.CommandResult(ok=True, detail={"status": "sent"})
        if isinstance(command, port.TimeSync | port.PushTariff):
            # OCPP 1.6 piles keep their own clock (set from BootNotification/Heartbeat
            # replies) and do not price: nothing to send.
            return port.CommandResult(ok=False, error="unsupported")
        payload = None
        if isinstance(command, c.OcppReset):
            payload = call.Reset(type=command.type)
        elif isinstance(command, c.OcppChangeAvailability):
            payload = call.ChangeAvailability(connector_id=command.connector_no,
                                              type=command.type)
        elif isinstance(command, c.OcppUnlockConnector):
            payload = call.UnlockConnector(connector_id=command.connector_no)
        elif isinstance(command, c.OcppTriggerMessage):
            payload = call.TriggerMessage(requested_message=command.requested_message,
                                          connector_id=command.connector_no)
        elif isinstance(command, c.OcppGetConfiguration):
            payload = call.GetConfiguration(key=list(command.keys) or None)
        elif isinstance(command, c.OcppChangeConfiguration):
            payload = call.ChangeConfiguration(key=command.key, value=command.value)
            if command.key == RATE_UNIT_KEY:
                session.rate_unit = None  # asked again before the next cap
        elif isinstance(command, c.OcppDataTransfer):
            payload = call.DataTransfer(vendor_id=command.vendor_id,
                                        message_id=command.message_id or None,
                                        data=command.data or None)
        if payload is None:
            return port.CommandResult(ok=False, error="unsupported")
        reply = await self._call(session, payload)
        detail = _jsonable(asdict(reply))
        status = detail.get("status")
        ok = status is None or status in ("Accepted", "Scheduled", "Unlocked")
        return port.CommandResult(ok=ok, error="" if ok else "refused", detail=detail)

    # --- load management: SetChargingProfile (Smart Charging profile) ----------------

    async def _rate_unit(self, session: OcppSession) -> str:
        """"W" or "A": how the pile takes charging schedules (its configuration key
        ``ChargingScheduleAllowedChargingRateUnit``, asked once per connection; "W" when it
        allows power or does not say)."""
        if session.rate_unit is None:
            try:
                reply = await self._call(session, call.GetConfiguration(
                    key=[RATE_UNIT_KEY]))
                values = [str(k.get("value") or "") for k in reply.configuration_key or []
                          if k.get("key") == RATE_UNIT_KEY]
            except OCPPError:
                values = []
            allowed = {v.strip().lower() for v in ",".join(values).split(",") if v.strip()}
            session.rate_unit = "A" if allowed and "power" not in allowed and \
                "current" in allowed else "W"
        return session.rate_unit

    async def _cap(self, session: OcppSession, max_power_kw: Decimal) -> port.CommandResult:
        """Cap the whole pile at ``max_power_kw`` with a ChargePointMaxProfile on connector
        0; ``detail["applied_kw"]`` is the cap as the pile holds it (whole W, or whole A at
        the nominal voltage and phases: never above the one asked)."""
        if max_power_kw <= 0:
            return port.CommandResult(ok=False, error="invalid",
                                      detail={"max_power_kw": str(max_power_kw)})
        unit = await self._rate_unit(session)
        period: dict = {"start_period": 0}
        if unit == "W":
            watts = (max_power_kw * 1000).to_integral_value(ROUND_DOWN)
            period["limit"] = int(watts)
            applied = watts / 1000
        else:
            per_amp_w = NOMINAL_VOLTAGE_V * NOMINAL_PHASES
            amps = (max_power_kw * 1000 / per_amp_w).to_integral_value(ROUND_DOWN)
            if amps < MIN_CURRENT_A:
                return port.CommandResult(ok=False, error="invalid", detail={
                    "max_power_kw": str(max_power_kw)})
            period.update(limit=int(amps), number_phases=NOMINAL_PHASES)
            applied = amps * per_amp_w / 1000
        profile = {
            "charging_profile_id": MAX_PROFILE_ID, "stack_level": 0,
            "charging_profile_purpose": "ChargePointMaxProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "start_schedule": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "charging_rate_unit": unit, "charging_schedule_period": [period]}}
        reply = await self._call(session, call.SetChargingProfile(connector_id=0,
                                                                  cs_charging_profiles=profile))
        if reply.status == "Accepted":
            return port.CommandResult(ok=True, detail={
                "applied_kw": str(applied.quantize(Decimal("0.001"), ROUND_DOWN)),
                "charging_rate_unit": unit})
        error = "invalid" if reply.status == "NotSupported" else "refused"
        return port.CommandResult(ok=False, error=error, detail={"status": reply.status})

    async def _power_limit(self, session: OcppSession, command: port.PowerLimit
                           ) -> port.CommandResult:
        """The port's PowerLimit: with ``enabled`` given, allow (ChangeAvailability
        Operative) or forbid (Inoperative, no cap sent) charging on the whole pile first;
        then the cap in kW, or at ``percent`` (30–100) of the pile's rating (the command's,
        else the platform's record of the pile)."""
        if command.percent is not None and not 30 <= command.percent <= 100:
            return port.CommandResult(ok=False, error="invalid",
                                      detail={"percent": command.percent})
        if command.max_power_kw is None and command.percent is None:
            return port.CommandResult(ok=False, error="invalid")
        if command.enabled is not None:
            reply = await self._call(session, call.ChangeAvailability(
                connector_id=0, type="Operative" if command.enabled else "Inoperative"))
            if reply.status not in ("Accepted", "Scheduled"):
                return port.CommandResult(ok=False, error="refused",
                                          detail={"status": reply.status})
            if not command.enabled:
                return port.CommandResult(ok=True)
        cap = command.cap_kw()
        if cap is None:
            piles = await session.db(handlers.dispatch, port.PilesQuery(
                pile_codes=(session.pile_code,)))
            cap = command.cap_kw(piles[0].rated_power_kw if piles else None)
        if not cap:
            return port.CommandResult(ok=False, error="invalid")
        return await self._cap(session, cap)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _host(peer: str) -> str:
    """The host of a ``host:port`` address (IPv6 hosts keep their colons)."""
    return peer.rsplit(":", 1)[0]


def _basic_password(header: str, code: str) -> str | None:
    """The password of an HTTP Basic ``Authorization`` header whose user is the pile code
    (OCPP 1.6 security profile 1); None when absent or malformed."""
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode(
            "utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return password if user == code else None


def _write_frames(rows: list[tuple]) -> None:
    """Frame log rows (schema, pile, epoch, direction, JSON text) → ``FrameLog``."""
    from protocols.ykc import store

    by_schema: dict[str, list[tuple]] = {}
    for schema, pile_code, at, direction, text in rows:
        try:
            data = json.loads(text)
            type_id = int(data[0]) if isinstance(data, list) and data and \
                isinstance(data[0], int) and 0 <= data[0] < 100 else 0
            name = (str(data[2]) if type_id == 2 and len(data) > 2
                    else {3: "CallResult", 4: "CallError"}.get(type_id, "Invalid"))
        except (ValueError, TypeError, IndexError, RecursionError):
            type_id, name = 0, "Invalid"
        by_schema.setdefault(schema, []).append((
            pile_code, datetime.fromtimestamp(at, UTC).isoformat(), direction, type_id,
            name[:40], "", text.encode("utf-8", "replace").hex().upper()))
    for schema, frames in by_schema.items():
        store.batch_write(schema=schema, frames=frames, messages=[])


async def run(gateway: OcppGateway, stop: asyncio.Event | None = None) -> None:
    """Start ``gateway`` and serve until ``stop`` is set (or forever)."""
    await gateway.start()
    # What start-up built (Django, the library's schemas) lives as long as the process:
    # out of the collector's generations, so its full collections walk only the piles'.
    gc.freeze()
    # Survivors frozen every GC_FREEZE_EVERY_S (after the young are collected, so their
    # cycles are not frozen as garbage), everything collected once per GC_THAW_EVERY_S.
    keeper = asyncio.create_task(gc_pauses.keep_young(GC_FREEZE_EVERY_S, GC_THAW_EVERY_S),
                                 name="ocpp-gc")
    try:
        await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        keeper.cancel()
        await gateway.stop()


__all__ = ["Call", "CallError", "CallResult", "OcppGateway", "OcppSession", "run"]
