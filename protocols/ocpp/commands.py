"""OCPP-specific platform commands, carried on the command bus (``charging.bus``) next to
the port's protocol-neutral ones (RemoteStart, RemoteStop, ReadRealtime). Sent by
``manage.py ocpp_command``; executed by the OCPP gateway. Pure dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OcppReset:
    """Reset the pile (Reset.req); ``type`` "Soft" or "Hard"."""

    pile_code: str
    type: str = "Soft"


@dataclass(frozen=True)
class OcppChangeAvailability:
    """ChangeAvailability.req: ``connector_no`` 0 = the whole pile; ``type`` "Operative" or
    "Inoperative"."""

    pile_code: str
    connector_no: int = 0
    type: str = "Operative"


@dataclass(frozen=True)
class OcppUnlockConnector:
    """UnlockConnector.req."""

    pile_code: str
    connector_no: int = 1


@dataclass(frozen=True)
class OcppTriggerMessage:
    """TriggerMessage.req: ``requested_message`` BootNotification, Heartbeat, MeterValues,
    StatusNotification, DiagnosticsStatusNotification or FirmwareStatusNotification."""

    pile_code: str
    requested_message: str = "StatusNotification"
    connector_no: int | None = None


@dataclass(frozen=True)
class OcppGetConfiguration:
    """GetConfiguration.req (all keys when ``keys`` is empty)."""

    pile_code: str
    keys: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OcppChangeConfiguration:
    """ChangeConfiguration.req."""

    pile_code: str
    key: str = ""
    value: str = ""


@dataclass(frozen=True)
class OcppDataTransfer:
    """DataTransfer.req (vendor-specific)."""

    pile_code: str
    vendor_id: str = ""
    message_id: str = ""
    data: str = ""


OCPP_COMMANDS = {cls.__name__: cls for cls in (
    OcppReset, OcppChangeAvailability, OcppUnlockConnector, OcppTriggerMessage,
    OcppGetConfiguration, OcppChangeConfiguration, OcppDataTransfer)}
