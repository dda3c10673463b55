"""OCPP 1.6J values ↔ charging's port vocabulary (pure functions, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from charging import port

# StatusNotification.status → the platform's connector status. Suspended* keep the session
# (the car or the pile paused it): still charging as far as the driver is concerned.
STATUS = {
    "Available": port.ConnectorStatus.IDLE,
    "Preparing": port.ConnectorStatus.PLUGGED,
    "Charging": port.ConnectorStatus.CHARGING,
    "SuspendedEV": port.ConnectorStatus.CHARGING,
    "SuspendedEVSE": port.ConnectorStatus.CHARGING,
    "Finishing": port.ConnectorStatus.FINISHING,
    "Reserved": port.ConnectorStatus.RESERVED,
    "Unavailable": port.ConnectorStatus.FAULT,
    "Faulted": port.ConnectorStatus.FAULT,
}

# StopTransaction.reason → the platform's stop reason (absent: Local, OCPP 1.6 §6.49).
STOP_REASON = {
    "EmergencyStop": port.StopReason.EMERGENCY,
    "EVDisconnected": port.StopReason.UNPLUGGED,
    "HardReset": port.StopReason.FAULT,
    "SoftReset": port.StopReason.FAULT,
    "Reboot": port.StopReason.FAULT,
    "PowerLoss": port.StopReason.FAULT,
    "Local": port.StopReason.AT_PILE,
    "Remote": port.StopReason.PLATFORM,
    "UnlockCommand": port.StopReason.PLATFORM,
    "DeAuthorized": port.StopReason.PLATFORM,
    "Other": port.StopReason.UNKNOWN,
}

# CardStartDecision refusals → idTagInfo.status.
REFUSAL_STATUS = {
    port.StartRefusal.CREDENTIAL_UNKNOWN: "Invalid",
    port.StartRefusal.MEMBER_DISABLED: "Blocked",
    port.StartRefusal.ORDER_IN_PROGRESS: "ConcurrentTx",
}


def status(ocpp_status: str) -> port.ConnectorStatus:
    """StatusNotification.status → :class:`port.ConnectorStatus` (unknown: fault)."""
    return STATUS.get(ocpp_status, port.ConnectorStatus.FAULT)


def stop_reason(reason: str | None) -> port.StopReason:
    return STOP_REASON.get(reason or "Local", port.StopReason.UNKNOWN)


def id_tag_status(refusal: port.StartRefusal | None) -> str:
    """A refused start's idTagInfo.status (Invalid, Blocked, ConcurrentTx; else Invalid)."""
    return REFUSAL_STATUS.get(refusal, "Invalid") if refusal is not None else "Invalid"


def timestamp(text: str | None, default: datetime | None = None) -> datetime:
    """An OCPP dateTime (RFC 3339) → aware UTC; naive times are taken as UTC; unparseable
    or missing: ``default`` (now)."""
    if text:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
    return default or datetime.now(UTC)


@dataclass
class Readings:
    """One MeterValue's readings in real units (None: not carried)."""

    at: datetime
    register_wh: Decimal | None = None
    power_kw: Decimal | None = None
    soc_percent: int | None = None
    current_a: Decimal | None = None
    voltage_v: Decimal | None = None
    context: str = "Sample.Periodic"


_ENERGY = {"Wh": Decimal(1), "kWh": Decimal(1000)}
_POWER = {"W": Decimal("0.001"), "kW": Decimal(1)}


def _number(text) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def readings(meter_value: dict) -> Readings:
    """One ``meterValue`` entry (snake_case keys, as the library hands them) → Readings.

    Energy.Active.Import.Register (the default measurand) in Wh or kWh, Power.Active.Import
    in W or kW, SoC in %, Current.Import in A and Voltage in V; phase-split values: the
    first phase (L1 / L1-N) stands for the connector; SignedData and unparseable values are
    skipped.
    """
    out = Readings(at=timestamp(meter_value.get("timestamp")))
    for sample in meter_value.get("sampled_value") or ():
        if sample.get("format") == "SignedData":
            continue
        value = _number(sample.get("value"))
        if value is None:
            continue
        phase = sample.get("phase")
        if phase not in (None, "L1", "L1-N"):
            continue
        measurand = sample.get("measurand") or "Energy.Active.Import.Register"
        unit = sample.get("unit")
        out.context = sample.get("context") or out.context
        if measurand == "Energy.Active.Import.Register" and out.register_wh is None:
            out.register_wh = value * _ENERGY.get(unit or "Wh", Decimal(1))
        elif measurand == "Power.Active.Import" and out.power_kw is None:
            out.power_kw = (value * _POWER.get(unit or "W", Decimal("0.001"))).quantize(
                Decimal("0.01"))
        elif measurand == "SoC" and out.soc_percent is None:
            out.soc_percent = max(0, min(100, int(value)))
        elif measurand == "Current.Import" and out.current_a is None:
            out.current_a = value.quantize(Decimal("0.1"))
        elif measurand == "Voltage" and out.voltage_v is None:
            out.voltage_v = value.quantize(Decimal("0.1"))
    return out


def kwh(wh) -> Decimal:
    """Wh (int or Decimal) → kWh with 4 decimals."""
    return (Decimal(wh) / 1000).quantize(Decimal("0.0001"))


# FirmwareStatusNotification.status → port.FirmwareStatus.status (stations' FirmwareUpdate
# statuses); "Idle" (nothing under way) is not reported.
FIRMWARE_STATUS = {"Downloading": "downloading", "Downloaded": "downloaded",
                   "DownloadFailed": "download_failed", "Installing": "installing",
                   "Installed": "installed", "InstallationFailed": "installation_failed"}
