"""The gateway budget is ~1,500 frames/s in one process; keep a wide margin."""

from __future__ import annotations

import time

from protocols.ykc import split_frames

from . import vectors as v
from .vectors import frame


def test_split_and_decode_throughput():
    mix = [frame(x) for x in (v.J7, v.J5, v.J4, v.J6, v.J1, v.J8)]
    stream = b"".join(mix) * 500  # 3,000 frames, a third of them 0x3B/0x13/0x23
    started = time.perf_counter()
    frames, remaining, errors = split_frames(stream)
    elapsed = time.perf_counter() - started
    assert len(frames) == 3000 and remaining == b"" and errors == []
    assert 3000 / elapsed > 1500 * 3, f"{3000 / elapsed:.0f} frames/s"
