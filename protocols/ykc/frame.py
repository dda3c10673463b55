"""YKC V1.6 frame envelope (reference §1): decode_frame / encode_frame.

Layout: ``68 | L | seq(2) | encrypt flag | frame type | body (L−4) | CRC lo | CRC hi``.
``L`` counts sequence…body; total frame size is ``L + 4``. The CRC is CRC-16/MODBUS over the
``L`` bytes after the length byte, sent low byte first; decoding also accepts it byte-swapped
(JCPP README / some vendors) and flags that in :attr:`Frame.crc_swapped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .crc import crc16_modbus
from .errors import BadCRC, BadField, BadLength, BadStartByte, EncodeError, FrameError, Truncated
from .messages import MESSAGE_TYPES, EncryptedMessage, Message, UnknownMessage

START = 0x68
#: Smallest frame: start, length, seq(2), flag, type, empty body, CRC(2).
MIN_FRAME_SIZE = 8
#: Largest frame a one-byte length allows (L = 255). The PDF caps L at 200 (largest V1.6
#: layout: 0x3B, L = 0xA2; seen variant 0xB2); decode_frame does not enforce that cap — pass
#: ``max_frame_size=204`` to the splitter to do so.
MAX_FRAME_SIZE = 255 + 4

AnyMessage = Message | UnknownMessage | EncryptedMessage


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    ``sequence`` is the raw 2-byte 序列号域, opaque (piles disagree on its byte order): echo
    it unchanged in replies via ``encode_frame(reply, sequence=frame.sequence)``.
    ``encrypted`` is the encryption flag (then ``message`` is an :class:`EncryptedMessage`).
    ``crc_swapped`` is True when the CRC arrived high byte first (accepted vendor quirk).
    ``raw`` is the frame's bytes as received (empty for a frame built in code); not compared.
    """

    sequence: bytes
    encrypted: bool
    message: AnyMessage
    crc_swapped: bool = False
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def frame_type(self) -> int:
        return self.message.frame_type


def decode_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Decode exactly one frame (``len(data)`` must be ``L + 4``).

    Returns a :class:`Frame` whose ``message`` is a typed message, an :class:`UnknownMessage`
    for unknown frame types, or an :class:`EncryptedMessage`. Raises :class:`Truncated`
    (too few bytes), :class:`BadStartByte`, :class:`BadLength` (L < 4, trailing bytes, or a
    body that does not fit its type), :class:`BadCRC`, :class:`BadField` (impossible value,
    unknown encryption flag). Every error is a :class:`FrameError` carrying the bytes.
    """
    data = bytes(data)
    size = len(data)
    if size < 6:
        raise Truncated(f"frame of {size} bytes is shorter than its 6-byte header", data)
    if data[0] != START:
        raise BadStartByte(f"start byte 0x{data[0]:02X}, expected 0x68", data)
    length = data[1]
    if length < 4:
        raise BadLength(f"length byte {length} < 4", data)
    if size < length + 4:
        raise Truncated(f"frame has {size} bytes, length byte needs {length + 4}", data)
    if size > length + 4:
        raise BadLength(f"frame has {size} bytes, length byte says {length + 4}", data)
    return _decode_checked(data, length)


def _decode_checked(data: bytes, length: int) -> Frame:
    """Decode a frame whose start byte and size are already checked."""
    end = length + 2
    crc = crc16_modbus(data, 2, end)
    low, high = data[end], data[end + 1]
    sequence = data[2:4]
    frame_type = data[5]
    swapped = False
    if low != crc & 0xFF or high != crc >> 8:
        if high == crc & 0xFF and low == crc >> 8:
            swapped = True
        else:
            raise BadCRC(f"CRC 0x{low | high << 8:04X} (LE) ≠ computed 0x{crc:04X}", data,
                         expected=crc, received=low | high << 8, frame_type=frame_type,
                         sequence=sequence)
    flag = data[4]
    body = data[6:end]
    if flag == 0:
        cls = MESSAGE_TYPES.get(frame_type)
        if cls is None:
            return Frame(sequence, False, UnknownMessage(frame_type, body), swapped, data)
        try:
            message = cls.decode_body(body)
        except FrameError as exc:
            exc.frame_type, exc.sequence = frame_type, sequence
            exc.frame = data
            raise
        return Frame(sequence, False, message, swapped, data)
    if flag == 1:
        return Frame(sequence, True, EncryptedMessage(frame_type, body), swapped, data)
    raise BadField(f"encryption flag 0x{flag:02X} is neither 0x00 nor 0x01", data,
                   field="encrypt_flag", frame_type=frame_type, sequence=sequence)


def encode_sequence(sequence: bytes | bytearray | int) -> bytes:
    """The 2 sequence bytes: raw bytes are used as given (echo a request's
    ``Frame.sequence``); an int 0..65535 is written little-endian (platform-initiated
    frames, per reference §1.3). Raises :class:`EncodeError`."""
    if isinstance(sequence, bytes | bytearray):
        if len(sequence) != 2:
            raise EncodeError("sequence", sequence, "expected exactly 2 bytes")
        return bytes(sequence)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= 0xFFFF:
        raise EncodeError("sequence", sequence, "expected 2 bytes or an int 0..65535")
    return sequence.to_bytes(2, "little")


def encode_frame(message: AnyMessage, sequence: bytes | bytearray | int = b"\x00\x00") -> bytes:
    """Encode ``message`` into a complete frame, CRC low byte first.

    ``sequence``: see :func:`encode_sequence`. The encryption flag is 0x00 except for an
    :class:`EncryptedMessage`. Raises :class:`EncodeError` for bad field values or a body
    longer than 251 bytes.
    """
    body = message.encode_body()
    if len(body) > 251:
        raise EncodeError("body", len(body), "longer than 251 bytes (length byte ≤ 255)")
    flag = 1 if isinstance(message, EncryptedMessage) else 0
    frame_type = message.frame_type
    if not 0 <= frame_type <= 0xFF:
        raise EncodeError("frame_type", frame_type, "not a byte")
    covered = encode_sequence(sequence) + bytes((flag, frame_type)) + body
    crc = crc16_modbus(covered)
    return bytes((START, len(covered))) + covered + bytes((crc & 0xFF, crc >> 8))
