"""A gateway process keeps the collector's full collections short (``protocols.gc_pauses``):
what survived is frozen every few seconds, everything collected at each (rare) thaw, and
every collection's pause measured by generation — here through the YKC gateway's metrics."""

from __future__ import annotations

import asyncio
import gc
import re

from protocols import gc_pauses

from .helpers import wait_for
from .test_ykc_observability import scrape


class _Collector:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def collect(self, generation: int = 2) -> int:
        self.calls.append("collect" if generation == 2 else f"collect {generation}")
        return 0


def test_survivors_frozen_every_period_and_everything_collected_at_each_thaw(monkeypatch):
    collector = _Collector()
    monkeypatch.setattr(gc_pauses, "gc", collector)

    async def main() -> None:
        keeper = asyncio.create_task(gc_pauses.keep_young(0.01, 0.1))
        await asyncio.sleep(0.35)
        keeper.cancel()

    asyncio.run(main())
    calls = collector.calls
    assert calls[:6] == ["collect 1", "freeze"] * 3  # the young only, no thaw before its time
    thaws = [i for i, call in enumerate(calls) if call == "unfreeze"]
    assert 1 <= len(thaws) <= 3 and calls.count("freeze") > 3 * len(thaws)
    for i in thaws:  # each thaw collects everything, then freezes the survivors again
        assert calls[i + 1:i + 3] == ["collect", "freeze"]


class _Histogram:
    def __init__(self) -> None:
        self.observed: list[tuple[float, str]] = []

    def observe(self, seconds: float, generation: str) -> None:
        self.observed.append((seconds, generation))


def test_pause_timer_observes_each_collection_by_generation_until_removed():
    histogram = _Histogram()
    timer = gc_pauses.PauseTimer(histogram)
    timer.install()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        timer.remove()
    gc.collect()
    timer.remove()  # twice: no error
    generations = [generation for _, generation in histogram.observed]
    assert generations[-2:] == ["0", "2"] and len(generations) >= 2
    assert all(0 <= seconds < 5 for seconds, _ in histogram.observed)
    count = len(histogram.observed)
    gc.collect()
    assert len(histogram.observed) == count  # removed: no more observations


def _full_collections(text: str) -> int:
    match = re.search(r'^ykc_gc_pause_seconds_count\{generation="2"\} (\d+)', text, re.M)
    return int(match.group(1)) if match else 0


def test_ykc_gateway_exports_its_collection_pauses(gateway):
    before = _full_collections(scrape(gateway))
    gc.collect()  # any thread's collection stops the gateway too
    assert wait_for(lambda: _full_collections(scrape(gateway)) >= before + 1)
    assert "# TYPE ykc_gc_pause_seconds histogram" in scrape(gateway).splitlines()
