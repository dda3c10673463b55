"""CRC-16/MODBUS as used by the YKC envelope (reference §1.2).

Polynomial 0x8005 reflected (0xA001), init 0xFFFF, no final XOR; check value for
``b"123456789"`` is 0x4B37. YKC computes it over frame bytes [2 .. L+1] (sequence…body) and
sends it low byte first.

Computed by ``fastcrc`` (compiled): every frame in and out is checked or signed, twice per
heartbeat, and the table-driven Python loop this replaced cost ~2 µs per frame (0.2 µs now).
"""

from __future__ import annotations

from fastcrc.crc16 import modbus as _modbus


def crc16_modbus(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None) -> int:
    """Return the CRC-16/MODBUS (0..0xFFFF) of ``data[start:end]``."""
    return _modbus(data if end is None and start == 0 else data[start:end])
