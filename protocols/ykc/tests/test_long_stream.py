"""A long mixed stream splits and decodes whole; its speed is measured by
``benchmarks/ykc_codec.py`` (the gateway's budget is ~1,500 frames/s in one process)."""

from __future__ import annotations

from protocols.ykc import split_frames

from . import vectors as v
from .vectors import frame


def test_a_long_mixed_stream_splits_whole():
    mix = [frame(x) for x in (v.J7, v.J5, v.J4, v.J6, v.J1, v.J8)]
    stream = b"".join(mix) * 500  # 3,000 frames, a third of them 0x3B/0x13/0x23
    frames, remaining, errors = split_frames(stream)
    assert len(frames) == 3000 and remaining == b"" and errors == []
    assert frames[:6] == split_frames(b"".join(mix))[0]
