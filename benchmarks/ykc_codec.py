"""Benchmark the YKC stream splitter and frame decoder (Django-free).

Run: ``.venv/bin/python benchmarks/ykc_codec.py [copies]``. The stream is the verified test
vectors' mix (0x3B transaction records, 0x13 real-time data, 0x23 BMS, login, heartbeat, …)
repeated ``copies`` times (default 500, 3,000 frames). Prints frames/s beside a same-run
baseline: the CRC-16/MODBUS check alone over the same frames, the least any decoder must do.
Target: 4,500 frames/s in one process (three times the gateway's 1,500 frames/s budget).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.ykc import split_frames  # noqa: E402
from protocols.ykc.crc import crc16_modbus  # noqa: E402
from protocols.ykc.tests import vectors as v  # noqa: E402
from protocols.ykc.tests.vectors import frame  # noqa: E402

TARGET_FPS = 4_500


def best_of(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def main(copies: int = 500) -> None:
    mix = [frame(x) for x in (v.J7, v.J5, v.J4, v.J6, v.J1, v.J8)]
    stream = b"".join(mix) * copies
    count = len(mix) * copies
    frames, remaining, errors = split_frames(stream)
    assert len(frames) == count and remaining == b"" and not errors

    decode = best_of(lambda: split_frames(stream))
    bodies = [f[2:-2] for f in mix] * copies
    crc_only = best_of(lambda: [crc16_modbus(b) for b in bodies])
    fps, base_fps = count / decode, count / crc_only
    print(f"frames: {count}")
    print(f"split+decode: {fps:,.0f} frames/s (target {TARGET_FPS:,}: {'met' if fps >= TARGET_FPS else 'MISSED'})")
    print(f"baseline CRC only: {base_fps:,.0f} frames/s; decode costs {base_fps / fps:.1f}× the CRC pass")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
