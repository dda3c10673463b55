"""The gateway process: listening socket, thread pools, sweeps, start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import redis.asyncio as aioredis
from django.conf import settings

from charging import bus
from protocols import adapters, gc_pauses, limits, metrics

from .. import store
from .batches import BatchedQuery, BatchedRedis
from .commands import CommandRunner
from .common import LAST_SEEN_DB_EVERY_S, LOGIN_DECISION_LIMIT_S, SWEEP_SLICE, logger
from .connection import PileConnection
from .frames import (
    FrameHandlers,
    connector_reports,
    logins_decide,
    offline_marks,
    online_marks,
)
from .writers import Batcher, LiveWriter


class GatewayMetrics:
    """The gateway's Prometheus metrics (``--metrics-port``)."""

    def __init__(self, gateway: YkcGateway) -> None:
        r = self.registry = metrics.Registry()
        r.add(metrics.Gauge("ykc_connections", "Open TCP connections.",
                            read=lambda: len(gateway.connections)))
        r.add(metrics.Gauge("ykc_piles_connected", "Piles logged in on this gateway.",
                            read=lambda: len(gateway.sessions)))
        r.add(metrics.Gauge("ykc_connections_max",
                            "Pile connections held at most (open-files limit less a reserve).",
                            read=lambda: gateway.max_piles))
        self.refused = r.add(metrics.Counter(
            "ykc_connections_refused", "Connections closed at once on arrival, by reason.",
            ("reason",)))
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
        self.gc_pause = r.add(metrics.Histogram(
            "ykc_gc_pause_seconds", "Garbage collections (any thread) and how long each "
            "stopped the process, by generation.", ("generation",)))
        self.rows_written = r.add(metrics.Counter("ykc_rows_written",
                                                  "Rows written by the batch writer.",
                                                  ("table",)))

    def error(self, kind: str) -> None:
        self.errors.inc(kind)


REDIS_CONNECTIONS = 64  # the gateway's Redis pool, at most
GC_FREEZE_EVERY_S = 5  # the survivors of the last seconds are frozen this often …
GC_THAW_EVERY_S = 3600  # … and everything is collected once this often
# Logins checking their pile's holder in Redis one by one at once, when their batch's
# pipeline failed (room left for the live writer, the bus and the routes).
LOGIN_REDIS_AT_ONCE = 32
ALIVE_RESET_EVERY_S = 1.0  # relinks after a Redis loss set the alive key at most this often
ACCEPT_RETRY_S = 0.1  # after accept() failed for want of descriptors or memory
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, frees at once


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``host:port`` (an IPv4 or IPv6 address or a
    name; port 0: any free one), SO_REUSEADDR, backlog :data:`limits.ACCEPT_BACKLOG`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=limits.ACCEPT_BACKLOG)
    sock.setblocking(False)
    return sock


class YkcGateway(FrameHandlers, CommandRunner):
    """The server: accepts piles on ``host:port``, serves metrics on ``metrics_port``,
    consumes the command bus as ``gateway_id``; holds ``max_piles`` connections at most
    (default :func:`protocols.limits.pile_capacity`: the open-files limit less the
    gateway's own descriptors) and closes any further one on arrival, counted in
    ``ykc_connections_refused_total{reason="pile_limit"}``.

    It accepts connections itself (:meth:`_accept_waiting`): every one waiting, up to the
    listen backlog, each time the listening socket is readable. A server of the event loop
    would not keep up with a reconnect storm under uvloop, whose libuv accepts one
    connection per loop turn (libuv/libuv#3696): with thousands of logins read in each
    turn, the listen queue overflowed for seconds and the kernel dropped the piles' SYNs
    (each pile back only after its retransmission back-off of 1, 3, 7, 15, 31, 63 s)."""

    def __init__(self, *, host: str = "0.0.0.0", port: int = 8768,
                 metrics_host: str = "0.0.0.0", metrics_port: int | None = None,
                 gateway_id: str | None = None, db_threads: int | None = None,
                 redis_url: str | None = None, max_piles: int | None = None) -> None:
        self.host, self.port = host, port
        self.metrics_host, self.metrics_port = metrics_host, metrics_port
        self.gateway_id = gateway_id or f"{socket.gethostname()}-{os.getpid()}"
        self.max_frame_size = settings.YKC_MAX_FRAME_SIZE
        self.login_timeout = settings.YKC_LOGIN_TIMEOUT_S
        self.idle_heartbeats = settings.YKC_IDLE_HEARTBEATS
        self.sample_interval = settings.YKC_SAMPLE_INTERVAL_S
        self.heartbeat_log_seconds = settings.YKC_FRAME_LOG_HEARTBEAT_SECONDS
        db_threads = db_threads or settings.YKC_DB_THREADS
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="ykc-db")
        self.background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ykc-bg")
        # No reserve for a burst of accepts: _accept_waiting resets a refused connection at
        # once and counts those being attached as held.
        capacity = limits.pile_capacity(own_connections=db_threads + 4 + REDIS_CONNECTIONS,
                                        backlog=0)
        self.max_piles = capacity if max_piles is None else min(max_piles, capacity)
        self._refused_logged_at = -1e9
        self.redis_url = redis_url or settings.REDIS_URL
        self.connections: set[PileConnection] = set()
        self.sessions: dict[str, PileConnection] = {}
        self.metrics = GatewayMetrics(self)
        self.gc_timer = gc_pauses.PauseTimer(self.metrics.gc_pause)
        self.batcher = Batcher(self)
        self.verifier = BatchedQuery(self, adapters.billing_models_verified)
        self.model_requests = BatchedQuery(self, adapters.billing_models_delivered)
        self.logins = BatchedQuery(self, logins_decide)
        self.online_marks = BatchedQuery(self, online_marks, background=True)
        self.offline_marks = BatchedQuery(self, offline_marks, background=True)
        self.connector_reports = BatchedQuery(self, connector_reports, background=True)
        self.report_keys = itertools.count()  # keys of connector_reports, one per 0x13
        self.login_redis = asyncio.Semaphore(LOGIN_REDIS_AT_ONCE)
        self.holder_checks = BatchedRedis(
            self, lambda schema, claims: self.bus.holders(schema, list(claims)))
        self.route_writes = BatchedRedis(self, lambda schema, routes: self._routes_write(
            schema, routes))
        self.route_deletes = BatchedRedis(self, self._routes_delete)
        self._tasks: list[asyncio.Task] = []
        self._offline_tasks: set[asyncio.Task] = set()
        self._alive_set_at = -1e9  # loop time of the last alive-key SET of a relink
        self.listener: socket.socket | None = None
        self.attaching = 0  # connections accepted, their transport not yet made
        self.metrics_server: asyncio.Server | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        # A blocking pool: a burst of logins waits for a connection instead of failing.
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
        self.batcher.start()
        self.listener = listening_socket(self.host, self.port)
        self.port = self.listener.getsockname()[1]
        self.loop.add_reader(self.listener.fileno(), self._accept_waiting)
        if self.metrics_port is not None:
            self.metrics_server = await metrics.serve(self.metrics.registry, self.metrics_host,
                                                      self.metrics_port)
            self.metrics_port = self.metrics_server.sockets[0].getsockname()[1]
        # Long-lived state (one connection object graph per pile) would make every full
        # cyclic GC scan all of it: freeze what exists, and every GC_FREEZE_EVERY_S what
        # survived since (the piles logged in meanwhile: at start-up only Django's objects
        # were frozen, and a full collection over 18,000 piles' graphs stopped the loop);
        # collect the young rarely, frames and messages are freed by reference counting.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        self.gc_timer.install()
        self._tasks = [asyncio.create_task(self._sweep(), name="ykc-sweep"),
                       asyncio.create_task(gc_pauses.keep_young(GC_FREEZE_EVERY_S,
                                                                GC_THAW_EVERY_S),
                                           name="ykc-gc"),
                       asyncio.create_task(self._watch_loop(), name="ykc-lag"),
                       asyncio.create_task(self._push_due_models(), name="ykc-tariffs")]
        logger.info("YKC gateway %s listening on %s:%s", self.gateway_id, self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close every connection, flush the buffers."""
        for task in self._tasks:
            task.cancel()
        self.gc_timer.remove()
        if self.listener is not None:
            self.loop.remove_reader(self.listener.fileno())
            self.listener.close()
            self.listener = None
        if self.metrics_server is not None:
            self.metrics_server.close()
        for conn in list(self.connections):
            conn.close()
        await asyncio.sleep(0.05)  # let connection_lost run and queue its jobs
        pending = [c.job_runner for c in list(self.sessions.values()) if c.job_runner]
        pending += [t for t in self._offline_tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=5)
        self.live.sentinel = ""  # the keys mark goes with the bus: no loss to detect
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
        """Close connections that sent no login within ``YKC_LOGIN_TIMEOUT_S`` (or whose
        login was not decided within ``LOGIN_DECISION_LIMIT_S``) or went silent for
        ``YKC_IDLE_HEARTBEATS`` heartbeat intervals (half-open TCP). Every second, in
        slices of ``SWEEP_SLICE`` with the loop's other work between them: in one pass the
        18,000 connections of a full gateway were one stretch a second of 3 ms on a quiet
        machine and, under the 18,000-pile benchmark, 6 % of the loop's time (py-spy), the
        replies of every pile waiting behind it."""
        while True:
            await asyncio.sleep(1)
            connections = list(self.connections)
            for start in range(0, len(connections), SWEEP_SLICE):
                if start:
                    await asyncio.sleep(0)
                self._sweep_slice(connections[start:start + SWEEP_SLICE], self.loop.time())

    def _sweep_slice(self, connections: list[PileConnection], now: float) -> None:
        for conn in connections:
            if conn.closed:
                continue
            if not conn.logged_in:
                if (now - conn.connected_at > self.login_timeout if conn.login_at is None
                        else now - conn.login_at > LOGIN_DECISION_LIMIT_S):
                    self.metrics.error("login_timeout")
                    conn.close()
            elif now - conn.last_rx > self.idle_heartbeats * conn.heartbeat_interval:
                self.metrics.error("idle_timeout")
                logger.info("%s: silent for %.0f s, closing", conn.pile_code,
                            now - conn.last_rx)
                conn.close()

    def _accept_waiting(self) -> None:
        """The listening socket is readable: accept every connection waiting, up to
        ``ACCEPT_BACKLOG`` at once; each one :meth:`admit` refuses is reset at once (its
        descriptor freed), each other one becomes a :class:`PileConnection` on the loop.
        Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS), the connections wait in
        the kernel's queue and accepting resumes ``ACCEPT_RETRY_S`` later (counted as
        ``accept_failed``; the readable socket would otherwise spin the loop)."""
        listener = self.listener
        for _ in range(limits.ACCEPT_BACKLOG):
            try:
                sock, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self.metrics.error("accept_failed")
                logger.warning("accepting pile connections failed (%s): again in %.1f s",
                               exc, ACCEPT_RETRY_S)
                self.loop.remove_reader(listener.fileno())
                self.loop.call_later(ACCEPT_RETRY_S, self._resume_accepting, listener)
                return
            if not self.admit():
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                sock.close()
                continue
            sock.setblocking(False)
            self.attaching += 1
            task = self.loop.create_task(self._attach(sock))
            self._offline_tasks.add(task)
            task.add_done_callback(self._offline_tasks.discard)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if self.listener is listener:  # not stopped meanwhile
            self.loop.add_reader(listener.fileno(), self._accept_waiting)

    async def _attach(self, sock: socket.socket) -> None:
        """The accepted ``sock`` as a :class:`PileConnection` (the loop's transport)."""
        try:
            await self.loop.connect_accepted_socket(lambda: PileConnection(self), sock)
        except Exception:
            logger.info("an accepted connection closed before it was attached",
                        exc_info=True)
            sock.close()
        finally:
            self.attaching -= 1

    def admit(self) -> bool:
        """Whether a connection just accepted may stay (with those held and those being
        attached): False at ``max_piles``, counted and logged (at most once a minute)."""
        if len(self.connections) + self.attaching < self.max_piles:
            return True
        self.metrics.refused.inc("pile_limit")
        now = time.monotonic()
        if now - self._refused_logged_at >= 60:
            self._refused_logged_at = now
            logger.warning("holding %d connections, the most this process may (open-files "
                           "limit): refusing more", len(self.connections))
        return False

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
        # With the other piles' marks of the moment (one port.PilesOnline per window): each
        # pile's mark every LAST_SEEN_DB_EVERY_S is 300 a second for 18,000 piles.
        self.mark_online(conn, datetime.now(UTC))

    async def _routes_write(self, schema: str, routes: dict[str, tuple[str, str]]
                            ) -> dict[str, bool]:
        """The batch function of ``route_writes``: pile code → (connection id, peer) of the
        logins of a moment, registered in one pipeline (:meth:`bus.GatewayBus.register_many`);
        a pile whose connection closed or was replaced meanwhile is left out."""
        live = {code: route for code, route in routes.items()
                if (conn := self.sessions.get(code)) is not None and conn.id == route[0]}
        if live:
            await self.bus.register_many(schema, live)
        return dict.fromkeys(routes, True)

    async def _routes_delete(self, schema: str, closed: dict[tuple[str, str], None]
                             ) -> dict[tuple[str, str], bool]:
        """The batch function of ``route_deletes``: the (pile code, connection id) of the
        links closed at the moment, their routes deleted in one pipeline
        (:meth:`bus.GatewayBus.unregister_many`)."""
        await self.bus.unregister_many(schema, list(closed))
        return dict.fromkeys(closed, True)

    async def _relink(self, conn: PileConnection) -> None:
        """The alive key (once per ``ALIVE_RESET_EVERY_S`` for a wave of relinks) and the
        pile's route with the other routes of the moment (``route_writes``: one pipeline).
        After ``redis_lost`` every pile's next frame comes here: one SET and one route
        each was ~36,000 commands in ~10 s at 18,000 piles, past the Redis pool
        (``REDIS_CONNECTIONS``, 10 s wait) — "No connection available" and retries."""
        try:
            now = self.loop.time()
            if now - self._alive_set_at >= ALIVE_RESET_EVERY_S:
                self._alive_set_at = now
                try:
                    await bus.set_alive(self.redis, self.gateway_id)
                except Exception:
                    self._alive_set_at = -1e9  # the next relink tries again
                    raise
            if not conn.closed and self.sessions.get(conn.pile_code) is conn:
                await self.route_writes.ask(conn.schema, conn.pile_code, (conn.id, conn.peer))
        except Exception:
            conn.relink = True  # Redis still away: the next frame tries again
            logger.warning("%s: route not registered again", conn.pile_code, exc_info=True)

    async def _restore(self) -> None:
        try:
            await bus.set_alive(self.redis, self.gateway_id)
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
                self.mark_online(conn, datetime.now(UTC))
            else:
                conn.relink = True


async def run(gateway: YkcGateway, stop: asyncio.Event | None = None) -> None:
    """Start ``gateway`` and serve until ``stop`` is set (or forever)."""
    await gateway.start()
    try:
        await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        await gateway.stop()
