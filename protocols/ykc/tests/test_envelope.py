"""Envelope, CRC, sequence, CP56Time2a and typed errors (reference §1, §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from protocols.ykc import (
    PILE_TZ,
    BadCRC,
    BadField,
    BadLength,
    BadStartByte,
    EncodeError,
    EncryptedMessage,
    FrameError,
    Heartbeat,
    RealtimeData,
    RemoteStart,
    TimeSync,
    TransactionRecord,
    Truncated,
    crc16_modbus,
    decode_bcd,
    decode_cp56,
    decode_frame,
    encode_bcd,
    encode_cp56,
    encode_frame,
    encode_sequence,
)

from . import vectors as v
from .vectors import frame


def _with_crc(covered: bytes, *, big_endian: bool = False) -> bytes:
    crc = crc16_modbus(covered)
    tail = crc.to_bytes(2, "big" if big_endian else "little")
    return bytes((0x68, len(covered))) + covered + tail


def test_crc_check_value():
    assert crc16_modbus(b"123456789") == 0x4B37


def test_crc_pdf_login_reply_example():
    assert crc16_modbus(bytes.fromhex("000000025503141278230500")) == 0x4CDA


def test_crc_slice_arguments():
    data = b"xx123456789yy"
    assert crc16_modbus(data, 2, 11) == 0x4B37


def test_crc_little_endian_accepted_and_not_flagged():
    covered = bytes.fromhex("0001000332010200000001" "0100")
    got = decode_frame(_with_crc(covered))
    assert got.crc_swapped is False
    assert got.message == Heartbeat(pile_code="32010200000001", connector_no=1,
                                    connector_fault=False)


def test_crc_big_endian_accepted_and_flagged():
    covered = bytes.fromhex("0001000332010200000001" "0100")
    got = decode_frame(_with_crc(covered, big_endian=True))
    assert got.crc_swapped is True
    assert got.message.pile_code == "32010200000001"


def test_encode_writes_crc_low_byte_first():
    data = encode_frame(Heartbeat(pile_code="32010200000001", connector_no=1,
                                  connector_fault=False), sequence=b"\x00\x01")
    assert data == frame(v.PDF_SYNTHETIC[0x03])
    assert data[-2:] == bytes.fromhex("F11A")


def test_bad_crc_carries_frame_and_values():
    data = bytearray(frame(v.J2))
    data[-1] ^= 0xFF
    with pytest.raises(BadCRC) as info:
        decode_frame(bytes(data))
    assert info.value.data == bytes(data)
    assert info.value.expected == 0x55A1
    assert info.value.received == 0xAAA1
    assert info.value.frame_type == 0x02
    assert info.value.sequence == b"\x00\x19"
    assert isinstance(info.value, FrameError)


def test_body_byte_flip_is_bad_crc():
    data = bytearray(frame(v.J5))
    data[40] ^= 0x01
    with pytest.raises(BadCRC):
        decode_frame(bytes(data))


def test_bad_start_byte():
    data = b"\x69" + frame(v.J2)[1:]
    with pytest.raises(BadStartByte) as info:
        decode_frame(data)
    assert info.value.data == data


@pytest.mark.parametrize("cut", [0, 1, 5])
def test_truncated_header(cut):
    with pytest.raises(Truncated) as info:
        decode_frame(frame(v.J2)[:cut])
    assert info.value.data == frame(v.J2)[:cut]


def test_truncated_body():
    with pytest.raises(Truncated):
        decode_frame(frame(v.J5)[:-1])


def test_trailing_bytes_are_bad_length():
    with pytest.raises(BadLength):
        decode_frame(frame(v.J2) + b"\x00")


def test_length_byte_below_four_is_bad_length():
    with pytest.raises(BadLength):
        decode_frame(b"\x68\x03\x00\x00\x00\x02\x00\x00")


def test_body_size_wrong_for_type_is_bad_length_with_context():
    covered = bytes.fromhex("00070003320102000000010100FF")  # 0x03 with one byte too many
    data = _with_crc(covered)
    with pytest.raises(BadLength) as info:
        decode_frame(data)
    assert info.value.frame_type == 0x03
    assert info.value.sequence == b"\x00\x07"
    assert info.value.frame == data


def test_jcpp_length_byte_bug_frame_is_rejected():
    # §6.3: JCPP's 0x04 sample counts only the body in its length byte.
    body = bytes.fromhex("202312120000100100")
    covered = b"\x25\xd3\x00\x04" + body
    crc = crc16_modbus(covered)
    data = bytes((0x68, len(body))) + covered + crc.to_bytes(2, "little")
    with pytest.raises(FrameError):
        decode_frame(data)


def test_invalid_cp56_is_bad_field_naming_the_field():
    covered = bytes.fromhex("0100005620231212000010") + bytes.fromhex("30750F11120D18")  # month 13
    with pytest.raises(BadField) as info:
        decode_frame(_with_crc(covered))
    assert info.value.field == "current_time"
    assert info.value.data == bytes.fromhex("30750F11120D18")
    assert info.value.frame_type == 0x56


def test_invalid_cp56_in_transaction_record_names_the_field():
    data = bytearray(frame(v.J7)[:-2])
    data[6 + 31 + 5] = 0x0E  # end_time month 14
    with pytest.raises(BadField) as info:
        decode_frame(_with_crc(bytes(data[2:])))
    assert info.value.field == "end_time"


def test_unknown_encryption_flag_is_bad_field():
    covered = bytes.fromhex("00070203320102000000010100")
    with pytest.raises(BadField) as info:
        decode_frame(_with_crc(covered))
    assert info.value.field == "encrypt_flag"


def test_encrypted_frame_is_returned_undecoded_and_reencodes():
    covered = bytes.fromhex("000701030011223344556677889900AA")
    data = _with_crc(covered)
    got = decode_frame(data)
    assert got.encrypted is True
    assert got.message == EncryptedMessage(frame_type=0x03, body=covered[4:])
    assert encode_frame(got.message, sequence=got.sequence) == data


def test_frame_errors_render_hex():
    err = BadStartByte("boom", b"\x01\x02")
    assert str(err) == "boom [2 bytes: 01 02]"


# ---------------------------------------------------------------- sequence


def test_sequence_bytes_are_echoed_verbatim():
    message = TimeSync(pile_code="20231212000010", current_time=None)
    assert encode_frame(message, sequence=b"\xad\x71")[2:4] == b"\xad\x71"


def test_sequence_int_is_little_endian():
    assert encode_sequence(1000) == b"\xe8\x03"


@pytest.mark.parametrize("bad", [b"\x00", b"\x00\x00\x00", -1, 0x10000, True, "01"])
def test_sequence_rejects_bad_values(bad):
    with pytest.raises(EncodeError):
        encode_sequence(bad)


# ---------------------------------------------------------------- CP56Time2a / BCD


def test_cp56_pdf_sample():
    assert decode_cp56(bytes.fromhex("98B70E11100314")) == datetime(
        2020, 3, 16, 17, 14, 47, tzinfo=PILE_TZ)


def test_cp56_masks_day_of_week_iv_and_su_bits():
    # 0x6D = Wednesday + 13th; minute with IV (bit 7); hour with SU (bit 7).
    got = decode_cp56(bytes((0xB0, 0x36, 0x84, 0x91, 0x6D, 0x0C, 0x17)))
    assert got == datetime(2023, 12, 13, 17, 4, 14, tzinfo=PILE_TZ)


def test_cp56_milliseconds():
    got = decode_cp56(bytes.fromhex("39300000010118"))  # 12345 ms
    assert (got.second, got.microsecond) == (12, 345000)
    assert encode_cp56(got) == bytes.fromhex("39300000010118")


def test_cp56_all_zero_is_none_both_ways():
    assert decode_cp56(b"\x00" * 7) is None
    assert encode_cp56(None) == b"\x00" * 7


def test_cp56_encode_converts_aware_datetimes_to_beijing_time():
    utc = datetime(2024, 12, 18, 9, 15, 30, tzinfo=UTC)
    assert encode_cp56(utc) == bytes.fromhex("30750F11120C18")
    plus_one = datetime(2024, 12, 18, 10, 15, 30, tzinfo=timezone(timedelta(hours=1)))
    assert encode_cp56(plus_one) == encode_cp56(utc)


def test_cp56_encode_takes_naive_as_pile_local():
    assert encode_cp56(datetime(2024, 12, 18, 17, 15, 30)) == bytes.fromhex("30750F11120C18")


@pytest.mark.parametrize("raw", ["61EA0000010118", "0000000001 0D18".replace(" ", ""),
                                 "00003C00010118", "00000018010118", "00000000000118"])
def test_cp56_invalid_values(raw):
    with pytest.raises(BadField):
        decode_cp56(bytes.fromhex(raw))


def test_cp56_year_range_on_encode():
    with pytest.raises(EncodeError):
        encode_cp56(datetime(1999, 12, 31, 23, 0))
    with pytest.raises(EncodeError):
        encode_cp56("2024-01-01")  # type: ignore[arg-type]


def test_bcd_pile_code_and_trade_no():
    assert decode_bcd(bytes.fromhex("32010200000001")) == "32010200000001"
    assert encode_bcd("pile_code", "32010200000001", 7) == bytes.fromhex("32010200000001")
    assert encode_bcd("trade_no", "1", 16) == b"\x00" * 15 + b"\x01"
    assert len(decode_bcd(bytes(16))) == 32


@pytest.mark.parametrize("bad", ["123456789012345", "12x4", 1234, None])
def test_bcd_encode_errors(bad):
    with pytest.raises(EncodeError) as info:
        encode_bcd("pile_code", bad, 7)
    assert info.value.field == "pile_code"


# ---------------------------------------------------------------- encode errors


def _remote_start(**changes):
    fields = dict(trade_no="0" * 32, pile_code="20231212000010", connector_no=1,
                  logical_card_no="0" * 16, physical_card_no="0" * 16, balance=Decimal("1.00"))
    fields.update(changes)
    return RemoteStart(**fields)


@pytest.mark.parametrize("changes,field", [
    ({"balance": Decimal("1.001")}, "balance"),          # more than 2 decimals
    ({"balance": Decimal("-1")}, "balance"),
    ({"balance": Decimal("42949672.96")}, "balance"),    # does not fit UINT32
    ({"balance": 1.0}, "balance"),                        # floats refused
    ({"balance": Decimal("NaN")}, "balance"),
    ({"connector_no": 100}, "connector_no"),
    ({"physical_card_no": "G" * 16}, "physical_card_no"),
    ({"trade_no": "1" * 33}, "trade_no"),
])
def test_encode_errors_name_the_field(changes, field):
    with pytest.raises(EncodeError) as info:
        encode_frame(_remote_start(**changes))
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_decimal_with_fewer_places_encodes():
    assert decode_frame(encode_frame(_remote_start(balance=Decimal(5)))).message.balance == 5


def test_encode_errors_for_realtime_text_and_temperature():
    base = decode_frame(frame(v.J5)).message
    assert isinstance(base, RealtimeData)
    with pytest.raises(EncodeError):
        encode_frame(_replace(base, cable_temperature=-51))
    with pytest.raises(EncodeError):
        encode_frame(_replace(base, plugged=1))


def test_transaction_record_needs_four_groups():
    bill = decode_frame(frame(v.J7)).message
    assert isinstance(bill, TransactionRecord)
    with pytest.raises(EncodeError):
        encode_frame(_replace(bill, periods=bill.periods[:3]))


def _replace(message, **changes):
    from dataclasses import replace

    return replace(message, **changes)
