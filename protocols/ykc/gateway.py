"""The YKC v1.6 TCP gateway: one asyncio process holding many piles' connections.

Per connection (:class:`PileConnection`, an ``asyncio.Protocol``): the codec's
``FrameSplitter`` cuts the byte stream (split and joined reads, resync on the next 0x68,
``YKC_MAX_FRAME_SIZE``); frames are handled in order. Replies that need nothing but the
frame — heartbeat 0x03 → 0x04 — are written synchronously inside ``data_received``;
anything that needs PostgreSQL runs in a bounded thread pool (``YKC_DB_THREADS``) and is
awaited only where the pile waits for an answer that depends on it (0x01, 0x05, 0x09,
0x31, 0x3B). Redis writes (live state, last-seen) are batched every 50 ms; the frame log,
meter samples and session messages are batched and written every 0.5 s.

Domain traffic goes through charging's port: its events and queries handed to
``charging.handlers.dispatch``, commands from ``charging.bus``, live state queued with
``charging.handlers.live_queue``. Bad input is counted in the metrics and logged, never
raised: see :meth:`PileConnection.data_received`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from charging import bus, handlers, port
from evplatform import money
from protocols import adapters, metrics

from . import codes, store
from . import messages as m
from .commands import YKC_COMMANDS, YkcPushBillingModel, YkcReboot, YkcTimeSync, YkcWorkParams
from .enums import StartMode
from .errors import BadCRC, BadField, BadLength, BadStartByte, EncodeError, FrameError
from .fields import PILE_TZ
from .frame import Frame, encode_frame
from .splitter import FrameSplitter

logger = logging.getLogger("protocols.ykc.gateway")

NAMES = {code: cls.__name__ for code, cls in m.MESSAGE_TYPES.items()}
SESSION_TYPES = frozenset((0x15, 0x17, 0x19, 0x1B, 0x1D, 0x21, 0x23, 0x25))
HEARTBEAT_TYPES = frozenset((0x03, 0x04))
ZERO_TRADE = "0" * 32
ZERO_CARD = "0" * 16
PERIODS = ("sharp", "peak", "flat", "valley")
# The database hears of a connected pile at least this often (stations' offline check
# falls back on it when Redis lost the last-seen scores).
LAST_SEEN_DB_EVERY_S = 30
GARBAGE_LIMIT = 1024  # bytes of garbage since the last good frame before we hang up
ERROR_LIMIT = 32  # framing errors since the last good frame before we hang up


def _code(frame_type: int) -> str:
    return f"0x{frame_type:02X}"


def connector_status(reading: m.RealtimeData) -> port.ConnectorStatus:
    """YKC 0x13 状态 + 是否插枪 → the port's connector status."""
    return codes.connector_status(reading.status, reading.plugged)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return int(value.value)
    if isinstance(value, Decimal | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _utc(moment: datetime | None, default: datetime) -> datetime:
    return moment.astimezone(UTC) if moment is not None else default


class GatewayMetrics:
    """The gateway's Prometheus metrics (``--metrics-port``)."""

    def __init__(self, gateway: YkcGateway) -> None:
        r = self.registry = metrics.Registry()
        r.add(metrics.Gauge("ykc_connections", "Open TCP connections.",
                            read=lambda: len(gateway.connections)))
        r.add(metrics.Gauge("ykc_piles_connected", "Piles logged in on this gateway.",
                            read=lambda: len(gateway.sessions)))
        self.frames_in = r.add(metrics.Counter("ykc_frames_in", "Frames received, by type.",
                                               ("type",)))
        self.frames_out = r.add(metrics.Counter("ykc_frames_out", "Frames sent, by type.",
                                                ("type",)))
        self.errors = r.add(metrics.Counter("ykc_errors", "Bad input and failures, by kind.",
                                            ("kind",)))
        self.latency = r.add(metrics.Histogram(
            "ykc_reply_latency_seconds",
            "Time from receiving a frame to writing its reply, by reply type.", ("type",)))
        r.add(metrics.Gauge("ykc_db_backlog", "Rows waiting for the batch writer.",
                            read=lambda: gateway.batcher.backlog))
        self.loop_lag = r.add(metrics.Histogram(
            "ykc_event_loop_lag_seconds",
            "How late a 50 ms timer fires: time frames wait before the gateway reads them."))
        self.rows_written = r.add(metrics.Counter("ykc_rows_written",
                                                  "Rows written by the batch writer.",
                                                  ("table",)))

    def error(self, kind: str) -> None:
        self.errors.inc(kind)


class Batcher:
    """Buffers frame log rows, meter samples and session messages per operator schema and
    writes them every ``interval`` seconds in the thread pool (COPY / bulk_create)."""

    MAX_BACKLOG = 500_000

    def __init__(self, gateway: YkcGateway, interval: float = 0.5) -> None:
        self.gateway = gateway
        self.interval = interval
        self.buffers: dict[str, tuple[list, list, list]] = {}
        self.backlog = 0
        self.dropped = 0
        self._task: asyncio.Task | None = None

    def _buffer(self, schema: str) -> tuple[list, list, list]:
        buf = self.buffers.get(schema)
        if buf is None:
            buf = self.buffers[schema] = ([], [], [])
        return buf

    def _room(self) -> bool:
        if self.backlog >= self.MAX_BACKLOG:  # the database is down or far behind
            self.gateway.metrics.error("framelog_dropped")
            return False
        self.backlog += 1
        return True

    def frame(self, schema: str, row: tuple) -> None:
        if self._room():
            self._buffer(schema)[0].append(row)

    def sample(self, schema: str, row: dict) -> None:
        if self._room():
            self._buffer(schema)[1].append(row)

    def message(self, schema: str, row: dict) -> None:
        if self._room():
            self._buffer(schema)[2].append(row)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ykc-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        buffers, self.buffers = self.buffers, {}
        for schema, (frames, samples, messages_) in buffers.items():
            try:
                await self.gateway.run_background(_write_batch, schema=schema, frames=frames,
                                          samples=samples, messages=messages_)
            except Exception:
                logger.exception("batch write failed for %s (%d rows lost)", schema,
                                 len(frames) + len(samples) + len(messages_))
                self.gateway.metrics.error("batch_write_failed")
            else:
                written = self.gateway.metrics.rows_written
                written.inc("frame_log", amount=len(frames))
                written.inc("meter_sample", amount=len(samples))
                written.inc("session_message", amount=len(messages_))
            self.backlog -= len(frames) + len(samples) + len(messages_)


def _write_batch(*, schema: str, frames: list[tuple], samples: list[dict],
                 messages: list[dict]) -> None:
    store.batch_write(schema=schema, frames=[_frame_row(r) for r in frames], messages=messages)
    if samples:
        handlers.dispatch(schema, port.ReadingsSampled(tuple(samples)))


def _frame_row(row: tuple) -> tuple:
    """(pile, epoch, direction, frame_type, name, trade_no, bytes | Frame) → COPY row; the
    hex of a received frame is rebuilt here, off the hot path, from the decoded frame."""
    pile_code, at, direction, frame_type, name, trade_no, data = row
    if isinstance(data, Frame):
        raw = encode_frame(data.message, data.sequence)
        if data.crc_swapped:
            raw = raw[:-2] + raw[-1:] + raw[-2:-1]
        data = raw
    return (pile_code, datetime.fromtimestamp(at, UTC).isoformat(), direction, frame_type,
            name, trade_no, data.hex().upper())


class LiveWriter:
    """Batches the Redis live-state writes of every pile into one pipeline every
    ``interval`` seconds: last-seen scores and connector readings (queued on the pipeline
    by ``charging.handlers.live_queue``)."""

    def __init__(self, redis, interval: float = 0.05, sentinel: str = "",
                 on_lost=None) -> None:
        self.redis = redis
        self.interval = interval
        self.seen: dict[str, dict[str, float]] = {}
        self.connectors: dict[tuple[str, str, int], dict[str, str]] = {}
        self._task: asyncio.Task | None = None
        # A key that always exists while this gateway runs (its alive key): gone means
        # Redis lost its data, and ``on_lost()`` is called.
        self.sentinel = sentinel
        self.on_lost = on_lost

    def pile_seen(self, schema: str, pile_code: str, at: float) -> None:
        self.seen.setdefault(schema, {})[pile_code] = at

    def connector(self, schema: str, pile_code: str, connector_no: int, values: dict) -> None:
        self.connectors.setdefault((schema, pile_code, connector_no), {}).update(
            {k: v for k, v in values.items() if v is not None})

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ykc-live")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                logger.exception("live state flush failed")

    async def flush(self) -> None:
        if not self.seen and not self.connectors:
            return
        seen, self.seen = self.seen, {}
        connectors, self.connectors = self.connectors, {}
        pipe = self.redis.pipeline(transaction=False)
        handlers.live_queue(pipe, seen=seen, connectors=connectors)
        if self.sentinel:
            pipe.exists(self.sentinel)
        results = await pipe.execute()
        if self.sentinel and not results[-1] and self.on_lost is not None:
            self.on_lost({(schema, code) for schema, scores in seen.items() for code in scores})


class ConnectorState:
    """What the gateway knows of one connector: its status and the session (trade number)
    in the pile's latest 0x13 (None until a reading arrived on this connection, "" for
    none)."""

    __slots__ = ("status", "sampled_at", "trade_no")

    def __init__(self, status: str | None) -> None:
        self.status = status
        self.sampled_at = 0.0
        self.trade_no: str | None = None


class PileConnection(asyncio.Protocol):
    """One TCP connection from a pile. Before a successful login 0x01 it has no pile code
    and no schema; after it, every frame must carry its pile code."""

    _ids = itertools.count(1)

    def __init__(self, gateway: YkcGateway) -> None:
        self.gateway = gateway
        self.loop = gateway.loop
        self.id = f"{next(self._ids)}"
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.splitter = FrameSplitter(max_frame_size=gateway.max_frame_size)
        self.pile_code = ""
        self.schema = ""
        self.logged_in = False
        self.closed = False
        self.heartbeat_interval = 10.0
        self.connected_at = self.last_rx = self.loop.time()
        self.garbage = 0
        self.errors_since_good = 0
        self.heartbeats = 0
        self.sequence = 0
        self.connectors: dict[int, ConnectorState] = {}
        self.pending: dict[tuple[int, int | None], asyncio.Future] = {}
        self.inbox: deque[tuple[Frame, float]] = deque()
        self.pump: asyncio.Task | None = None
        self.jobs: deque = deque()
        self.job_runner: asyncio.Task | None = None
        # When the database last heard of this pile through pile_mark_online (loop time),
        # and whether Redis lost its route and liveness (rebuilt from its next frame).
        self.marked_online_at = 0.0
        self.relink = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gateway.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.gateway.connections.discard(self)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("pile disconnected"))
        self.pending.clear()
        if self.logged_in and self.gateway.sessions.get(self.pile_code) is self:
            del self.gateway.sessions[self.pile_code]
            self.gateway.pile_gone(self)

    def data_received(self, data: bytes) -> None:
        now = self.loop.time()
        self.last_rx = now
        frames, errors = self.splitter.feed(data)
        for error in errors:
            self._bad_input(error)
        if frames:
            self.garbage = self.errors_since_good = 0
        elif self.garbage > GARBAGE_LIMIT or self.errors_since_good > ERROR_LIMIT:
            self.gateway.metrics.error("garbage_flood")
            logger.warning("%s %s: garbage flood, closing", self.peer, self.pile_code)
            self.close()
            return
        for frame in frames:
            self.inbox.append((frame, now))
        if self.inbox and self.pump is None:
            self._drain()

    # --- frame processing in order ------------------------------------------------------

    def _drain(self) -> None:
        while self.inbox and not self.closed:
            frame, received = self.inbox.popleft()
            try:
                pending = self.gateway.handle(self, frame, received)
            except Exception:
                self._handler_failed(frame)
                continue
            if pending is not None:
                self.pump = asyncio.create_task(self._drain_async(pending, frame))
                return

    async def _drain_async(self, pending, frame: Frame) -> None:
        try:
            await pending
        except Exception:
            self._handler_failed(frame)
        while self.inbox and not self.closed:
            frame, received = self.inbox.popleft()
            try:
                pending = self.gateway.handle(self, frame, received)
                if pending is not None:
                    await pending
            except Exception:
                self._handler_failed(frame)
        self.pump = None

    def _handler_failed(self, frame: Frame) -> None:
        self.gateway.metrics.error("handler_failed")
        logger.exception("%s: handling %s failed", self.pile_code or self.peer,
                         _code(frame.frame_type))

    def _bad_input(self, error: FrameError) -> None:
        self.errors_since_good += 1
        if isinstance(error, BadStartByte):
            kind = "garbage"
            self.garbage += len(error.data)
        elif isinstance(error, BadCRC):
            kind = "bad_crc"
        elif isinstance(error, BadLength):
            kind = "oversize" if len(error.data) == 2 else "bad_length"
        elif isinstance(error, BadField):
            kind = "bad_field"
        else:
            kind = "bad_frame"
        self.gateway.metrics.error(kind)
        logger.info("%s %s: %s: %s", self.peer, self.pile_code, kind, error)

    # --- background jobs of this pile, in order ------------------------------------------

    def job(self, fn, *args, **kwargs) -> None:
        """Run ``fn`` in the DB pool after this pile's earlier jobs; failures are logged."""
        self.jobs.append((fn, args, kwargs))
        if self.job_runner is None:
            self.job_runner = asyncio.create_task(self._run_jobs())

    async def settle(self) -> None:
        """Wait for this pile's queued jobs, so a domain event awaited next (0x3B, 0x31)
        reaches the domain after the events of the frames before it."""
        while self.job_runner is not None:
            await asyncio.shield(self.job_runner)

    async def _run_jobs(self) -> None:
        while self.jobs:
            fn, args, kwargs = self.jobs.popleft()
            try:
                await self.gateway.run_background(fn, *args, **kwargs)
            except Exception:
                self.gateway.metrics.error("job_failed")
                logger.exception("%s: %s failed", self.pile_code, getattr(fn, "__name__", fn))
        self.job_runner = None

    # --- writing ------------------------------------------------------------------------

    def send(self, message, sequence: bytes | None = None, received: float | None = None) -> None:
        """Write ``message``; a reply echoes the request's ``sequence`` (§1.3), a
        platform-initiated frame takes this connection's counter (LE)."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        if sequence is None:
            self.sequence = (self.sequence + 1) & 0xFFFF
            sequence = self.sequence
        data = encode_frame(message, sequence)
        self.transport.write(data)
        gateway = self.gateway
        code = _code(message.FRAME_TYPE)
        gateway.metrics.frames_out.inc(code)
        if received is not None:
            gateway.metrics.latency.observe(self.loop.time() - received, code)
        gateway.log_frame(self, "out", message.FRAME_TYPE, type(message).__name__,
                          getattr(message, "trade_no", ""), data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def expect(self, frame_type: int, connector_no: int | None) -> asyncio.Future:
        key = (frame_type, connector_no)
        if key in self.pending:
            raise RuntimeError("busy")
        future = self.loop.create_future()
        self.pending[key] = future
        return future

    def resolve(self, frame_type: int, connector_no: int | None, message) -> bool:
        future = self.pending.pop((frame_type, connector_no), None)
        if future is not None and not future.done():
            future.set_result(message)
            return True
        return False


class YkcGateway:
    """The server: accepts piles on ``host:port``, serves metrics on ``metrics_port``,
    consumes the command bus as ``gateway_id``."""

    def __init__(self, *, host: str = "0.0.0.0", port: int = 8768,
                 metrics_host: str = "0.0.0.0", metrics_port: int | None = None,
                 gateway_id: str | None = None, db_threads: int | None = None,
                 redis_url: str | None = None) -> None:
        self.host, self.port = host, port
        self.metrics_host, self.metrics_port = metrics_host, metrics_port
        self.gateway_id = gateway_id or f"{socket.gethostname()}-{os.getpid()}"
        self.max_frame_size = settings.YKC_MAX_FRAME_SIZE
        self.login_timeout = settings.YKC_LOGIN_TIMEOUT_S
        self.idle_heartbeats = settings.YKC_IDLE_HEARTBEATS
        self.sample_interval = settings.YKC_SAMPLE_INTERVAL_S
        self.heartbeat_log_every = settings.YKC_FRAME_LOG_HEARTBEAT_EVERY
        self.executor = ThreadPoolExecutor(max_workers=db_threads or settings.YKC_DB_THREADS,
                                           thread_name_prefix="ykc-db")
        self.background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ykc-bg")
        self.redis_url = redis_url or settings.REDIS_URL
        self.connections: set[PileConnection] = set()
        self.sessions: dict[str, PileConnection] = {}
        self.metrics = GatewayMetrics(self)
        self.batcher = Batcher(self)
        self._tasks: list[asyncio.Task] = []
        self._offline_tasks: set[asyncio.Task] = set()
        self.server: asyncio.Server | None = None
        self.metrics_server: asyncio.Server | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        # A blocking pool: a burst of logins waits for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.redis_url, max_connections=64, timeout=10, decode_responses=True)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.live = LiveWriter(self.redis, sentinel=bus.alive_key(self.gateway_id),
                               on_lost=self.redis_lost)
        self.bus = bus.GatewayBus(self.redis, self.gateway_id, self.execute, self.kick,
                                  on_lost=self.redis_lost)
        await self.bus.start()
        self.live.start()
        self.batcher.start()
        self.server = await self.loop.create_server(
            lambda: PileConnection(self), self.host, self.port, backlog=4096, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        if self.metrics_port is not None:
            self.metrics_server = await metrics.serve(self.metrics.registry, self.metrics_host,
                                                      self.metrics_port)
            self.metrics_port = self.metrics_server.sockets[0].getsockname()[1]
        # Long-lived state (one connection object graph per pile) would make every full
        # cyclic GC scan all of it: freeze what exists and collect the young rarely; frames
        # and messages are freed by reference counting anyway.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        self._tasks = [asyncio.create_task(self._sweep(), name="ykc-sweep"),
                       asyncio.create_task(self._watch_loop(), name="ykc-lag"),
                       asyncio.create_task(self._push_due_models(), name="ykc-tariffs")]
        logger.info("YKC gateway %s listening on %s:%s", self.gateway_id, self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close every connection, flush the buffers."""
        for task in self._tasks:
            task.cancel()
        if self.server is not None:
            self.server.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        for conn in list(self.connections):
            conn.close()
        await asyncio.sleep(0.05)  # let connection_lost run and queue its jobs
        pending = [c.job_runner for c in list(self.sessions.values()) if c.job_runner]
        pending += [t for t in self._offline_tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=5)
        self.live.sentinel = ""  # the alive key goes with the bus: no loss to detect
        await self.bus.stop()
        await self.live.stop()
        await self.batcher.stop()
        await self.redis.aclose(close_connection_pool=True)
        for pool in (self.executor, self.background):
            await self.loop.run_in_executor(None, self._close_db_threads, pool)

    @staticmethod
    def _close_db_threads(pool: ThreadPoolExecutor) -> None:
        """Close every pool thread's database connection, then the pool."""
        workers = pool._max_workers
        barrier = threading.Barrier(workers)

        def close():
            store.close_connection()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)  # one job per thread: all threads close theirs

        for future in [pool.submit(close) for _ in range(workers)]:
            with contextlib.suppress(Exception):
                future.result()
        pool.shutdown(wait=True)

    async def run_db(self, fn, *args, **kwargs):
        """Run ``fn`` in the pool for answers a pile waits for (0x01, 0x05, 0x09, 0x31, 0x3B)."""
        return await self.loop.run_in_executor(
            self.executor, lambda: store.db_call(fn, *args, **kwargs))

    async def run_background(self, fn, *args, **kwargs):
        """Run ``fn`` in the pool of background writes (jobs, batches), so a slow database
        delays logs and samples before it delays logins and bills."""
        return await self.loop.run_in_executor(
            self.background, lambda: store.db_call(fn, *args, **kwargs))

    async def _watch_loop(self, period: float = 0.05) -> None:
        while True:
            start = self.loop.time()
            await asyncio.sleep(period)
            self.metrics.loop_lag.observe(self.loop.time() - start - period)

    async def _sweep(self) -> None:
        """Close connections that never logged in (``YKC_LOGIN_TIMEOUT_S``) or went silent
        for ``YKC_IDLE_HEARTBEATS`` heartbeat intervals (half-open TCP)."""
        while True:
            await asyncio.sleep(1)
            now = self.loop.time()
            for conn in list(self.connections):
                if not conn.logged_in:
                    if now - conn.connected_at > self.login_timeout:
                        self.metrics.error("login_timeout")
                        conn.close()
                elif now - conn.last_rx > self.idle_heartbeats * conn.heartbeat_interval:
                    self.metrics.error("idle_timeout")
                    logger.info("%s: silent for %.0f s, closing", conn.pile_code,
                                now - conn.last_rx)
                    conn.close()

    # --- frame log ----------------------------------------------------------------------

    def log_frame(self, conn: PileConnection, direction: str, frame_type: int, name: str,
                  trade_no: str, data) -> None:
        if not conn.schema:
            return  # before login there is no operator to log it for
        if frame_type in HEARTBEAT_TYPES:
            every = self.heartbeat_log_every
            if every <= 0 or (conn.heartbeats % every):
                return
        self.batcher.frame(conn.schema, (conn.pile_code, time.time(), direction, frame_type,
                                         name, trade_no or "", data))

    # --- dispatch of one received frame -------------------------------------------------

    def handle(self, conn: PileConnection, frame: Frame, received: float):
        """Handle one frame; returns an awaitable when the reply needs the database."""
        message = frame.message
        frame_type = message.frame_type
        code = _code(frame_type)
        self.metrics.frames_in.inc(code)
        if frame.encrypted:
            self.metrics.error("encrypted")
            return None
        if isinstance(message, m.UnknownMessage):
            self.metrics.error("unknown_type")
            logger.info("%s: unknown frame type %s ignored", conn.pile_code or conn.peer, code)
            return None
        if frame_type == 0x01:
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
            conn.heartbeats += 1
        self.log_frame(conn, "in", frame_type, type(message).__name__,
                       getattr(message, "trade_no", ""), frame)
        self.live.pile_seen(conn.schema, conn.pile_code, time.time())
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
        outcome = await self.run_db(handlers.dispatch, None, port.PileLogin(
            pile_code=login.pile_code, peer=conn.peer, at=at,
            firmware_version=login.firmware_version, iccid=login.sim))
        if conn.closed:
            return
        if not outcome.accepted:
            self.metrics.error(f"login_{outcome.refusal}")
            logger.warning("login of %s from %s refused: %s", login.pile_code, conn.peer,
                           outcome.refusal)
            conn.send(m.LoginReply(login.pile_code, False), frame.sequence, received)
            conn.close()  # §4.2: "fail (platform may then close the socket)"
            return
        conn.pile_code, conn.schema = login.pile_code, outcome.schema
        conn.heartbeat_interval = float(outcome.heartbeat_interval_s)
        conn.connectors = {no: ConnectorState(s) for no, s in outcome.connectors.items()}
        previous = self.sessions.get(login.pile_code)
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
        await self.bus.register(conn.schema, conn.pile_code, conn.id)
        conn.marked_online_at = self.loop.time()
        conn.job(handlers.dispatch, conn.schema, port.PileOnline(conn.pile_code, at))

    def still_online(self, conn: PileConnection) -> None:
        """A frame from a logged-in pile: the database hears of it every
        ``LAST_SEEN_DB_EVERY_S`` (so the offline check's fallback stays fresh and a pile
        marked offline meanwhile comes back), and after Redis lost its data the pile's
        command route is registered again at once."""
        now = self.loop.time()
        if conn.relink:
            conn.relink = False
            task = self.loop.create_task(self._relink(conn))
            self._offline_tasks.add(task)
            task.add_done_callback(self._offline_tasks.discard)
        elif now - conn.marked_online_at < LAST_SEEN_DB_EVERY_S:
            return
        conn.marked_online_at = now
        conn.job(handlers.dispatch, conn.schema, port.PileOnline(conn.pile_code,
                                                                 datetime.now(UTC)))

    async def _relink(self, conn: PileConnection) -> None:
        try:
            await self.redis.set(bus.alive_key(self.gateway_id), "1", ex=bus.ALIVE_TTL_S)
            if not conn.closed and self.sessions.get(conn.pile_code) is conn:
                await self.bus.register(conn.schema, conn.pile_code, conn.id)
        except Exception:
            conn.relink = True  # Redis still away: the next frame tries again
            logger.warning("%s: route not registered again", conn.pile_code, exc_info=True)

    async def _restore(self) -> None:
        try:
            await self.redis.set(bus.alive_key(self.gateway_id), "1", ex=bus.ALIVE_TTL_S)
            await self.bus.refresh_routes()
        except Exception:
            logger.warning("routes not restored yet (Redis away)", exc_info=True)

    def redis_lost(self, just_seen: set[tuple[str, str]] | None = None) -> None:
        """Redis lost this gateway's keys (flushed or restarted empty): the alive key and
        every route are set again now; each pile's liveness is reported again from its next
        frame (at once for the piles whose frame revealed the loss, ``just_seen``)."""
        self.metrics.error("redis_lost")
        logger.warning("Redis lost the gateway's keys: restoring routes, liveness from the "
                       "piles' next frames")
        task = self.loop.create_task(self._restore())
        self._offline_tasks.add(task)
        task.add_done_callback(self._offline_tasks.discard)
        just_seen = just_seen or set()
        for conn in list(self.sessions.values()):
            if (conn.schema, conn.pile_code) in just_seen:
                conn.marked_online_at = self.loop.time()
                conn.job(handlers.dispatch, conn.schema, port.PileOnline(conn.pile_code,
                                                                         datetime.now(UTC)))
            else:
                conn.relink = True

    def pile_gone(self, conn: PileConnection) -> None:
        """A logged-in pile's connection closed and no newer one holds the pile."""
        async def offline():
            with contextlib.suppress(Exception):
                await self.bus.unregister(conn.schema, conn.pile_code, conn.id)
            if conn.job_runner is not None:
                with contextlib.suppress(Exception):
                    await conn.job_runner
            if self.sessions.get(conn.pile_code) is None:
                try:
                    await self.run_background(handlers.dispatch, conn.schema, port.PileOffline(
                        conn.pile_code, datetime.now(UTC)))
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
        conn.send(m.HeartbeatReply(beat.pile_code, beat.connector_no, 0), frame.sequence,
                  received)

    # 0x05 → 0x06
    async def on_billing_verify(self, conn: PileConnection, frame: Frame, received: float):
        verify: m.BillingModelVerify = frame.message
        same = await self.run_db(adapters_call, adapters.billing_model_verified, conn.schema,
                                 verify.pile_code, verify.billing_model_no)
        conn.send(m.BillingModelVerifyReply(verify.pile_code, verify.billing_model_no,
                                            not same), frame.sequence, received)

    # 0x09 → 0x0A
    async def on_billing_request(self, conn: PileConnection, frame: Frame, received: float):
        model = await self.run_db(adapters_call, adapters.billing_model_for, conn.schema,
                                  conn.pile_code)
        if model is None:
            self.metrics.error("no_billing_model")
            logger.info("%s asks for a billing model and has none", conn.pile_code)
            return
        conn.send(m.BillingModelReply(conn.pile_code, model), frame.sequence, received)
        conn.job(adapters_call, adapters.billing_model_delivered, conn.schema, conn.pile_code,
                 model.model_no)

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
        if changed:
            state.status = status
            conn.job(handlers.dispatch, conn.schema, port.ConnectorStatusChanged(
                conn.pile_code, no, status, at))
        faults = int(data.hardware_faults)
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
        conn.job(handlers.dispatch, conn.schema, progress)

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
        event = port.TransactionRecord(
            pile_code=conn.pile_code, connector_no=record.connector_no,
            trade_no=record.trade_no,
            started_at=_utc(record.start_time, now), stopped_at=_utc(record.end_time, now),
            meter_start_kwh=record.meter_start, meter_stop_kwh=record.meter_end,
            energy_kwh=record.total_energy,
            pile_amount_yuan=money.yuan(record.total_amount),
            stop_reason=codes.stop_reason(int(record.stop_reason)),
            protocol_stop_code=int(record.stop_reason),
            energy_by_period={name: usage.energy
                              for name, usage in zip(PERIODS, record.periods, strict=False)},
            amount_by_period={name: money.yuan(usage.amount)
                              for name, usage in zip(PERIODS, record.periods, strict=False)},
            vin=record.vin, card_no="" if record.physical_card_no == ZERO_CARD
            else record.physical_card_no, raw_hex=raw.hex().upper())
        try:
            await conn.settle()
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

    HANDLERS = {
        0x03: on_heartbeat, 0x05: on_billing_verify, 0x09: on_billing_request,
        0x13: on_realtime, 0x31: on_card_start, 0x33: on_start_reply, 0x35: on_stop_reply,
        0x3B: on_transaction, 0x41: on_reply, 0x51: on_reply, 0x55: on_reply, 0x57: on_reply,
        0x91: on_reply,
        **dict.fromkeys(SESSION_TYPES, on_session_message),
    }

    # --- commands from the bus ----------------------------------------------------------

    async def execute(self, schema: str, data: dict) -> port.CommandResult:
        """Run one bus command on the pile's connection; the bus applies the deadline."""
        try:
            kind = data["type"]
            if kind in port.COMMANDS:
                command = port.command_from_dict(data)
            else:
                command = YKC_COMMANDS[kind](**data["fields"])
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return port.CommandResult(ok=False, error="unsupported",
                                      detail={"type": str(data.get("type"))})
        conn = self.sessions.get(command.pile_code)
        if conn is None or conn.schema != schema or conn.closed:
            return port.CommandResult(ok=False, error="pile_offline")
        try:
            return await self._run_command(conn, command)
        except EncodeError as exc:
            return port.CommandResult(ok=False, error="invalid", detail={"message": str(exc)})
        except RuntimeError:
            return port.CommandResult(ok=False, error="busy")
        except ConnectionError:
            return port.CommandResult(ok=False, error="pile_offline")

    async def _ask(self, conn: PileConnection, message, reply_type: int,
                   connector_no: int | None = None):
        future = conn.expect(reply_type, connector_no)
        try:
            conn.send(message)
            return await future
        finally:
            if conn.pending.get((reply_type, connector_no)) is future:
                del conn.pending[(reply_type, connector_no)]

    async def _run_command(self, conn: PileConnection, command) -> port.CommandResult:
        pile = conn.pile_code
        if isinstance(command, port.RemoteStart):
            reply = await self._ask(conn, m.RemoteStart(
                command.trade_no, pile, command.connector_no,
                command.logical_card_no or ZERO_CARD, command.physical_card_no or ZERO_CARD,
                command.balance_yuan), 0x33, command.connector_no)
            detail = {"trade_no": reply.trade_no, "connector_no": reply.connector_no}
            if reply.started:
                return port.CommandResult(ok=True, detail=detail)
            return port.CommandResult(ok=False, error="refused",
                                      detail={**detail, "reason_code": int(reply.failure_reason)})
        if isinstance(command, port.RemoteStop):
            # 0x36 names no session: never stop one the command was not meant for.
            state = conn.connectors.get(command.connector_no)
            running = state.trade_no if state is not None else None
            if command.trade_no and running and running != command.trade_no:
                self.metrics.error("stop_session_mismatch")
                return port.CommandResult(ok=False, error="session_mismatch",
                                          detail={"running": running})
            reply = await self._ask(conn, m.RemoteStop(pile, command.connector_no), 0x35,
                                    command.connector_no)
            if reply.stopped:
                return port.CommandResult(ok=True)
            return port.CommandResult(ok=False, error="refused", detail={
                "refusal": str(codes.stop_refusal(int(reply.failure_reason))),
                "reason_code": int(reply.failure_reason)})
        if isinstance(command, port.BalanceUpdate):
            reply = await self._ask(conn, m.BalanceUpdate(
                pile, command.connector_no, command.card_no or ZERO_CARD,
                command.balance_yuan), 0x41)
            if int(reply.result) == 0:
                return port.CommandResult(ok=True)
            return port.CommandResult(ok=False, error="refused",
                                      detail={"reason_code": int(reply.result)})
        if isinstance(command, port.ReadRealtime):
            reply = await self._ask(conn, m.ReadRealtimeData(pile, command.connector_no), 0x13,
                                    command.connector_no)
            return port.CommandResult(ok=True, detail={
                "status": connector_status(reply), "energy_kwh": str(reply.energy),
                "amount_yuan": str(reply.amount), "soc_percent": reply.soc,
                "voltage_v": str(reply.output_voltage), "current_a": str(reply.output_current)})
        if isinstance(command, YkcTimeSync):
            reply = await self._ask(conn, m.TimeSync(pile, datetime.now(PILE_TZ)), 0x55)
            clock = reply.current_time.isoformat() if reply.current_time else None
            return port.CommandResult(ok=True, detail={"pile_time": clock})
        if isinstance(command, YkcReboot):
            reply = await self._ask(conn, m.Reboot(pile, command.when), 0x91)
            return port.CommandResult(ok=reply.success, error="" if reply.success else "refused")
        if isinstance(command, YkcWorkParams):
            reply = await self._ask(conn, m.WorkParams(pile, command.enabled,
                                                       command.max_power_percent), 0x51)
            return port.CommandResult(ok=reply.success, error="" if reply.success else "refused")
        if isinstance(command, YkcPushBillingModel):
            return await self.push_billing_model(conn)
        return port.CommandResult(ok=False, error="unsupported")

    async def push_billing_model(self, conn: PileConnection) -> port.CommandResult:
        """0x58 with the pile's current model; the 0x57 answer is recorded."""
        model = await self.run_db(adapters_call, adapters.billing_model_for, conn.schema,
                                  conn.pile_code)
        if model is None:
            return port.CommandResult(ok=False, error="no_billing_model")
        conn.job(adapters_call, adapters.billing_model_sent, conn.schema, conn.pile_code,
                 model.model_no)
        reply = await self._ask(conn, m.SetBillingModel(conn.pile_code, model), 0x57)
        conn.job(adapters_call, adapters.billing_model_acked, conn.schema, conn.pile_code,
                 model.model_no, reply.success)
        return port.CommandResult(ok=reply.success, error="" if reply.success else "refused",
                                  detail={"model_no": model.model_no})

    async def _push_due_models(self, interval: float = 60.0) -> None:
        """Every minute: push 0x58 to connected idle piles whose model is due (§3.5: only
        while idle)."""
        while True:
            await asyncio.sleep(interval)
            for schema in {c.schema for c in self.sessions.values()}:
                try:
                    due = await self.run_db(adapters_call, adapters.piles_due_billing_model,
                                            schema)
                except Exception:
                    logger.exception("due billing models of %s", schema)
                    continue
                for pile_code in due:
                    conn = self.sessions.get(pile_code)
                    if conn is None or conn.schema != schema or any(
                            s.status == "charging" for s in conn.connectors.values()):
                        continue
                    try:
                        async with asyncio.timeout(settings.YKC_COMMAND_TIMEOUT_S):
                            await self.push_billing_model(conn)
                    except (TimeoutError, RuntimeError, ConnectionError):
                        self.metrics.error("billing_push_failed")


def adapters_call(fn, schema: str, /, *args, **kwargs):
    """Call an adapter inside the operator's schema (thread pool)."""
    from django_tenants.utils import schema_context

    with schema_context(schema):
        return fn(*args, **kwargs)


async def run(gateway: YkcGateway, stop: asyncio.Event | None = None) -> None:
    """Start ``gateway`` and serve until ``stop`` is set (or forever)."""
    await gateway.start()
    try:
        await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        await gateway.stop()
