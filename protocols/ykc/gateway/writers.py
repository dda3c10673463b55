"""Batched writes of the gateway: the frame log and session messages to
PostgreSQL, readings to the domain as samples, live state to Redis."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from charging import handlers, port

from .. import store
from ..frame import Frame, encode_frame
from .common import logger

if TYPE_CHECKING:
    from .server import YkcGateway


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
        # One flush at a time: a flush asked for (at stop, by a test) returns only once
        # the periodic one in flight has written what it took.
        self._flushing = asyncio.Lock()

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
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
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
    store.batch_write(schema=schema, frame_text=frame_copy_text(frames), messages=messages)
    if samples:
        handlers.dispatch(schema, port.ReadingsSampled(tuple(samples)))


def frame_copy_text(rows: list[tuple]) -> str:
    """Frame log rows ``(pile, epoch, direction, frame_type, name, trade_no, bytes |
    Frame)`` → the COPY text of ``FrameLog``'s (pile_code, at, direction, frame_type, name,
    trade_no, hex): a received frame as its bytes came (a frame built in code, without
    them, is encoded), times in UTC to the microsecond.

    One formatted line per row, since the frame log is most of what the gateway writes (two
    rows per heartbeat): nothing in these rows needs COPY's escaping (pile codes and
    transaction numbers are BCD, i.e. hex digits, or the frame would not have been decoded
    or encoded; names are message class names), and each second's text is formatted once.
    """
    seconds: dict[int, str] = {}
    lines = []
    for pile_code, at, direction, frame_type, name, trade_no, data in rows:
        if isinstance(data, Frame):
            if data.raw:
                data = data.raw
            else:
                raw = encode_frame(data.message, data.sequence)
                if data.crc_swapped:
                    raw = raw[:-2] + raw[-1:] + raw[-2:-1]
                data = raw
        second = int(at)
        stamp = seconds.get(second)
        if stamp is None:
            stamp = seconds[second] = datetime.fromtimestamp(second, UTC).strftime(
                "%Y-%m-%d %H:%M:%S")
        lines.append(f"{pile_code}\t{stamp}.{int((at - second) * 1e6):06d}+00\t{direction}\t"
                     f"{frame_type}\t{name}\t{trade_no}\t{data.hex().upper()}\n")
    return "".join(lines)


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
        # A key that always exists while this gateway runs (its keys mark, charging.bus):
        # gone means Redis lost its data, and ``on_lost()`` is called.
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
