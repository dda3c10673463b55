"""One pile's TCP connection: framing, bad input, per-pile job order, replies
awaited by commands."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections import deque
from typing import TYPE_CHECKING

from ..crc import crc16_modbus
from ..errors import BadCRC, BadField, BadLength, BadStartByte, FrameError
from ..frame import Frame, encode_frame
from ..heartbeats import SIZE as HEARTBEAT_SIZE
from ..heartbeats import heartbeat_replies
from ..messages import HeartbeatReply
from ..splitter import FrameSplitter
from .common import CODES, ERROR_LIMIT, GARBAGE_LIMIT, _code, logger

if TYPE_CHECKING:
    from .server import YkcGateway


class ConnectorState:
    """What the gateway knows of one connector: its status and the session (trade number)
    in the pile's latest 0x13 (None until a reading arrived on this connection, "" for
    none)."""

    __slots__ = ("status", "sampled_at", "trade_no", "faults", "faults_sent_at")

    def __init__(self, status: str | None) -> None:
        self.status = status
        self.sampled_at = 0.0
        self.trade_no: str | None = None
        # The fault set last reported to the domain (None: nothing reported yet).
        self.faults: tuple | None = None
        self.faults_sent_at = 0.0


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
        self.host = ""
        self.splitter = FrameSplitter(max_frame_size=gateway.max_frame_size)
        self.pile_code = ""
        self.pile_bcd = b""  # the pile code's 7 BCD bytes, once logged in
        self.schema = ""
        self.logged_in = False
        self.closed = False
        self.heartbeat_interval = 10.0
        self.connected_at = self.last_rx = self.loop.time()
        self.login_at: float | None = None  # when its first login 0x01 came (loop time)
        self.garbage = 0
        self.errors_since_good = 0
        # The frame log's heartbeat sampling (FrameHandlers.heartbeat_log_due): when one
        # of this link's heartbeats was last logged (loop time), and whether the one being
        # handled is (its reply then too).
        self.heartbeat_logged_at = float("-inf")
        self.heartbeat_logged = False
        self.sequence = 0
        self.connectors: dict[int, ConnectorState] = {}
        self.heartbeat_heads: dict[int, tuple[bytes, bytes]] = {}  # 0x04 without sequence
        self.pending: dict[tuple[int, int | None], asyncio.Future] = {}
        self.inbox: deque[tuple[Frame, float]] = deque()
        self.pump: asyncio.Task | None = None
        self.jobs: deque = deque()
        self.job_runner: asyncio.Task | None = None
        # When the database last heard of this pile through pile_mark_online (loop time),
        # and whether Redis lost its route and liveness (rebuilt from its next frame).
        self.marked_online_at = 0.0
        self.relink = False
        # While a read is handled, what it answers is gathered here and written once at the
        # end of data_received: one send() for all the replies of a read (a pile's frames
        # arriving together), not one small TCP segment each. None outside a read.
        self.out: list[bytes] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport) -> None:
        # Admitted when accepted (YkcGateway._accept_waiting: at the open-files cap a
        # connection is reset there, never made a transport).
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
        self.host = peer[0] if peer else ""  # the source address, without the port
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
        answered = b""
        if self.logged_in and self.pump is None and not self.splitter.pending:
            # The heartbeats a read starts with (most reads are one heartbeat) are answered
            # in bulk; whatever follows them goes through the splitter.
            count, answered = heartbeat_replies(data, self.pile_bcd)
            if count:
                self.garbage = self.errors_since_good = 0
                self.gateway.heartbeats_answered(self, data, count, answered, now)
                data = data[count * HEARTBEAT_SIZE:]
                if not data:
                    self.transport.write(answered)
                    return
        frames, errors = self.splitter.feed(data)
        for error in errors:
            self._bad_input(error)
        if frames:
            self.garbage = self.errors_since_good = 0
        elif self.garbage > GARBAGE_LIMIT or self.errors_since_good > ERROR_LIMIT:
            self.gateway.metrics.error("garbage_flood")
            logger.warning("%s %s: garbage flood, closing", self.peer, self.pile_code)
            if answered:
                self.transport.write(answered)
            self.close()
            return
        if self.pump is not None:  # a reply awaits the database: queue behind it, in order
            self.inbox.extend((frame, now) for frame in frames)
            return
        self.out = [answered] if answered else []
        try:
            self._drain_now(frames, now)
        finally:
            self._flush_out()

    # --- frame processing in order ------------------------------------------------------

    def _drain_now(self, frames: list[Frame], received: float) -> None:
        """Handle a read's frames in order until one needs the database: that one is
        awaited by a task (``pump``), which then handles the rest (``inbox``)."""
        handle = self.gateway.handle
        for index, frame in enumerate(frames):
            if self.closed:
                return
            try:
                pending = handle(self, frame, received)
            except Exception:
                self._handler_failed(frame)
                continue
            if pending is not None:
                self.inbox.extend((later, received) for later in frames[index + 1:])
                self.pump = asyncio.create_task(self._drain_async(pending, frame))
                return

    def _flush_out(self) -> None:
        out, self.out = self.out, None
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

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

    def job_await(self, fn) -> None:
        """Await ``fn()`` (a coroutine function: a batch shared with other piles) after this
        pile's earlier jobs and before its later ones; failures are logged."""
        self.jobs.append((fn, None, None))
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
                if args is None:
                    await fn()
                else:
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
        self._write(data)
        gateway = self.gateway
        code = CODES[message.FRAME_TYPE]
        gateway.metrics.frames_out.inc(code)
        if received is not None:
            gateway.metrics.latency.observe(self.loop.time() - received, code)
        gateway.log_frame(self, "out", message.FRAME_TYPE, type(message).__name__,
                          getattr(message, "trade_no", ""), data)

    def send_heartbeat_reply(self, pile_code: str, connector_no: int, sequence: bytes,
                             received: float) -> None:
        """0x04 for a 0x03: the body is the same for every heartbeat of a connector
        (pile code, connector, 0), so it is encoded once; only sequence and CRC change."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        head = self.heartbeat_heads.get(connector_no)
        if head is None:
            body = HeartbeatReply(pile_code, connector_no, 0).encode_body()
            head = self.heartbeat_heads[connector_no] = (b"\x00\x04" + body,
                                                         bytes((0x68, 4 + len(body))))
        covered = sequence + head[0]
        crc = crc16_modbus(covered)
        data = b"".join((head[1], covered, crc.to_bytes(2, "little")))
        self._write(data)
        gateway = self.gateway
        metrics = gateway.metrics
        metrics.frames_out.inc("0x04")
        metrics.latency.observe(self.loop.time() - received, "0x04")
        gateway.log_frame(self, "out", 0x04, "HeartbeatReply", "", data)

    def _write(self, data: bytes) -> None:
        if self.out is not None:
            self.out.append(data)  # written at the end of the read being handled
        else:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.out:  # replies of the read being handled go out before the close
                self._flush_out()
                self.out = []
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
