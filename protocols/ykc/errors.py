"""Typed errors of the YKC codec.

Decoding raises (or, in the stream splitter, reports) subclasses of :class:`FrameError`; each
carries the offending bytes in ``data``. Encoding a message whose field value cannot be put on
the wire raises :class:`EncodeError` (a ``ValueError``), never a ``FrameError``.
"""

from __future__ import annotations


class FrameError(Exception):
    """A received byte sequence is not a valid YKC V1.6 frame.

    ``data`` holds the offending bytes (the whole frame when its boundaries are known, else the
    bytes that were skipped or inspected). ``frame_type`` and ``sequence`` are filled in when the
    envelope was readable, so a gateway can still log or answer the frame; ``frame`` is then
    the whole frame (``data`` may be just the offending field).
    """

    def __init__(
        self,
        reason: str,
        data: bytes = b"",
        *,
        frame_type: int | None = None,
        sequence: bytes | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = bytes(data)
        self.frame_type = frame_type
        self.sequence = sequence
        self.frame: bytes | None = None

    def __str__(self) -> str:
        head = self.data[:32].hex(" ")
        more = "…" if len(self.data) > 32 else ""
        return f"{self.reason} [{len(self.data)} bytes: {head}{more}]"


class BadStartByte(FrameError):
    """The frame (or a run of stream bytes) does not start with 0x68."""


class BadLength(FrameError):
    """The length byte is impossible, disagrees with the bytes present, exceeds the maximum
    frame size, or the body length does not fit the message type's layout."""


class BadCRC(FrameError):
    """The CRC-16/MODBUS over sequence…body matches neither byte order on the wire.

    ``expected`` is the computed CRC value, ``received`` the two wire bytes read low byte first.
    """

    def __init__(self, reason: str, data: bytes = b"", *, expected: int, received: int,
                 frame_type: int | None = None, sequence: bytes | None = None) -> None:
        super().__init__(reason, data, frame_type=frame_type, sequence=sequence)
        self.expected = expected
        self.received = received


class Truncated(FrameError):
    """Fewer bytes than the envelope needs (less than 6, or less than length + 4)."""


class BadField(FrameError):
    """A field holds a value that cannot be represented (e.g. a CP56Time2a with month 13,
    or an unknown encryption flag). ``field`` names it."""

    def __init__(self, reason: str, data: bytes = b"", *, field: str,
                 frame_type: int | None = None, sequence: bytes | None = None) -> None:
        super().__init__(reason, data, frame_type=frame_type, sequence=sequence)
        self.field = field


class EncodeError(ValueError):
    """A message field cannot be encoded (out of range, too many decimals, not BCD…).

    ``field`` names it and ``value`` is the offending value.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
