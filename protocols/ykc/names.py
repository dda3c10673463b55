"""YKC v1.6 frame types by name, as the protocol document names them (shown in the admin).

The English names are the msgids; the zh-hans catalogue carries the document's own Chinese
names (e.g. 0x01 充电桩登录认证, 0x3B 交易记录).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

FRAME_NAMES = {
    0x01: _("Pile login"),
    0x02: _("Login reply"),
    0x03: _("Heartbeat"),
    0x04: _("Heartbeat reply"),
    0x05: _("Billing model check"),
    0x06: _("Billing model check reply"),
    0x09: _("Billing model request"),
    0x0A: _("Billing model request reply"),
    0x12: _("Read live data"),
    0x13: _("Live data"),
    0x15: _("Charging handshake"),
    0x17: _("Parameter configuration"),
    0x19: _("Charging end"),
    0x1B: _("Error report"),
    0x1D: _("BMS abort while charging"),
    0x21: _("Charger abort while charging"),
    0x23: _("BMS demand and charger output"),
    0x25: _("BMS information while charging"),
    0x31: _("Start request from the pile"),
    0x32: _("Start confirmed by the platform"),
    0x33: _("Remote start reply"),
    0x34: _("Remote start"),
    0x35: _("Remote stop reply"),
    0x36: _("Remote stop"),
    0x3B: _("Transaction record"),
    0x40: _("Transaction record acknowledgement"),
    0x41: _("Balance update reply"),
    0x42: _("Balance update"),
    0x43: _("Offline card sync reply"),
    0x44: _("Offline card sync"),
    0x45: _("Offline card clear reply"),
    0x46: _("Offline card clear"),
    0x47: _("Offline card query reply"),
    0x48: _("Offline card query"),
    0x51: _("Work parameters reply"),
    0x52: _("Work parameters"),
    0x55: _("Time sync reply"),
    0x56: _("Time sync"),
    0x57: _("Billing model setting reply"),
    0x58: _("Billing model setting"),
    0x61: _("Ground lock status"),
    0x62: _("Ground lock command"),
    0x63: _("Ground lock reply"),
    0x91: _("Remote reboot reply"),
    0x92: _("Remote reboot"),
    0x93: _("Remote update reply"),
    0x94: _("Remote update"),
    0xA1: _("Parallel start request from the pile"),
    0xA2: _("Parallel start confirmed by the platform"),
    0xA3: _("Parallel remote start reply"),
    0xA4: _("Parallel remote start"),
}


def frame_name(frame_type: int) -> str:
    """The frame type's name in the active language, or ``0x..`` for a type we do not know."""
    name = FRAME_NAMES.get(frame_type)
    return str(name) if name is not None else f"0x{frame_type:02X}"
