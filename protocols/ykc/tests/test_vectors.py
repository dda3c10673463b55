"""Reference frames (ykc-v1.6.md §6) decode to their documented meaning and re-encode."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from protocols.ykc import (
    MESSAGE_TYPES,
    PILE_TZ,
    BillingModelRequest,
    BillingModelVerify,
    BillingModelVerifyReply,
    BmsChargeMode,
    BmsDemandOutput,
    Carrier,
    ConnectorHomed,
    ConnectorStatus,
    Heartbeat,
    HeartbeatReply,
    Login,
    LoginReply,
    NetworkType,
    PileType,
    ReadRealtimeData,
    RealtimeData,
    Reboot,
    RebootWhen,
    RemoteStart,
    RemoteStop,
    RemoteStopFailure,
    RemoteStopReply,
    RemoteUpdate,
    StartAuthFailure,
    StartAuthReply,
    StopReason,
    TimeSync,
    TradeType,
    TransactionRecord,
    TransactionRecordAck,
    UnknownMessage,
    UpdatePileModel,
    WorkParams,
    decode_frame,
    encode_frame,
)

from . import vectors as v
from .vectors import frame


def _roundtrip(hex_text: str) -> bytes:
    data = frame(hex_text)
    decoded = decode_frame(data)
    return encode_frame(decoded.message, sequence=decoded.sequence)


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=PILE_TZ)


def test_p1_login_reply():
    got = decode_frame(frame(v.P1))
    assert got.sequence == b"\x00\x00"
    assert got.encrypted is False
    assert got.crc_swapped is False
    assert got.message == LoginReply(pile_code="55031412782305", success=True)
    assert _roundtrip(v.P1) == frame(v.P1)


def test_p2_billing_verify_reply_keeps_sequence_bytes():
    got = decode_frame(frame(v.P2))
    assert got.sequence == b"\xce\x04"
    assert got.message == BillingModelVerifyReply(
        pile_code="55031412782305", billing_model_no="0000", model_differs=False)
    assert _roundtrip(v.P2) == frame(v.P2)


def test_p3_start_auth_reply_failure():
    got = decode_frame(frame(v.P3)).message
    assert got == StartAuthReply(
        trade_no="32010200000001012018061219595785", pile_code="32010200000001",
        connector_no=1, logical_card_no="0000000000000000", balance=Decimal("0.00"),
        authorized=False, failure_reason=StartAuthFailure.ACCOUNT_NOT_FOUND)
    assert got.failure_reason is StartAuthFailure.ACCOUNT_NOT_FOUND
    assert _roundtrip(v.P3) == frame(v.P3)


def test_p4_remote_update():
    got = decode_frame(frame(v.P4)).message
    assert got == RemoteUpdate(
        pile_code="55031412782305", pile_model=UpdatePileModel.DC, power_kw=15,
        server_address="114.55.114.174", server_port=21, username="sr", password="sr123",
        file_path="AC-7KW/20180131", when=RebootWhen.WHEN_IDLE, download_timeout_minutes=60)
    assert _roundtrip(v.P4) == frame(v.P4)


def test_j1_login_v16_with_hex_iccid():
    got = decode_frame(frame(v.J1))
    assert got.sequence == b"\x00\x19"
    assert got.message == Login(
        pile_code="20231212000010", pile_type=PileType.AC, connector_count=1,
        protocol_version=0x10, firmware_version="GV.95r13", network_type=NetworkType.SIM,
        sim="898604D11722D0348606", carrier=Carrier.CHINA_TELECOM)
    assert got.message.protocol_version_text == "1.6"
    assert _roundtrip(v.J1) == frame(v.J1)


def test_j2_login_reply_echoes_sequence():
    assert decode_frame(frame(v.J1)).sequence == decode_frame(frame(v.J2)).sequence
    reply = LoginReply(pile_code="20231212000010", success=True)
    assert encode_frame(reply, sequence=decode_frame(frame(v.J1)).sequence) == frame(v.J2)


def test_j3_time_sync():
    got = decode_frame(frame(v.J3)).message
    assert got == TimeSync(pile_code="20231212000010", current_time=_at(2024, 12, 18, 17, 15, 30))
    assert _roundtrip(v.J3) == frame(v.J3)


def test_j4_heartbeat_with_big_endian_crc_is_accepted_and_reencoded_little_endian():
    got = decode_frame(frame(v.J4))
    assert got.crc_swapped is True
    assert got.sequence == b"\x25\xd3"
    assert got.message == Heartbeat(pile_code="20231212000010", connector_no=1,
                                    connector_fault=False)
    data = frame(v.J4)
    assert _roundtrip(v.J4) == data[:-2] + data[-1:] + data[-2:-1]


def test_j5_realtime_data():
    got = decode_frame(frame(v.J5)).message
    assert isinstance(got, RealtimeData)
    assert got.pile_code == "20231212000010"
    assert got.connector_no == 1
    assert got.status is ConnectorStatus.CHARGING
    assert got.homed is ConnectorHomed.NO
    assert got.plugged is True
    assert got.output_voltage == Decimal("373.2")
    assert got.output_current == Decimal("101.2")
    assert got.cable_temperature == 34
    assert got.soc == 78
    assert got.battery_max_temperature == 35
    assert got.charged_minutes == 16
    assert got.remaining_minutes == 32
    assert str(got.energy) == "8.8000"
    assert str(got.amount) == "9.3280"
    assert got.energy_with_loss == Decimal("0")
    assert got.hardware_faults == 0
    assert _roundtrip(v.J5) == frame(v.J5)


def test_j6_bms_demand_output():
    got = decode_frame(frame(v.J6)).message
    assert got == BmsDemandOutput(
        trade_no="20231212000010012508272303540467", pile_code="20231212000010",
        connector_no=1, demand_voltage=Decimal("503.0"), demand_current=Decimal("196.0"),
        charge_mode=BmsChargeMode.CONSTANT_CURRENT, measured_voltage=Decimal("474.9"),
        measured_current=Decimal("113.8"), max_cell_voltage=Decimal("3.44"), max_cell_group=0,
        soc=83, remaining_minutes=17, charger_voltage=Decimal("475.4"),
        charger_current=Decimal("117.0"), charged_minutes=0)
    assert _roundtrip(v.J6) == frame(v.J6)


def test_j7_transaction_record():
    got = decode_frame(frame(v.J7))
    bill = got.message
    assert got.crc_swapped is True
    assert isinstance(bill, TransactionRecord)
    assert bill.trade_no == "20231212000010323239000000000000"
    assert bill.pile_code == "20231212000010"
    assert bill.connector_no == 1
    # byte 0x6D carries day-of-week 3 (Wednesday) on top of day 13: masked.
    assert bill.start_time == _at(2023, 12, 13, 17, 4, 14)
    assert bill.end_time == _at(2023, 12, 13, 17, 9, 36)
    assert [p.unit_price for p in bill.periods] == [
        Decimal("1.5"), Decimal("1.3"), Decimal("1.1"), Decimal("0.9")]
    assert str(bill.sharp.unit_price) == "1.50000"
    assert bill.valley.energy == Decimal("0.1650")
    assert bill.valley.amount == Decimal("0.1400")
    assert bill.sharp.energy == bill.peak.energy == bill.flat.energy == Decimal(0)
    assert str(bill.total_energy) == "0.1650"
    assert str(bill.total_amount) == "0.1400"
    assert bill.trade_type is TradeType.APP
    assert bill.stop_reason is StopReason.APP_STOP
    assert bill.vin == ""
    # Re-encoding is canonical: CRC low byte first, day-of-week bits written as 0.
    canonical = bytearray(frame(v.J7)[:-2])
    for at in (6 + 28, 6 + 35, 6 + 146):
        assert canonical[at] == 0x6D
        canonical[at] = 0x0D
    again = _roundtrip(v.J7)
    assert again[:-2] == bytes(canonical)
    assert decode_frame(again).message == bill
    assert decode_frame(again).crc_swapped is False


def test_j8_transaction_ack_echoes_byte_swapped_sequence_as_given():
    got = decode_frame(frame(v.J8))
    assert got.sequence == b"\x46\x00"
    assert got.message == TransactionRecordAck(
        trade_no="20231212000010323239000000000000", accepted=True)
    assert _roundtrip(v.J8) == frame(v.J8)


def test_j9_remote_start():
    got = decode_frame(frame(v.J9)).message
    assert got == RemoteStart(
        trade_no="00000000000012345678901234567890", pile_code="20231212000010",
        connector_no=1, logical_card_no="5678901234567890",
        physical_card_no="5678901234567890", balance=Decimal("100.00"))
    assert _roundtrip(v.J9) == frame(v.J9)


def test_j10_time_sync():
    got = decode_frame(frame(v.J10)).message
    assert got == TimeSync(pile_code="20231212000010", current_time=_at(2025, 8, 21, 12, 12, 12))
    assert _roundtrip(v.J10) == frame(v.J10)


def test_j11_work_params_out_of_range_power_still_decodes():
    got = decode_frame(frame(v.J11)).message
    assert got == WorkParams(pile_code="20231212000010", enabled=True, max_power_percent=0xF0)
    assert _roundtrip(v.J11) == frame(v.J11)


def test_j12_is_j1_with_swapped_crc():
    swapped = decode_frame(frame(v.J12))
    assert swapped.crc_swapped is True
    assert swapped.message == decode_frame(frame(v.J1)).message
    assert _roundtrip(v.J12) == frame(v.J1)


def test_d1_vendor_qr_prefix_is_unknown_message():
    got = decode_frame(frame(v.D1)).message
    assert isinstance(got, UnknownMessage)
    assert got.frame_type == 0xF0
    assert got.body[:7] == bytes.fromhex("36100095124032")
    assert got.body[9:].decode() == (
        "https://charging.fzcsny.com/code/gunDetail?orgNo=MA38617Y8&id=1860&carScope=1&no=")
    assert _roundtrip(v.D1) == frame(v.D1)


PDF_MEANINGS = {
    0x01: Login(pile_code="55031412782305", pile_type=PileType.DC, connector_count=2,
                protocol_version=0x0F, firmware_version="V4.1.50", network_type=NetworkType.LAN,
                sim="01010101010101010101", carrier=Carrier.OTHER),
    0x03: Heartbeat(pile_code="32010200000001", connector_no=1, connector_fault=False),
    0x04: HeartbeatReply(pile_code="55031412782305", connector_no=1, ack=0),
    0x05: BillingModelVerify(pile_code="32010200000001", billing_model_no="0001"),
    0x09: BillingModelRequest(pile_code="55031412782305"),
    0x12: ReadRealtimeData(pile_code="32010200000001", connector_no=1),
    0x35: RemoteStopReply(pile_code="32010200000001", connector_no=1, stopped=True,
                          failure_reason=RemoteStopFailure.NONE),
    0x36: RemoteStop(pile_code="32010200000001", connector_no=1),
    0x40: TransactionRecordAck(trade_no="55031412782305012018061910262392", accepted=True),
    0x56: TimeSync(pile_code="55031412782305", current_time=_at(2020, 3, 16, 17, 14, 47)),
    0x92: Reboot(pile_code="32010200000001", when=RebootWhen.NOW),
}


@pytest.mark.parametrize("frame_type", sorted(v.PDF_SYNTHETIC))
def test_pdf_samples_with_recomputed_crc(frame_type):
    data = frame(v.PDF_SYNTHETIC[frame_type])
    got = decode_frame(data)
    assert got.message == PDF_MEANINGS[frame_type]
    assert encode_frame(got.message, sequence=got.sequence) == data


@pytest.mark.parametrize("frame_type", sorted(v.LENGTH_BYTES))
def test_body_sizes_match_reference_length_bytes(frame_type):
    assert MESSAGE_TYPES[frame_type].BODY_SIZE == v.LENGTH_BYTES[frame_type] - 4


def test_every_v16_code_has_a_class():
    expected = set(v.LENGTH_BYTES) | {0x44, 0x45, 0x46, 0x47, 0x48}
    assert set(MESSAGE_TYPES) == expected
    for code, cls in MESSAGE_TYPES.items():
        assert cls.FRAME_TYPE == code
        assert f"0x{code:02X}" in cls.__doc__
