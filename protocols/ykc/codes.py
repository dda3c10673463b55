"""YKC's own codes mapped to charging's port vocabulary, here at the protocol's edge.

Pure (no Django): the 0x13 status and 硬件故障 bits, the 0x3B 停止原因 (§4.5), the 0x32 失败原因 (§4.3) and
the 0x35 失败原因 (§4.4).
"""

from __future__ import annotations

from charging.port import (
    ActiveFault,
    ConnectorStatus,
    FaultCode,
    FaultSeverity,
    StartRefusal,
    StopReason,
    StopRefusal,
)

from .enums import ConnectorStatus as YkcStatus
from .enums import HardwareFault, RemoteStopFailure, StartAuthFailure
from .enums import StopReason as YkcStop

# 0x3B 停止原因 → why the session ended. Codes not listed: 0x4A–0x8F are faults (start
# failures 0x4A–0x5F, abnormal stops 0x6A–0x8F), anything else unknown.
STOP_REASONS: dict[int, StopReason] = {
    YkcStop.APP_STOP: StopReason.DRIVER,
    YkcStop.SOC_FULL: StopReason.FULL,
    YkcStop.ENERGY_TARGET_REACHED: StopReason.FULL,
    YkcStop.AMOUNT_TARGET_REACHED: StopReason.FULL,
    YkcStop.TIME_TARGET_REACHED: StopReason.FULL,
    YkcStop.MANUAL_STOP: StopReason.AT_PILE,
    YkcStop.START_FAILED_INSUFFICIENT_BALANCE: StopReason.BALANCE,
    YkcStop.ABNORMAL_INSUFFICIENT_BALANCE: StopReason.BALANCE,
    YkcStop.START_FAILED_PILOT_DISCONNECTED: StopReason.UNPLUGGED,
    YkcStop.ABNORMAL_PILOT_DISCONNECTED: StopReason.UNPLUGGED,
    YkcStop.START_FAILED_EMERGENCY_STOP: StopReason.EMERGENCY,
    YkcStop.ABNORMAL_EMERGENCY_STOP: StopReason.EMERGENCY,
}


def stop_reason(code: int) -> StopReason:
    """The port's stop reason for a 0x3B 停止原因 byte (YKC 0x3B, §4.5)."""
    if code in STOP_REASONS:
        return STOP_REASONS[code]
    if 0x4A <= code <= 0x8F:
        return StopReason.FAULT
    return StopReason.UNKNOWN


# The platform's start refusals → 0x32 失败原因. A connector the pile cannot start on for
# the platform's rules (closed station, fault, busy, no tariff …) is "pile disabled" to
# the pile; a connector reserved for another member is "account not allowed here".
_START_REFUSALS: dict[StartRefusal, StartAuthFailure] = {
    StartRefusal.MEMBER_DISABLED: StartAuthFailure.ACCOUNT_FROZEN,
    StartRefusal.INSUFFICIENT_BALANCE: StartAuthFailure.INSUFFICIENT_BALANCE,
    StartRefusal.ORDER_IN_PROGRESS: StartAuthFailure.CARD_UNSETTLED_BILL,
    StartRefusal.CONNECTOR_RESERVED: StartAuthFailure.ACCOUNT_NOT_ALLOWED_HERE,
}


def start_refusal_code(refusal: StartRefusal | None, *, vin: bool) -> StartAuthFailure:
    """The 0x32 失败原因 for a refused card/VIN start (``vin``: started by VIN, 0x31
    启动方式 0x03). An unknown credential is 0x09 for a VIN, else 0x01."""
    if refusal is StartRefusal.CREDENTIAL_UNKNOWN or refusal is None:
        return StartAuthFailure.VIN_UNKNOWN if vin else StartAuthFailure.ACCOUNT_NOT_FOUND
    return _START_REFUSALS.get(refusal, StartAuthFailure.PILE_DISABLED)


def connector_status(status: int, plugged: bool) -> ConnectorStatus:
    """YKC 0x13 状态 + 是否插枪 → the port's connector status."""
    if status == YkcStatus.CHARGING:
        return ConnectorStatus.CHARGING
    if status == YkcStatus.IDLE:
        return ConnectorStatus.PLUGGED if plugged else ConnectorStatus.IDLE
    if status == YkcStatus.OFFLINE:
        return ConnectorStatus.OFFLINE
    return ConnectorStatus.FAULT


def stop_refusal(code: int) -> StopRefusal:
    """The port's refusal for a 0x35 失败原因 (0x02: the connector is not charging)."""
    if code == RemoteStopFailure.NOT_CHARGING:
        return StopRefusal.NOT_CHARGING
    return StopRefusal.OTHER


# 0x52 最大允许输出功率: 1 %/bit of the pile's rating, 30–100 (§3.8).
POWER_PERCENT_MIN = 30
POWER_PERCENT_MAX = 100


def power_limit_percent(max_power_kw, rated_power_kw) -> int | None:
    """The 0x52 percent for a cap of ``max_power_kw`` on a pile rated ``rated_power_kw``,
    rounded down so the pile never draws above the cap; 100 for a cap at or above the
    rating; None when the cap is below 30 % (the lowest a YKC pile takes)."""
    if rated_power_kw <= 0:
        return None
    percent = int(max_power_kw * 100 // rated_power_kw)
    if percent < POWER_PERCENT_MIN:
        return None
    return min(percent, POWER_PERCENT_MAX)


# 0x13 硬件故障 bits → the port's fault and how bad it is.
HARDWARE_FAULTS: dict[HardwareFault, tuple[FaultCode, FaultSeverity]] = {
    HardwareFault.EMERGENCY_STOP: (FaultCode.EMERGENCY_STOP, FaultSeverity.CRITICAL),
    HardwareFault.NO_RECTIFIER_MODULE: (FaultCode.POWER_MODULE, FaultSeverity.CRITICAL),
    HardwareFault.AIR_OUTLET_OVER_TEMPERATURE: (FaultCode.OVER_TEMPERATURE, FaultSeverity.MAJOR),
    HardwareFault.AC_SURGE_PROTECTOR: (FaultCode.SURGE_PROTECTOR, FaultSeverity.MAJOR),
    HardwareFault.DC20_COMMS_LOST: (FaultCode.INTERNAL_COMMS, FaultSeverity.MAJOR),
    HardwareFault.FC08_COMMS_LOST: (FaultCode.INTERNAL_COMMS, FaultSeverity.MAJOR),
    HardwareFault.METER_COMMS_LOST: (FaultCode.METER, FaultSeverity.MAJOR),
    HardwareFault.CARD_READER_COMMS_LOST: (FaultCode.CARD_READER, FaultSeverity.MINOR),
    HardwareFault.RC10_COMMS_LOST: (FaultCode.INTERNAL_COMMS, FaultSeverity.MAJOR),
    HardwareFault.FAN_BOARD: (FaultCode.FAN, FaultSeverity.MINOR),
    HardwareFault.DC_FUSE: (FaultCode.FUSE, FaultSeverity.CRITICAL),
    HardwareFault.HV_CONTACTOR: (FaultCode.CONTACTOR, FaultSeverity.CRITICAL),
    HardwareFault.DOOR_OPEN: (FaultCode.DOOR_OPEN, FaultSeverity.MINOR),
}


def active_faults(bits: int, *, status_fault: bool = False) -> tuple[ActiveFault, ...]:
    """The port's faults for a 0x13 硬件故障 word (uint16) and 状态 (``status_fault``:
    状态 0x01 故障). Bits the document does not name become ``OTHER`` (major), and a
    connector in fault with no bit set becomes ``CONNECTOR`` (major); each keeps its
    ``protocol_code`` ("bit n", doc numbering from 1, or "status 0x01")."""
    out: list[ActiveFault] = []
    for n in range(16):
        if not bits & (1 << n):
            continue
        mapped = HARDWARE_FAULTS.get(1 << n)  # type: ignore[call-overload]
        code, severity = mapped or (FaultCode.OTHER, FaultSeverity.MAJOR)
        out.append(ActiveFault(code, severity, f"bit {n + 1}"))
    if not out and status_fault:
        out.append(ActiveFault(FaultCode.CONNECTOR, FaultSeverity.MAJOR, "status 0x01"))
    return tuple(out)
