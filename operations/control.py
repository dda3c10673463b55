"""Remote control of piles from the admin: each command goes through charging's port and
command bus (the gateway holding the pile runs it), waits for the pile's reply, and is
audited. Operator admins may send every command; station owners only those the operator
allows (``ControlPolicy.owner_commands``) and only to their own piles.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from accounts import audit
from charging import bus, port
from charging.models import ChargingOrder, OrderTransition
from evplatform.errors import DomainError
from stations import firmware as firmware_service
from stations import selectors as station_selectors
from stations.models import Firmware, FirmwareUpdate, Pile

from .models import ControlPolicy

# name → (label, needs a connector)
COMMANDS: dict[str, tuple[str, bool]] = {
    "remote_stop": (_("Remote stop"), True),
    "read_realtime": (_("Read real-time data"), True),
    "reboot": (_("Reboot"), False),
    "time_sync": (_("Time sync"), False),
    "power_cap": (_("Power cap"), False),
    "push_tariff": (_("Push billing model"), False),
    "firmware_update": (_("Firmware update"), False),
}


# The bus's error codes and the reply's fields in words staff read.
ERRORS = {
    "pile_offline": _("pile offline"),
    "timeout": _("no answer from the pile (timeout)"),
    "refused": _("refused by the pile"),
    "busy": _("the pile is busy with the same command"),
    "unsupported": _("not supported by this pile"),
    "invalid": _("invalid parameters"),
    "session_mismatch": _("another session runs on the connector"),
    "no_billing_model": _("no billing model for this pile"),
    "failed": _("the gateway failed"),
}
REPLY_FIELDS = {
    "pile_time": _("pile's clock"),
    "model_no": _("billing model number"),
    "status": _("status"),
    "energy_kwh": _("energy (kWh)"),
    "amount_yuan": _("amount (yuan)"),
    "soc_percent": _("SOC (%)"),
    "voltage_v": _("voltage (V)"),
    "current_a": _("current (A)"),
    "order": _("order"),
    "reason_code": _("protocol code"),
    "refusal": _("refusal"),
    "running": _("running session"),
    "trade_no": _("trade number"),
    "connector_no": _("connector"),
    "applied_kw": _("power cap in force (kW)"),
    "charging_rate_unit": _("cap sent in (W: power, A: current)"),
}


def error_label(code: str) -> str:
    return str(ERRORS.get(code, code))


def reply_rows(result: port.CommandResult) -> list[tuple[str, str]]:
    """The reply's fields as (label, value) rows for staff."""
    return [(str(REPLY_FIELDS.get(k, k)), "-" if v is None else str(v))
            for k, v in sorted((result.detail or {}).items()) if k not in ("gateway", "redis")]


class ControlRefused(DomainError):
    pass


@dataclass(frozen=True)
class ControlOutcome:
    """What happened: the pile's reply (``result``), or the order a stop went through."""

    name: str
    result: port.CommandResult
    order_number: str = ""


def commands_allowed(user, pile: Pile) -> list[str]:
    """The command names ``user`` may send to ``pile``."""
    if station_selectors.sees_all_stations(user):
        return list(COMMANDS)
    if not user.is_active or not pile.station.owners.filter(pk=user.pk).exists():
        return []
    allowed = set(ControlPolicy.load().owner_commands)
    return [name for name in COMMANDS if name in allowed]


def firmware_url(*, pile: Pile, firmware: Firmware, base_url: str) -> str:
    """Where ``pile`` downloads ``firmware``: OCPP piles over HTTP(S) from the platform
    (``{base_url}/firmware/{token}``, base_url the operator's host as staff reach it);
    YKC piles over FTP (0x94 carries an FTP server only) from ``FIRMWARE_FTP_URL`` (an FTP
    server whose root is the platform's media directory), the image's stored path under it.

    Raises ControlRefused ``firmware_protocol`` (400) for an image of the other protocol,
    ``firmware_ftp_missing`` (400) for a YKC pile when no FTP server is configured."""
    if firmware.protocol != pile.protocol:
        raise ControlRefused("firmware_protocol", _("This firmware is for piles of another "
                                                    "protocol."), 400)
    if pile.protocol == Pile.Protocol.OCPP:
        return f"{base_url.rstrip('/')}/firmware/{firmware.token}"
    ftp = getattr(settings, "FIRMWARE_FTP_URL", "")
    if not ftp:
        raise ControlRefused("firmware_ftp_missing", _("YKC piles download firmware over FTP, "
                                                       "and no FTP server is configured."), 400)
    return f"{ftp.rstrip('/')}/{firmware.file.name}"


def _command(name: str, pile: Pile, connector_no: int | None, percent: int | None,
             when_idle: bool, firmware_url: str = ""):
    code = pile.code
    if name == "firmware_update":
        return port.FirmwareUpdate(
            code, url=firmware_url, when_idle=when_idle, pile_model=1 if pile.current_type
            == Pile.CurrentType.DC else 2, power_kw=int(pile.rated_power_kw or 0))
    if name == "reboot":
        return port.Reboot(code, when_idle=when_idle)
    if name == "time_sync":
        return port.TimeSync(code)
    if name == "power_cap":
        if percent is None or not 30 <= percent <= 100:
            raise ControlRefused("invalid_percent", _("The power cap is 30–100 %."), 400)
        return port.PowerLimit.percent_of_rating(code, percent, enabled=True,
                                                 rated_power_kw=pile.rated_power_kw)
    if name == "push_tariff":
        return port.PushTariff(code)
    if name == "read_realtime":
        return port.ReadRealtime(code, connector_no)
    if name == "remote_stop":
        return port.RemoteStop(code, connector_no)
    raise ControlRefused("unknown_command", _("No such command."), 400)


def command_send(*, user, pile: Pile, name: str, connector_no: int | None = None,
                 percent: int | None = None, when_idle: bool = True,
                 firmware: Firmware | None = None, base_url: str = "") -> ControlOutcome:
    """Send command ``name`` to ``pile`` (``connector_no`` for connector commands,
    ``percent`` for power_cap, ``firmware`` and the operator host's ``base_url`` for
    firmware_update) and wait up to ``YKC_COMMAND_TIMEOUT_S`` + 2 s for the reply.

    Raises ControlRefused ``not_allowed`` (403), ``connector_required`` / ``invalid_percent`` /
    ``unknown_command`` / ``firmware_required`` and :func:`firmware_url`'s (400). A pile that
    is offline or silent is not an error: the outcome's result says so (``pile_offline``,
    ``timeout``). A remote stop of a connector with an order running goes through the order
    (it turns stopping, the stop is re-sent until confirmed). A firmware update is recorded
    (``stations.FirmwareUpdate``, before it is sent: the pile may report progress at once)
    and its progress follows what the pile reports. Every attempt is in the audit log.
    """
    if name not in COMMANDS:
        raise ControlRefused("unknown_command", _("No such command."), 400)
    if name not in commands_allowed(user, pile):
        raise ControlRefused("not_allowed", _("You may not send this command to this pile."), 403)
    needs_connector = COMMANDS[name][1]
    if needs_connector and not pile.connectors.filter(number=connector_no or 0).exists():
        raise ControlRefused("connector_required", _("Choose one of the pile's connectors."), 400)
    url = ""
    update = None
    if name == "firmware_update":
        if firmware is None:
            raise ControlRefused("firmware_required", _("Choose the firmware to send."), 400)
        url = firmware_url(pile=pile, firmware=firmware, base_url=base_url)
        update = firmware_service.firmware_update_record(
            pile=pile, firmware=firmware, requested_by=user.get_username(), sent=True)
    command = _command(name, pile, connector_no, percent, when_idle, url)
    if name == "remote_stop":
        order = (ChargingOrder.objects.filter(connector__pile=pile, connector__number=connector_no,
                                              state__in=["starting", "charging", "stopping"])
                 .order_by("-pk").first())
        if order is not None:
            from charging import services

            with transaction.atomic():
                services.order_stop(order_id=order.pk, actor=OrderTransition.Actor.STAFF,
                                    actor_id=str(user.pk), reason="platform")
                audit.record(user, "order.force_stop", order,
                             detail=f"{pile.code} {connector_no}号枪")
            return ControlOutcome(name, port.CommandResult(ok=True, detail={"order": order.number}),
                                  order_number=order.number)
    timeout = float(getattr(settings, "YKC_COMMAND_TIMEOUT_S", 10)) + 2
    result = bus.send(connection.schema_name, command, timeout=timeout)
    where = f"{pile.code}" + (f" {connector_no}号枪" if needs_connector else "")
    said = _("ok") if result.ok else error_label(result.error)
    reply = "，".join(f"{label}：{value}" for label, value in reply_rows(result))
    changes = {"command": [None, name]}
    if name == "power_cap":
        changes["percent"] = [None, percent]
    if update is not None:
        changes["firmware"] = [None, str(firmware)]
        if not result.ok:  # never reached the pile, or the pile said no
            update.status = (FirmwareUpdate.Status.REFUSED if result.error == "refused"
                             else FirmwareUpdate.Status.FAILED_TO_SEND)
            update.detail = error_label(result.error)[:200]
            update.save(update_fields=["status", "detail", "updated_at"])
    audit.record(user, "pile.command", pile, changes=changes,
                 detail=f"{COMMANDS[name][0]} {where} → {said}" + (f"（{reply}）" if reply else ""))
    return ControlOutcome(name, result)
