"""CRC-16/MODBUS as used by the YKC envelope (reference §1.2).

Polynomial 0x8005 reflected (0xA001), init 0xFFFF, no final XOR; check value for
``b"123456789"`` is 0x4B37. YKC computes it over frame bytes [2 .. L+1] (sequence…body) and
sends it low byte first.
"""

from __future__ import annotations


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_modbus(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None) -> int:
    """Return the CRC-16/MODBUS (0..0xFFFF) of ``data[start:end]``."""
    table = _TABLE
    crc = 0xFFFF
    view = data if end is None and start == 0 else data[start:end]
    for byte in view:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
