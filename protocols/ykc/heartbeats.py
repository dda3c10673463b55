"""Heartbeats 0x03 answered in bulk: the gateway's most frequent frame, ~80 % of what piles
send (one per connector every 10 s, reference §4.3), answered without decoding a message.

A heartbeat is 17 bytes: ``68 0D`` · sequence (2) · encryption flag ``00`` · type ``03`` ·
pile code (7, BCD) · connector (1, BCD) · connector status (1) · CRC (2, low byte first).
Its reply 0x04 is the same bytes with the type ``04``, status ``00`` (``ack``) and a new
CRC, the sequence echoed (§1.3).

:func:`heartbeat_replies` is compiled (``_heartbeats.pyx``, built by ``make venv``): in
Python this loop costs ~1.4 µs a heartbeat, more than the rest of the gateway's work on a
read of them; compiled, ~0.15 µs (a read of eight, the call included). Without the build
it is :func:`python_heartbeat_replies`, the same contract byte for byte (tested against
each other), and ``COMPILED`` is False.
"""

from __future__ import annotations

from .crc import crc16_modbus

try:
    from ._heartbeats import heartbeat_replies as _compiled
except ImportError:  # not built (make venv builds it)
    _compiled = None

SIZE = 17
_HEAD = b"\x68\x0d"


def python_heartbeat_replies(data: bytes | bytearray | memoryview,
                             pile: bytes) -> tuple[int, bytes]:
    """Answer the heartbeats at the start of ``data`` (one read of a logged-in pile's link).

    ``pile`` is the pile's code as its 7 BCD bytes. Takes frames while each is a
    well-formed, unencrypted 0x03 of that pile with a BCD connector number and a CRC sent
    low byte first; stops at the first that is anything else (another type, another pile,
    a bad or swapped CRC, a partial frame), which the general splitter then handles with
    the rest. Returns ``(count, replies)``: the number of heartbeats taken (they end at
    byte ``17 × count``) and their 0x04 replies, concatenated in order. Never raises on
    input; raises ValueError when ``pile`` is not 7 bytes.
    """
    if len(pile) != 7:
        raise ValueError("a pile code is 7 BCD bytes")
    if not isinstance(data, bytes | bytearray):
        data = bytes(data)  # a memoryview
    tail = b"\x00\x03" + pile
    replies = []
    pos = 0
    last = len(data) - SIZE
    while pos <= last:
        if not (data.startswith(_HEAD, pos) and data.startswith(tail, pos + 4)):
            break
        gun = data[pos + 13]
        if gun & 0x0F > 9 or gun >> 4 > 9:
            break  # not BCD: the general path answers in its own encoding
        end = pos + 15
        if crc16_modbus(data, pos + 2, end) != data[end] | data[end + 1] << 8:
            break
        covered = b"".join((data[pos + 2:pos + 4], b"\x00\x04", pile, bytes((gun, 0))))
        replies.append(_HEAD)
        replies.append(covered)
        replies.append(crc16_modbus(covered).to_bytes(2, "little"))
        pos += SIZE
    return pos // SIZE, b"".join(replies)


heartbeat_replies = _compiled or python_heartbeat_replies
COMPILED = _compiled is not None
