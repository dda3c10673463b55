"""We as the customer-owning operator: infrastructure partners' stations and our members'
orders on their piles.

- :func:`stations_pull`: ``query_stations_info`` (all pages) and ``query_station_status``,
  handed to the domain as :class:`port.PartnerStationsPulled` (shown in our station search,
  marked as partner stations). Raises ``client.CallFailed`` when the partner cannot be
  reached or answers a ``Ret`` other than 0 (the beat job logs it and tries next time).
- :func:`connector_status_save`: the partner's ``notification_stationStatus``.
- :func:`order_start` / :func:`order_stop` / :func:`order_poll`: ``query_start_charge``,
  ``query_stop_charge`` and ``query_equip_charge_status`` for one of our members' orders
  (Celery tasks ``cec.roaming_start`` / ``cec.roaming_stop``; never in a driver's request),
  their answers handed to the domain as :class:`port.RoamingStarted`,
  :class:`port.RoamingStopped` and :class:`port.RoamingProgress`.
- :func:`charge_status_event`, :func:`bill_event`: the partner's pushes (ChargeStatus,
  ChargeOrderInfo, §5.9 and §4.15 of the reference) as port events.

Codes: ConnectorStatusInfo.Status, StartChargeSeqStat, FailReason as in
``shared/reference/cec-t102-2016.md`` §4.9–4.15 and §5.5–5.10.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from charging import handlers, port

from . import client
from .models import Partner

logger = logging.getLogger(__name__)

MAX_PAGES = 200

# ConnectorStatusInfo.Status → the platform's words (0 离网 1 空闲 2 占用未充电 3 充电中 4 预约 255 故障)
PARTNER_STATUS = {
    0: port.ConnectorStatus.OFFLINE, 1: port.ConnectorStatus.IDLE, 2: port.ConnectorStatus.PLUGGED,
    3: port.ConnectorStatus.CHARGING, 4: port.ConnectorStatus.RESERVED, 255: port.ConnectorStatus.FAULT,
}


def _ask(message):
    return handlers.handle(message)  # already in the operator's schema


def _call(partner: Partner, interface: str, data: dict) -> dict:
    reply = client.call(partner, interface, data)
    if reply.ret != 0 or not isinstance(reply.data, dict):
        raise client.CallFailed(f"{interface}: Ret {reply.ret} {reply.msg}", reply.request, reply.response)
    return reply.data


def _dec(value, default=None) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else default
    except InvalidOperation:
        return default


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _status(code) -> port.ConnectorStatus:
    return PARTNER_STATUS.get(_int(code, -1), port.ConnectorStatus.OFFLINE)


def _connector_type(code) -> int:
    """CEC ConnectorType 1–6; anything else is 6 (其他)."""
    value = _int(code, 6)
    return value if 1 <= value <= 6 else 6


def stations_pull(*, partner: Partner) -> int:
    """Pull every station of ``partner`` (all pages) and its connectors' status and hand
    them to the domain; stations it no longer lists are removed. Returns their number."""
    infos: list[dict] = []
    page, pages = 1, 1
    while page <= pages and page <= MAX_PAGES:
        data = _call(partner, "query_stations_info", {"PageNo": page, "PageSize": 50})
        infos += [i for i in data.get("StationInfos") or [] if isinstance(i, dict) and i.get("StationID")]
        pages = _int(data.get("PageCount"), 1)
        page += 1
    statuses: dict[str, int] = {}
    ids = [str(i["StationID"]) for i in infos]
    for start in range(0, len(ids), 50):
        data = _call(partner, "query_station_status", {"StationIDs": ids[start:start + 50]})
        for station in data.get("StationStatusInfos") or []:
            for c in station.get("ConnectorStatusInfos") or []:
                statuses[str(c.get("ConnectorID"))] = _int(c.get("Status"))
    stations = tuple(
        port.PartnerStationInfo(
            station_id=str(info["StationID"]), name=str(info.get("StationName") or ""),
            address=str(info.get("Address") or ""), latitude=_dec(info.get("StationLat")),
            longitude=_dec(info.get("StationLng")), status=_int(info.get("StationStatus")),
            price_note=str(info.get("ElectricityFee") or ""),
            opening_hours=str(info.get("BusineHours") or ""),
            phone=str(info.get("ServiceTel") or info.get("StationTel") or ""),
            connectors=tuple(
                port.PartnerConnectorInfo(
                    connector_id=str(c["ConnectorID"]),
                    equipment_id=str(equipment.get("EquipmentID") or ""),
                    connector_type=_connector_type(c.get("ConnectorType")),
                    power_kw=_dec(c.get("Power"), Decimal(0)),
                    status=_status(statuses.get(str(c["ConnectorID"]), 0)),
                )
                for equipment in info.get("EquipmentInfos") or [] if isinstance(equipment, dict)
                for c in equipment.get("ConnectorInfos") or [] if isinstance(c, dict) and c.get("ConnectorID")
            ),
        )
        for info in infos
    )
    return _ask(port.PartnerStationsPulled(
        partner=partner.operator_id, partner_name=partner.name,
        our_operator_id=partner.our_operator_id, stations=stations, at=timezone.now()))


def stations_withdraw(*, partner: Partner) -> int:
    """The partner is disabled or no longer an infrastructure partner: its stations leave
    our search (returns 0)."""
    return _ask(port.PartnerStationsPulled(
        partner=partner.operator_id, partner_name=partner.name,
        our_operator_id=partner.our_operator_id, stations=(), at=timezone.now()))


def connector_status_save(*, partner: Partner, info: dict) -> bool:
    """A partner's ``notification_stationStatus``: the connector's new status. False when
    the connector is unknown or the status malformed (the partner is told to ignore)."""
    try:
        cid, code = str(info["ConnectorID"]), int(info["Status"])
    except (KeyError, TypeError, ValueError):
        return False
    if code not in PARTNER_STATUS:
        return False
    return _ask(port.PartnerConnectorChanged(partner=partner.operator_id, connector_id=cid,
                                             status=PARTNER_STATUS[code], at=timezone.now()))


# --- our members' orders on the partner's piles ---------------------------------------


def _order(order_id: int) -> tuple[port.RoamingOrderView, Partner] | None:
    found = _ask(port.RoamingOrdersQuery(order_ids=(order_id,)))
    if not found:
        return None
    partner = Partner.objects.filter(operator_id=found[0].partner).first()
    return (found[0], partner) if partner is not None else None


def order_start(*, order_id: int) -> str:
    """Ask the partner to start our order (``query_start_charge``); its answer goes to the
    domain. Unreachable, disabled or not an infrastructure partner: the start fails
    (FailReason -1) and the member's hold is released. Returns what happened."""
    found = _order(order_id)
    if found is None:
        return "unknown"
    order, partner = found
    if order.state != "starting":
        return "not starting"
    if not (partner.enabled and partner.is_infrastructure and partner.base_url):
        _ask(port.RoamingStarted(partner=order.partner, seq=order.seq, accepted=False, fail_reason=-1))
        return "partner unavailable"
    try:
        data = _call(partner, "query_start_charge",
                     {"StartChargeSeq": order.seq, "ConnectorID": order.connector_id, "QRCode": ""})
    except client.CallFailed as exc:
        logger.warning("CEC start of %s at %s failed: %s", order.seq, partner, exc)
        _ask(port.RoamingStarted(partner=order.partner, seq=order.seq, accepted=False, fail_reason=-1))
        return "unreachable"
    accepted = data.get("SuccStat") == 0
    _ask(port.RoamingStarted(partner=order.partner, seq=order.seq, accepted=accepted,
                             charging=_int(data.get("StartChargeSeqStat")) == 2,
                             fail_reason=_int(data.get("FailReason")), at=timezone.now()))
    return "accepted" if accepted else f"refused {data.get('FailReason')}"


def order_stop(*, order_id: int) -> str:
    """Ask the partner to stop our order (``query_stop_charge``). Unreachable: the order
    stays stopping and the call is tried again by ``cec.roaming_due``."""
    found = _order(order_id)
    if found is None:
        return "unknown"
    order, partner = found
    if order.state not in ("stopping", "charging", "starting"):
        return "not running"
    try:
        data = _call(partner, "query_stop_charge",
                     {"StartChargeSeq": order.seq, "ConnectorID": order.connector_id})
    except client.CallFailed as exc:
        logger.warning("CEC stop of %s at %s failed: %s", order.seq, partner, exc)
        return "unreachable"
    accepted = data.get("SuccStat") == 0
    if accepted and _int(data.get("StartChargeSeqStat")) != 4:
        return "stopping"  # its notification_stop_charge_result tells when it has stopped
    _ask(port.RoamingStopped(partner=order.partner, seq=order.seq, accepted=accepted,
                             fail_reason=_int(data.get("FailReason")), at=timezone.now()))
    return "stopped" if accepted else f"refused {data.get('FailReason')}"


def order_poll(*, order_id: int) -> str:
    """Ask the partner for our order's ChargeStatus (``query_equip_charge_status``): for an
    order whose notifications stopped coming."""
    found = _order(order_id)
    if found is None:
        return "unknown"
    order, partner = found
    try:
        data = _call(partner, "query_equip_charge_status", {"StartChargeSeq": order.seq})
    except client.CallFailed as exc:
        logger.warning("CEC status of %s at %s failed: %s", order.seq, partner, exc)
        return "unreachable"
    event = charge_status_event(partner, data)
    return "polled" if event is not None and _ask(event) else "unknown"


STOP_AGAIN_AFTER_S = 60  # a stop the partner has not confirmed is asked again
POLL_AFTER_S = 300  # an order the partner has not reported on for this long is polled


def roaming_follow_up(*, now=None) -> int:
    """Our members' running orders on partners' piles that went quiet: a stop not
    confirmed within STOP_AGAIN_AFTER_S is sent again; an order without news for
    POLL_AFTER_S is asked for (``query_equip_charge_status``). Returns the calls made."""
    now = now or timezone.now()
    calls = 0
    for order in _ask(port.RoamingOrdersQuery(active=True)):
        if order.state == "stopping" and order.stop_requested_at and (
            (now - order.stop_requested_at).total_seconds() > STOP_AGAIN_AFTER_S
        ):
            order_stop(order_id=order.id)
            calls += 1
        elif order.last_heard_at and (now - order.last_heard_at).total_seconds() > POLL_AFTER_S:
            order_poll(order_id=order.id)
            calls += 1
    return calls


def charge_status_event(partner: Partner, data: dict) -> port.RoamingProgress | None:
    """A ChargeStatus (§5.9) as :class:`port.RoamingProgress`; None when it has no
    StartChargeSeq. StartChargeSeqStat 4 (已结束) ends the session."""
    seq = data.get("StartChargeSeq")
    if not isinstance(seq, str) or not seq:
        return None
    zero = Decimal("0")
    soc = _int(data.get("Soc"), -1)
    return port.RoamingProgress(
        partner=partner.operator_id, seq=seq, at=timezone.now(),
        energy_kwh=_dec(data.get("TotalPower"), zero), electricity_yuan=_dec(data.get("ElecMoney"), zero),
        service_yuan=_dec(data.get("SeviceMoney"), zero), total_yuan=_dec(data.get("TotalMoney"), zero),
        soc_percent=soc if 0 <= soc <= 100 else None,
        ended=_int(data.get("StartChargeSeqStat")) == 4,
    )


def bill_event(partner: Partner, data: dict, parse_when) -> port.RoamingBill:
    """A ChargeOrderInfo (§4.15) as :class:`port.RoamingBill`. Raises KeyError/ValueError
    for a missing StartChargeSeq or TotalMoney (the caller answers Ret 4004)."""
    seq = data["StartChargeSeq"]
    total = _dec(data["TotalMoney"])
    if not isinstance(seq, str) or total is None or total < 0:
        raise ValueError("StartChargeSeq and a TotalMoney ≥ 0 are required")

    def when(name):
        try:
            return parse_when(data.get(name) or "")
        except ValueError:
            return None

    zero = Decimal("0")
    return port.RoamingBill(
        partner=partner.operator_id, seq=seq, started_at=when("StartTime"), stopped_at=when("EndTime"),
        energy_kwh=_dec(data.get("TotalPower"), zero), electricity_yuan=_dec(data.get("TotalElecMoney"), zero),
        service_yuan=_dec(data.get("TotalSeviceMoney"), zero), total_yuan=total,
        stop_reason=_int(data.get("StopReason"), 99), raw=_plain(data),
        lines=_bill_lines(data.get("ChargeDetails"), parse_when),
    )


_LINE_NUMBERS = ("DetailPower", "ElecPrice", "SevicePrice", "DetailElecMoney", "DetailSeviceMoney")


def _bill_lines(details, parse_when) -> tuple[port.RoamingBillLine, ...]:
    """ChargeDetails (§4.15; at most 32 lines) as bill lines. A line whose figures are
    missing, not numbers or negative is left out (the bill's totals still count: they are
    what the member pays); an unreadable time is ``None``."""
    if not isinstance(details, list):
        return ()

    def when(text):
        try:
            return parse_when(text) if isinstance(text, str) and text else None
        except ValueError:
            return None

    lines = []
    for d in details[:32]:
        if not isinstance(d, dict):
            continue
        numbers = [_dec(d.get(name)) for name in _LINE_NUMBERS]
        if any(n is None or not n.is_finite() or n < 0 for n in numbers):
            continue
        kwh, elec_price, service_price, elec, service = numbers
        lines.append(port.RoamingBillLine(
            start=when(d.get("DetailStartTime")), end=when(d.get("DetailEndTime")), energy_kwh=kwh,
            electricity_price=elec_price, service_price=service_price,
            electricity_yuan=elec, service_yuan=service,
        ))
    return tuple(lines)


def _plain(data):
    """The partner's JSON with Decimals as text (kept on the order as received)."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return str(data) if isinstance(data, Decimal) else data
