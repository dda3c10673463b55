"""The OCPP gateway process keeps the collector's full collections short: what start-up
built is frozen at once, and while it serves ``protocols.gc_pauses.keep_young`` freezes the
survivors every few seconds and collects everything once an hour (tested in
``test_gc_pauses``); here, that the process runs it with its own periods until stopped."""

from __future__ import annotations

import asyncio

from protocols.ocpp import gateway as module


class _Collector:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def freeze(self) -> None:
        self.calls.append("freeze")


class _Gateway:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        await asyncio.sleep(0.01)  # the keeper's cancellation is delivered meanwhile
        self.events.append("stop")


def test_the_process_keeps_its_collector_young_until_stopped(monkeypatch):
    kept: list = []

    async def keep_young(freeze_every_s: float, thaw_every_s: float) -> None:
        kept.append((freeze_every_s, thaw_every_s))
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            kept.append("cancelled")
            raise

    collector = _Collector()
    monkeypatch.setattr(module.gc_pauses, "keep_young", keep_young)
    monkeypatch.setattr(module, "gc", collector)
    gateway = _Gateway()

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(module.run(gateway, stop))
        await asyncio.sleep(0.05)
        stop.set()
        await runner

    asyncio.run(main())
    assert collector.calls == ["freeze"]  # what start-up built, at once
    assert kept == [(module.GC_FREEZE_EVERY_S, module.GC_THAW_EVERY_S), "cancelled"]
    assert gateway.events == ["start", "stop"]
