"""The OCPP gateway process keeps the collector's full collections short: what survived
is frozen every few seconds (out of the generations a collection walks) and, once an
hour, thawed and collected (the cycles of connections closed meanwhile)."""

from __future__ import annotations

import asyncio

from protocols.ocpp import gateway as module


class _Collector:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def collect(self) -> int:
        self.calls.append("collect")
        return 0


def test_survivors_are_frozen_often_and_everything_collected_at_each_thaw(monkeypatch):
    collector = _Collector()
    monkeypatch.setattr(module, "gc", collector)
    monkeypatch.setattr(module, "GC_FREEZE_EVERY_S", 0.01)
    monkeypatch.setattr(module, "GC_THAW_EVERY_S", 0.1)

    async def main() -> None:
        keeper = asyncio.create_task(module._keep_gc_young())
        await asyncio.sleep(0.35)
        keeper.cancel()

    asyncio.run(main())
    calls = collector.calls
    assert calls[:3] == ["freeze"] * 3  # every GC_FREEZE_EVERY_S, no thaw before its time
    thaws = [i for i, call in enumerate(calls) if call == "unfreeze"]
    assert 1 <= len(thaws) <= 3 and calls.count("freeze") > 3 * len(thaws)
    for i in thaws:  # each thaw collects everything, then freezes the survivors again
        assert calls[i + 1:i + 3] == ["collect", "freeze"]
