"""The cyclic garbage collector in a gateway process holding thousands of connections.

A full collection walks every tracked object the process holds: at 18,000 YKC piles (one
connection object graph each, ~860 MiB) it stops the whole process — the event loop reads
no socket meanwhile — for hundreds of milliseconds. :func:`keep_young` moves what survived
into the collector's permanent generation (``gc.freeze``) every few seconds, so a full
collection walks only the last seconds' objects; :class:`PauseTimer` measures each pause
into a histogram (seconds, by generation). Frames and messages are freed by reference
counting anyway; only cycles (a closed connection's graph) wait for the periodic thaw.
"""

from __future__ import annotations

import asyncio
import gc
import time

GENERATIONS = ("0", "1", "2")  # the ``generation`` label of a pause histogram


class PauseTimer:
    """A ``gc.callbacks`` hook: the duration (seconds, ``time.perf_counter``) of each
    collection into ``histogram.observe(seconds, generation)`` with the generation as
    ``"0"``, ``"1"`` or ``"2"``. A collection of any thread pauses the whole process."""

    def __init__(self, histogram) -> None:
        self.histogram = histogram
        self._started: float | None = None

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.histogram.observe(time.perf_counter() - self._started,
                                   GENERATIONS[info.get("generation", 2)])
            self._started = None

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


async def keep_young(freeze_every_s: float, thaw_every_s: float) -> None:
    """Until cancelled: every ``freeze_every_s`` seconds collect the young generations (only
    the objects of the last seconds: the cycles among them are not frozen as garbage) and
    freeze what survived (``gc.freeze``); every ``thaw_every_s`` seconds first unfreeze and
    collect everything once (the cycles of connections closed since they were frozen: one
    long pause per ``thaw_every_s``)."""
    thawed = time.monotonic()
    while True:
        await asyncio.sleep(freeze_every_s)
        if time.monotonic() - thawed > thaw_every_s:
            gc.unfreeze()
            gc.collect()
            thawed = time.monotonic()
        else:
            gc.collect(1)
        gc.freeze()
