"""YKC's own codes ↔ charging's port vocabulary (protocols/ykc/codes.py)."""

from __future__ import annotations

import pytest

from charging.port import ConnectorStatus, StartRefusal, StopReason
from protocols.ykc.codes import connector_status, start_refusal_code, stop_reason
from protocols.ykc.enums import StartAuthFailure


@pytest.mark.parametrize(("code", "reason"), [
    (0x40, StopReason.DRIVER), (0x41, StopReason.FULL), (0x44, StopReason.FULL),
    (0x45, StopReason.AT_PILE), (0x4E, StopReason.BALANCE), (0x6E, StopReason.BALANCE),
    (0x4B, StopReason.UNPLUGGED), (0x6B, StopReason.UNPLUGGED),
    (0x50, StopReason.EMERGENCY), (0x72, StopReason.EMERGENCY),
    (0x4A, StopReason.FAULT), (0x8F, StopReason.FAULT), (0x75, StopReason.FAULT),
    (0x46, StopReason.UNKNOWN), (0x90, StopReason.UNKNOWN), (0x00, StopReason.UNKNOWN),
])
def test_0x3b_stop_reasons(code, reason):
    assert stop_reason(code) is reason


def test_every_start_refusal_has_a_0x32_code():
    codes = {refusal: start_refusal_code(refusal, vin=False) for refusal in StartRefusal}
    assert codes[StartRefusal.CREDENTIAL_UNKNOWN] is StartAuthFailure.ACCOUNT_NOT_FOUND
    assert start_refusal_code(StartRefusal.CREDENTIAL_UNKNOWN, vin=True) is \
        StartAuthFailure.VIN_UNKNOWN
    assert codes[StartRefusal.MEMBER_DISABLED] is StartAuthFailure.ACCOUNT_FROZEN
    assert codes[StartRefusal.INSUFFICIENT_BALANCE] is StartAuthFailure.INSUFFICIENT_BALANCE
    assert codes[StartRefusal.ORDER_IN_PROGRESS] is StartAuthFailure.CARD_UNSETTLED_BILL
    assert codes[StartRefusal.CONNECTOR_RESERVED] is StartAuthFailure.ACCOUNT_NOT_ALLOWED_HERE
    for refusal in (StartRefusal.STATION_CLOSED, StartRefusal.CONNECTOR_FAULT,
                    StartRefusal.PILE_OFFLINE, StartRefusal.TARIFF_MISSING,
                    StartRefusal.CONNECTOR_BUSY, StartRefusal.CONNECTOR_UNKNOWN):
        assert codes[refusal] is StartAuthFailure.PILE_DISABLED
    assert StartAuthFailure.NONE not in codes.values()


@pytest.mark.parametrize(("status", "plugged", "expected"), [
    (0x00, False, ConnectorStatus.OFFLINE), (0x01, True, ConnectorStatus.FAULT),
    (0x02, False, ConnectorStatus.IDLE), (0x02, True, ConnectorStatus.PLUGGED),
    (0x03, True, ConnectorStatus.CHARGING),
])
def test_0x13_connector_status(status, plugged, expected):
    assert connector_status(status, plugged) is expected


def test_power_cap_to_0x52_percent_rounds_down_and_refuses_below_30():
    from decimal import Decimal as D

    from protocols.ykc.codes import power_limit_percent

    assert power_limit_percent(D("50"), D("120")) == 41  # 49.2 kW: never above the cap
    assert power_limit_percent(D("120"), D("120")) == 100
    assert power_limit_percent(D("500"), D("120")) == 100
    assert power_limit_percent(D("36"), D("120")) == 30
    assert power_limit_percent(D("35.9"), D("120")) is None
    assert power_limit_percent(D("10"), D("0")) is None


def test_hardware_fault_bits_map_to_the_ports_faults():
    from charging.port import ActiveFault, FaultCode, FaultSeverity
    from protocols.ykc.codes import active_faults

    assert active_faults(0) == ()
    assert active_faults(0, status_fault=True) == (
        ActiveFault(FaultCode.CONNECTOR, FaultSeverity.MAJOR, "status 0x01"),)
    assert active_faults(0x0001 | 0x1000) == (
        ActiveFault(FaultCode.EMERGENCY_STOP, FaultSeverity.CRITICAL, "bit 1"),
        ActiveFault(FaultCode.DOOR_OPEN, FaultSeverity.MINOR, "bit 13"))
    # Bits the document leaves unnamed are kept, as "other".
    assert active_faults(0x8000, status_fault=True) == (
        ActiveFault(FaultCode.OTHER, FaultSeverity.MAJOR, "bit 16"),)
    # Two comms bits are one kind of fault, each kept with its own bit.
    assert [f.protocol_code for f in active_faults(0x0010 | 0x0020)] == ["bit 5", "bit 6"]
