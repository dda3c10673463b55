"""Known variants decode instead of failing (reference §3.1, §3.4, §3.5)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols.ykc import (
    BadLength,
    CardClear,
    CardClearReply,
    CardClearResult,
    CardQuery,
    CardQueryReply,
    CardQueryResult,
    CardSync,
    ConnectorStatus,
    GroundLockState,
    HardwareFault,
    Login,
    OfflineCard,
    ParallelStartRequest,
    PeriodUsage,
    PileStartRequest,
    StartMode,
    StopReason,
    TransactionRecord,
    UnknownMessage,
    crc16_modbus,
    decode_frame,
    encode_frame,
)

from . import vectors as v
from .vectors import frame


def _with_crc(covered: bytes) -> bytes:
    return bytes((0x68, len(covered))) + covered + crc16_modbus(covered).to_bytes(2, "little")


@pytest.mark.parametrize("version,text", [(0x0F, "1.5"), (0x10, "1.6"), (0x11, "1.7")])
def test_login_protocol_version_byte_variants(version, text):
    base = decode_frame(frame(v.J1)).message
    covered = bytearray(frame(v.J1)[2:-2])
    covered[4 + 9] = version
    got = decode_frame(_with_crc(bytes(covered))).message
    assert isinstance(got, Login)
    assert got.protocol_version == version
    assert got.protocol_version_text == text
    assert got.firmware_version == base.firmware_version


def _five_group_bill() -> bytes:
    """J7 re-framed as length 0xB2 with a fifth (deep-valley) group after the valley group."""
    covered = frame(v.J7)[2:-2]
    body = covered[4:]
    fifth = (bytes.fromhex("A0860100")              # 1.00000 yuan/kWh
             + (12345).to_bytes(4, "little") * 2    # 1.2345 kWh, with loss
             + (12345).to_bytes(4, "little"))       # 1.2345 yuan
    new_body = body[:38 + 64] + fifth + body[38 + 64:]
    return _with_crc(covered[:4] + new_body)


def test_transaction_record_with_fifth_price_group():
    data = _five_group_bill()
    assert data[1] == 0xB2
    got = decode_frame(data).message
    assert isinstance(got, TransactionRecord)
    assert len(got.periods) == 5
    assert got.periods[4] == PeriodUsage(Decimal("1.00000"), Decimal("1.2345"),
                                         Decimal("1.2345"), Decimal("1.2345"))
    four = decode_frame(frame(v.J7)).message
    assert got.periods[:4] == four.periods
    assert (got.total_energy, got.total_amount, got.stop_reason) == (
        four.total_energy, four.total_amount, StopReason.APP_STOP)
    again = encode_frame(got, sequence=b"\x00\x46")
    assert len(again) == len(data) == 0xB2 + 4
    assert decode_frame(again).message == got


def test_transaction_record_with_odd_length_is_bad_length():
    covered = frame(v.J7)[2:-2] + b"\x00" * 5
    with pytest.raises(BadLength):
        decode_frame(_with_crc(covered))


def test_unknown_type_is_reported_not_raised():
    covered = bytes.fromhex("0009001F") + b"\x01\x02\x03"
    got = decode_frame(_with_crc(covered))
    assert got.message == UnknownMessage(frame_type=0x1F, body=b"\x01\x02\x03")
    assert got.message.upstream is True
    assert encode_frame(got.message, sequence=got.sequence) == _with_crc(covered)


def test_unknown_enum_codes_stay_ints():
    covered = bytearray(frame(v.J5)[2:-2])
    covered[4 + 24] = 0x07                       # status not in §4.1
    covered[4 + 58:4 + 60] = b"\x01\x40"           # emergency stop + undefined bit 14
    got = decode_frame(_with_crc(bytes(covered))).message
    assert got.status == 7 and not isinstance(got.status, ConnectorStatus)
    assert HardwareFault.EMERGENCY_STOP in got.hardware_faults
    assert int(got.hardware_faults) == 0x4001
    assert encode_frame(got, sequence=bytes(covered[:2]))[2:-2] == bytes(covered)


def test_vin_is_reversed_on_the_wire_only_for_vin_starts():
    vin = "LGAG4PY33S6013235"
    request = PileStartRequest(pile_code="32010200000001", connector_no=1,
                               start_mode=StartMode.VIN, needs_password=False,
                               physical_card_no="0" * 16, password_md5=bytes(16), vin=vin)
    data = encode_frame(request)
    assert data[6 + 34:6 + 51] == vin[::-1].encode()
    assert decode_frame(data).message == request
    card = PileStartRequest(pile_code="32010200000001", connector_no=2,
                            start_mode=StartMode.CARD, needs_password=True,
                            physical_card_no="00000000D14B0A54", password_md5=bytes(range(16)),
                            vin="")
    data = encode_frame(card)
    assert data[6 + 10:6 + 18] == bytes.fromhex("00000000D14B0A54")
    assert data[6 + 34:6 + 51] == bytes(17)
    assert decode_frame(data).message == card


def test_parallel_start_request_vin_and_parallel_no():
    msg = ParallelStartRequest(pile_code="32010200000001", connector_no=2,
                               start_mode=StartMode.VIN, needs_password=False,
                               physical_card_no="0" * 16, password_md5=bytes(16),
                               vin="LGAG4PY33S6013235", role=1, parallel_no="251018121420")
    data = encode_frame(msg)
    assert data[1] == 0x3E
    assert data[-8:-2] == bytes.fromhex("251018121420")
    assert decode_frame(data).message == msg


def test_ground_lock_status_bay_occupied_is_ff():
    covered = bytes.fromhex("0000006132010200000001" "01" "55" "FF" "64" "00" "00000000")
    got = decode_frame(_with_crc(covered)).message
    assert got.lock_state is GroundLockState.RAISED
    assert got.bay_occupied is True
    assert got.lock_battery_percent == 100
    assert encode_frame(got)[2:-2] == covered


def test_offline_card_frames_roundtrip_and_check_counts():
    sync = CardSync(pile_code="32010200000001", cards=(
        OfflineCard("1000000000000001", "00000000D14B0A54"),
        OfflineCard("1000000000000002", "00000000AABBCCDD")))
    data = encode_frame(sync)
    assert data[1] == 4 + 8 + 32
    assert decode_frame(data).message == sync
    for message in (
        CardClear(pile_code="32010200000001", physical_card_nos=("00000000D14B0A54",)),
        CardQuery(pile_code="32010200000001", physical_card_nos=()),
        CardClearReply(pile_code="32010200000001", results=(
            CardClearResult("00000000D14B0A54", True, 0), CardClearResult("1" * 16, False, 1))),
        CardQueryReply(pile_code="32010200000001", results=(
            CardQueryResult("00000000D14B0A54", True),)),
    ):
        assert decode_frame(encode_frame(message)).message == message


def test_offline_card_sync_count_mismatch_is_bad_length():
    covered = bytes.fromhex("00000044320102000000010" "2") + bytes(16)  # says 2, carries 1
    with pytest.raises(BadLength):
        decode_frame(_with_crc(covered))


def test_offline_card_reply_partial_record_is_bad_length():
    covered = bytes.fromhex("0000004532010200000001") + bytes(9)
    with pytest.raises(BadLength):
        decode_frame(_with_crc(covered))
