"""Field codecs for YKC V1.6 bodies (reference §2).

Each codec knows its wire size, decodes from ``(buf, offset)`` and encodes a value to exactly
``size`` bytes. Decoders are lenient where real piles are (BCD strings may hold A–F nibbles and
are returned as upper-case hex digits; unknown enum codes stay ints); encoders are strict and
raise :class:`~protocols.ykc.errors.EncodeError`.

Also the public helpers :func:`decode_cp56`, :func:`encode_cp56`, :func:`decode_bcd`,
:func:`encode_bcd`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

from .errors import BadField, EncodeError

#: Piles report local time without a zone (§2, CP56Time2a); the protocol is Chinese.
PILE_TZ = ZoneInfo("Asia/Shanghai")

_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")


class Codec:
    """One wire field: ``size`` bytes, ``arity`` dataclass attributes (1, or more for split
    fields such as 0x23's max cell voltage + group)."""

    __slots__ = ("size", "dec", "enc", "arity", "kind")

    def __init__(
        self,
        size: int,
        dec: Callable[[bytes, int], Any],
        enc: Callable[[str, Any], bytes],
        *,
        kind: str,
        arity: int = 1,
    ) -> None:
        self.size = size
        self.dec = dec
        self.enc = enc
        self.arity = arity
        self.kind = kind

    def __repr__(self) -> str:
        return f"<Codec {self.kind} {self.size}B>"


# ---------------------------------------------------------------- integers


def _check_int(name: str, value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(name, value, "expected an int")
    if not 0 <= value < limit:
        raise EncodeError(name, value, f"out of range 0..{limit - 1}")
    return value


def uint(size: int) -> Codec:
    """Unsigned little-endian integer of ``size`` bytes (BIN, §2)."""
    limit = 1 << (8 * size)
    if size == 1:
        def dec(buf: bytes, off: int) -> int:
            return buf[off]
    else:
        def dec(buf: bytes, off: int) -> int:
            return int.from_bytes(buf[off:off + size], "little")

    def enc(name: str, value: Any) -> bytes:
        return _check_int(name, value, limit).to_bytes(size, "little")

    return Codec(size, dec, enc, kind=f"uint{size * 8}")


def boolean() -> Codec:
    """One byte, 0 = False, anything else True (encodes 0/1)."""

    def dec(buf: bytes, off: int) -> bool:
        return buf[off] != 0

    def enc(name: str, value: Any) -> bytes:
        if not isinstance(value, bool):
            raise EncodeError(name, value, "expected a bool")
        return b"\x01" if value else b"\x00"

    return Codec(1, dec, enc, kind="bool")


def inverted_boolean() -> Codec:
    """One byte, 0 = True (e.g. 0x02 登录结果 0x00 success), non-zero False."""

    def dec(buf: bytes, off: int) -> bool:
        return buf[off] == 0

    def enc(name: str, value: Any) -> bytes:
        if not isinstance(value, bool):
            raise EncodeError(name, value, "expected a bool")
        return b"\x00" if value else b"\x01"

    return Codec(1, dec, enc, kind="bool0")


def enum(enum_cls: type[IntEnum], size: int = 1) -> Codec:
    """Unsigned LE integer mapped to ``enum_cls`` when known, left as ``int`` otherwise."""
    base = uint(size)
    known = {member.value: member for member in enum_cls}
    get = known.get
    raw_dec = base.dec

    def dec(buf: bytes, off: int) -> Any:
        value = raw_dec(buf, off)
        return get(value, value)

    def enc(name: str, value: Any) -> bytes:
        return base.enc(name, int(value) if isinstance(value, enum_cls) else value)

    return Codec(size, dec, enc, kind=f"enum:{enum_cls.__name__}")


def temperature() -> Codec:
    """1 byte, 1 °C, offset −50 (wire = °C + 50): −50..205 °C."""

    def dec(buf: bytes, off: int) -> int:
        return buf[off] - 50

    def enc(name: str, value: Any) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(name, value, "expected an int °C")
        if not -50 <= value <= 205:
            raise EncodeError(name, value, "out of range −50..205 °C")
        return bytes((value + 50,))

    return Codec(1, dec, enc, kind="temp")


# ---------------------------------------------------------------- decimals


def scaled(size: int, places: int, offset: int = 0) -> Codec:
    """Unsigned LE integer carrying ``value × 10**places`` (after adding ``offset``).

    Decodes to a ``Decimal`` with exactly ``places`` decimals, e.g. 0.0001 kWh steps → 4.
    ``offset`` is in real units: currents in 0x17/0x23 use ``offset=400`` (wire = (A+400)×10).
    """
    limit = 1 << (8 * size)
    exp = -places
    quantum = Decimal(1).scaleb(exp)
    dec_offset = Decimal(offset)

    if offset:
        def dec(buf: bytes, off: int) -> Decimal:
            return Decimal(int.from_bytes(buf[off:off + size], "little")).scaleb(exp) - dec_offset
    else:
        def dec(buf: bytes, off: int) -> Decimal:
            return Decimal(int.from_bytes(buf[off:off + size], "little")).scaleb(exp)

    def enc(name: str, value: Any) -> bytes:
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise EncodeError(name, value, "expected a Decimal")
        try:
            real = Decimal(value) + dec_offset
            wire = real.scaleb(places)
            if not wire.is_finite() or wire != wire.to_integral_value():
                raise EncodeError(name, value, f"more than {places} decimals (step {quantum})")
        except InvalidOperation as exc:
            raise EncodeError(name, value, "not a number") from exc
        number = int(wire)
        if not 0 <= number < limit:
            raise EncodeError(name, value, "out of range for the wire field")
        return number.to_bytes(size, "little")

    return Codec(size, dec, enc, kind=f"dec{size}e-{places}+{offset}")


def cell_voltage_and_group() -> Codec:
    """0x23 最高单体电压及组号: uint16 LE, bits 0–11 voltage in 0.01 V, bits 12–15 group.

    Two attributes: (Decimal V with 2 decimals, int group 0..15).
    """

    def dec(buf: bytes, off: int) -> tuple[Decimal, int]:
        raw = buf[off] | (buf[off + 1] << 8)
        return Decimal(raw & 0x0FFF).scaleb(-2), raw >> 12

    def enc(name: str, value: Any) -> bytes:
        volts, group = value
        wire = scaled(2, 2).enc(name, volts)
        number = int.from_bytes(wire, "little")
        if number > 0x0FFF:
            raise EncodeError(name, volts, "cell voltage above 40.95 V")
        _check_int(name, group, 16)
        return (number | (group << 12)).to_bytes(2, "little")

    return Codec(2, dec, enc, kind="cellv+group", arity=2)


# ---------------------------------------------------------------- BCD / bytes / text


def decode_bcd(data: bytes) -> str:
    """Packed BCD → digit string, most significant first (``32 01`` → ``"3201"``).

    Nibbles A–F (real piles put raw ICCID hex into BCD fields) come back as upper-case hex
    digits, so the value is lossless.
    """
    return data.hex().upper()


def encode_bcd(name: str, value: str, size: int) -> bytes:
    """Digit string → ``size`` bytes of packed BCD, left-padded with ``0``.

    Raises :class:`EncodeError` when ``value`` is not a str of at most ``2 × size`` hex digits.
    """
    if not isinstance(value, str) or not set(value) <= _HEX_DIGITS:
        raise EncodeError(name, value, "expected a string of digits")
    if len(value) > 2 * size:
        raise EncodeError(name, value, f"longer than {2 * size} digits")
    return bytes.fromhex(value.rjust(2 * size, "0"))


def bcd(size: int) -> Codec:
    """Packed BCD of ``size`` bytes as a string of ``2 × size`` digits (pile code: 7 → 14)."""

    def dec(buf: bytes, off: int) -> str:
        return buf[off:off + size].hex().upper()

    def enc(name: str, value: Any) -> bytes:
        return encode_bcd(name, value, size)

    return Codec(size, dec, enc, kind=f"bcd{size}")


def bcd_byte() -> Codec:
    """One BCD byte as an int 0..99 (枪号: ``01`` → 1, ``10`` → 10).

    A non-BCD byte decodes as ``high×10 + low`` (so a BIN-writing pile's 0x0A still reads 10).
    """

    def dec(buf: bytes, off: int) -> int:
        byte = buf[off]
        return (byte >> 4) * 10 + (byte & 0x0F)

    def enc(name: str, value: Any) -> bytes:
        _check_int(name, value, 100)
        return bytes((((value // 10) << 4) | (value % 10),))

    return Codec(1, dec, enc, kind="bcd1int")


def hex_bytes(size: int) -> Codec:
    """``size`` raw bytes shown as upper-case hex (物理卡号: 8 bytes → 16 hex chars).

    Encoding accepts shorter hex strings and left-pads with zeros (M1 UID right-aligned).
    """

    def dec(buf: bytes, off: int) -> str:
        return buf[off:off + size].hex().upper()

    def enc(name: str, value: Any) -> bytes:
        if not isinstance(value, str) or not set(value) <= _HEX_DIGITS:
            raise EncodeError(name, value, "expected hex digits")
        if len(value) > 2 * size:
            raise EncodeError(name, value, f"longer than {2 * size} hex digits")
        return bytes.fromhex(value.rjust(2 * size, "0"))

    return Codec(size, dec, enc, kind=f"hex{size}")


def raw(size: int) -> Codec:
    """``size`` raw bytes as ``bytes`` (e.g. 0x31 password MD5, BMS software version)."""

    def dec(buf: bytes, off: int) -> bytes:
        return bytes(buf[off:off + size])

    def enc(name: str, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            raise EncodeError(name, value, f"expected exactly {size} bytes")
        return bytes(value)

    return Codec(size, dec, enc, kind=f"raw{size}")


def ascii_text(size: int) -> Codec:
    """Fixed-width text padded with NUL: decodes without the trailing NULs.

    Bytes ≥ 0x80 are kept as Latin-1 characters so decoding never fails and stays lossless.
    """

    def dec(buf: bytes, off: int) -> str:
        return buf[off:off + size].rstrip(b"\x00").decode("latin-1")

    def enc(name: str, value: Any) -> bytes:
        if not isinstance(value, str):
            raise EncodeError(name, value, "expected a str")
        try:
            data = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise EncodeError(name, value, "not a single-byte string") from exc
        if len(data) > size:
            raise EncodeError(name, value, f"longer than {size} bytes")
        return data.ljust(size, b"\x00")

    return Codec(size, dec, enc, kind=f"ascii{size}")


# ---------------------------------------------------------------- CP56Time2a


def decode_cp56(data: bytes, offset: int = 0, *, field: str = "time") -> datetime | None:
    """CP56Time2a (7 bytes) → aware ``datetime`` in :data:`PILE_TZ`, or ``None`` if all zero.

    Layout (§2): ms-in-minute uint16 LE, minute (bits 0–5), hour (bits 0–4), day of month
    (bits 0–4; day-of-week bits 5–7 masked), month (bits 0–3), year − 2000 (bits 0–6). The IV
    and SU flags are ignored. Raises :class:`BadField` for impossible dates.
    """
    chunk = data[offset:offset + 7]
    if chunk == b"\x00\x00\x00\x00\x00\x00\x00":
        return None
    millis = chunk[0] | (chunk[1] << 8)
    try:
        if millis > 59999:
            raise ValueError("milliseconds > 59999")
        return datetime(
            2000 + (chunk[6] & 0x7F),
            chunk[5] & 0x0F,
            chunk[4] & 0x1F,
            chunk[3] & 0x1F,
            chunk[2] & 0x3F,
            millis // 1000,
            (millis % 1000) * 1000,
            tzinfo=PILE_TZ,
        )
    except ValueError as exc:
        raise BadField(f"invalid CP56Time2a in {field}: {exc}", bytes(chunk), field=field) from exc


def encode_cp56(value: datetime | None, *, field: str = "time") -> bytes:
    """``datetime`` → CP56Time2a (7 bytes); ``None`` → seven zero bytes.

    Aware datetimes are converted to :data:`PILE_TZ`; naive ones are taken as pile-local time.
    Sub-millisecond precision is dropped; the day-of-week bits are written as 0 (unused), as
    the PDF sample does. Raises :class:`EncodeError` outside 2000–2127.
    """
    if value is None:
        return b"\x00" * 7
    if not isinstance(value, datetime):
        raise EncodeError(field, value, "expected a datetime or None")
    if value.tzinfo is not None:
        value = value.astimezone(PILE_TZ)
    if not 2000 <= value.year <= 2127:
        raise EncodeError(field, value, "year outside 2000..2127")
    millis = value.second * 1000 + value.microsecond // 1000
    return bytes((
        millis & 0xFF, millis >> 8, value.minute, value.hour, value.day, value.month,
        value.year - 2000,
    ))


def cp56() -> Codec:
    """CP56Time2a field, see :func:`decode_cp56`."""

    def dec(buf: bytes, off: int) -> datetime | None:
        return decode_cp56(buf, off)

    def enc(name: str, value: Any) -> bytes:
        return encode_cp56(value, field=name)

    return Codec(7, dec, enc, kind="cp56")


# Shared instances for the common layouts.
PILE = bcd(7)
TRADE = bcd(16)
GUN = bcd_byte()
U8 = uint(1)
U16 = uint(2)
U32 = uint(4)
BOOL = boolean()
CARD = hex_bytes(8)
LOGICAL_CARD = bcd(8)
MODEL_NO = bcd(2)
PARALLEL_NO = bcd(6)
TIME = cp56()
TEMP = temperature()
KWH4 = scaled(4, 4)
KWH5 = scaled(5, 4)
YUAN4 = scaled(4, 4)
RATE = scaled(4, 5)
BALANCE = scaled(4, 2)
VOLT = scaled(2, 1)
AMP = scaled(2, 1)
AMP_BMS = scaled(2, 1, offset=400)
CELL_VOLT = scaled(2, 2)


def flag_bits(flag_cls: type, size: int) -> Codec:
    """Unsigned LE bit field decoded to an ``IntFlag`` (unknown bits are kept)."""
    base = uint(size)
    raw_dec = base.dec

    def dec(buf: bytes, off: int) -> Any:
        return flag_cls(raw_dec(buf, off))

    def enc(name: str, value: Any) -> bytes:
        return base.enc(name, int(value) if isinstance(value, flag_cls) else value)

    return Codec(size, dec, enc, kind=f"flags:{flag_cls.__name__}")


def offset_int(size: int, offset: int) -> Codec:
    """Unsigned LE integer with an additive offset: value = wire + ``offset``
    (0x15 manufacture year +1985, 0x25 cell/probe numbers +1)."""
    limit = 1 << (8 * size)

    def dec(buf: bytes, off: int) -> int:
        return int.from_bytes(buf[off:off + size], "little") + offset

    def enc(name: str, value: Any) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(name, value, "expected an int")
        if not offset <= value < limit + offset:
            raise EncodeError(name, value, f"out of range {offset}..{limit + offset - 1}")
        return (value - offset).to_bytes(size, "little")

    return Codec(size, dec, enc, kind=f"int+{offset}")


def flag_byte(true_byte: int) -> Codec:
    """One byte, 0 = False, non-zero True; encodes True as ``true_byte`` (0x61 uses 0xFF)."""
    true_wire = bytes((true_byte,))

    def dec(buf: bytes, off: int) -> bool:
        return buf[off] != 0

    def enc(name: str, value: Any) -> bytes:
        if not isinstance(value, bool):
            raise EncodeError(name, value, "expected a bool")
        return true_wire if value else b"\x00"

    return Codec(1, dec, enc, kind=f"bool{true_byte:02X}")
