"""Our T/CEC 102 endpoints: partners' platforms call these on the operator's host under
``CEC_PATH_PREFIX`` (default ``/evcs/v1/``), one URL per interface, POST only.

Every answer is HTTP 200 with a ``Ret``: 4003 for a malformed envelope or an unknown or
disabled OperatorID, 4001 for a bad signature, 4002 for a missing, expired or foreign
token, 4004 for undecryptable Data or bad business parameters (unknown station or
connector, a StartChargeSeq not 27 characters or not the caller's), 500 for anything
unexpected (logged) — never an HTTP 5xx. Processing order and codes:
``shared/reference/cec-t102-2016.md`` §2.5, §3.1.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from math import ceil
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from charging import handlers, port

from . import codec, convert
from .codec import RET_OK, RET_PARAMETER, RET_SYSTEM, RET_TOKEN, CecError
from .models import IssuedToken, Partner

logger = logging.getLogger(__name__)

Handler = Callable[[Partner, dict], dict]


def _ask(message):
    return handlers.handle(message)  # already in the operator's schema


def _field(data: dict, name: str, kind: type = str, *, required: bool = True, default=None):
    value = data.get(name, default)
    if value in (None, "") and required:
        raise CecError(RET_PARAMETER, f"{name} is required")
    if value in (None, ""):
        return default
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise CecError(RET_PARAMETER, f"{name} must be an integer") from exc
    if not isinstance(value, kind):
        raise CecError(RET_PARAMETER, f"{name} has the wrong type")
    return value


def _seq(partner: Partner, data: dict, name: str) -> str:
    """A 27-character sequence number that starts with the caller's OperatorID."""
    value = _field(data, name)
    if len(value) != 27 or not value.startswith(partner.operator_id):
        raise CecError(RET_PARAMETER, f"{name} must be 27 characters starting with your OperatorID")
    return value


def _stations(partner: Partner, ids: tuple[int, ...] | None = None, since=None):
    if not partner.all_stations:
        visible = set(partner.stations.values_list("pk", flat=True))
        ids = tuple(i for i in (ids if ids is not None else visible) if i in visible)
    return _ask(port.StationsQuery(station_ids=ids, changed_since=since))


def _connector(partner: Partner, data: dict) -> tuple[str, int, port.StationView]:
    """(pile code, connector number, station) of the request's ConnectorID, visible to the
    partner; CecError 4004 otherwise."""
    value = _field(data, "ConnectorID")
    parts = convert.split_connector_id(value)
    if parts is not None:
        for station in _stations(partner):
            for pile in station.piles:
                if pile.code == parts[0] and any(c.connector_no == parts[1] for c in pile.connectors):
                    return parts[0], parts[1], station
    raise CecError(RET_PARAMETER, "unknown ConnectorID")


# --- interfaces --------------------------------------------------------------------------


def query_token(partner: Partner, data: dict) -> dict:
    ok = (
        data.get("OperatorID") == partner.operator_id
        and secrets.compare_digest(str(data.get("OperatorSecret", "")).encode(),
                                   partner.in_operator_secret.encode())
    )
    if not ok:
        return {"OperatorID": partner.operator_id, "SuccStat": 1, "AccessToken": "",
                "TokenAvailableTime": 0, "FailReason": 2}
    token = secrets.token_hex(32).upper()
    IssuedToken.objects.create(
        partner=partner, digest=_digest(token),
        expires_at=timezone.now() + timedelta(seconds=partner.token_ttl_s),
    )
    IssuedToken.objects.filter(expires_at__lt=timezone.now() - timedelta(days=1)).delete()
    return {"OperatorID": partner.operator_id, "SuccStat": 0, "AccessToken": token,
            "TokenAvailableTime": partner.token_ttl_s, "FailReason": 0}


def query_stations_info(partner: Partner, data: dict) -> dict:
    page_no = max(1, _field(data, "PageNo", int, required=False, default=1))
    page_size = min(50, max(1, _field(data, "PageSize", int, required=False, default=10)))
    since_text = _field(data, "LastQueryTime", required=False)
    try:
        since = convert.parse_when(since_text) if since_text else None
    except ValueError as exc:
        raise CecError(RET_PARAMETER, "LastQueryTime must be yyyy-MM-dd HH:mm:ss") from exc
    stations = _stations(partner, since=since)
    page = stations[(page_no - 1) * page_size: page_no * page_size]
    today = timezone.localdate()
    infos = [station_info(partner, s, today) for s in page]
    return {"PageNo": page_no, "PageCount": max(1, ceil(len(stations) / page_size)),
            "ItemSize": len(stations), "StationInfos": infos}


def station_info(partner: Partner, station: port.StationView, on: date) -> dict:
    """The station's StationInfo for ``partner``, its ElectricityFee the day's periods."""
    policies = _policies(station, on)
    text = ";".join(f"{p['StartTime']}:{p['ElecPrice']}+{p['SevicePrice']}" for p in policies)
    return convert.station_info(partner.our_operator_id, station, text[:256])


def _policies(station: port.StationView, on: date) -> list[dict]:
    """The PolicyInfos of the station's first pile with a tariff (via the port)."""
    for pile in station.piles:
        day = _ask(port.PileTariffQuery(pile_code=pile.code, on_date=on))
        if day is not None:
            return _policy_infos(day)
    return []


def _policy_infos(day: port.TariffDay) -> list[dict]:
    from .tariff import to_cec_policy_infos

    return to_cec_policy_infos(day)


def query_station_status(partner: Partner, data: dict) -> dict:
    ids_raw = _field(data, "StationIDs", list)
    if len(ids_raw) > 50:
        raise CecError(RET_PARAMETER, "at most 50 StationIDs")
    try:
        ids = tuple(int(i) for i in ids_raw)
    except (TypeError, ValueError) as exc:
        raise CecError(RET_PARAMETER, "unknown StationID") from exc
    stations = _stations(partner, ids)
    infos = [convert.station_status_info(partner.our_operator_id, s) for s in stations]
    return {"Total": len(infos), "StationStatusInfos": infos}


def query_station_stats(partner: Partner, data: dict) -> dict:
    station_id = _field(data, "StationID")
    try:
        start = date.fromisoformat(_field(data, "StartTime"))
        end = date.fromisoformat(_field(data, "EndTime"))
        stations = _stations(partner, (int(station_id),))
    except ValueError as exc:
        raise CecError(RET_PARAMETER, "StartTime/EndTime must be yyyy-MM-dd") from exc
    if not stations or end < start or (end - start).days > 31:
        raise CecError(RET_PARAMETER, "unknown StationID or bad period")
    station = stations[0]
    tz = convert.CHINA
    orders = _ask(port.OrdersQuery(
        settled_from=datetime.combine(start, datetime.min.time(), tzinfo=tz),
        settled_to=datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz),
    ))
    by_connector: dict[tuple[str, int], Decimal] = {}
    for o in orders:
        if o.station_id == station.id:
            key = (o.pile_code, o.connector_no)
            by_connector[key] = by_connector.get(key, Decimal(0)) + o.energy_kwh
    equipment = []
    for pile in station.piles:
        connectors = [
            {"ConnectorID": convert.connector_id(partner.our_operator_id, pile.code, c.connector_no),
             "ConnectorElectricity": convert.q(by_connector.get((pile.code, c.connector_no)), 1)}
            for c in pile.connectors
        ]
        equipment.append({"EquipmentID": pile.code,
                          "EquipmentElectricity": convert.q(
                              sum((by_connector.get((pile.code, c.connector_no), Decimal(0))
                                   for c in pile.connectors), Decimal(0)), 1),
                          "ConnectorStatsInfos": connectors})
    total = sum(by_connector.values(), Decimal(0))
    return {"StationStats": {"StationID": station_id, "StartTime": start.isoformat(),
                             "EndTime": end.isoformat(), "StationElectricity": convert.q(total, 1),
                             "EquipmentStatsInfos": equipment}}


def query_equip_auth(partner: Partner, data: dict) -> dict:
    seq = _seq(partner, data, "EquipAuthSeq")
    pile_code, no, station = _connector(partner, data)
    status = next(c.status for p in station.piles if p.code == pile_code
                  for c in p.connectors if c.connector_no == no)
    fail = 0
    if status == port.ConnectorStatus.IDLE:
        fail = 1  # 此设备尚未插枪
    elif status != port.ConnectorStatus.PLUGGED:
        fail = 2  # 设备检测失败 (offline, fault, busy, reserved)
    return {"EquipAuthSeq": seq, "ConnectorID": data["ConnectorID"],
            "SuccStat": 1 if fail else 0, "FailReason": fail}


def query_equip_business_policy(partner: Partner, data: dict) -> dict:
    seq = _seq(partner, data, "EquipBizSeq")
    pile_code, _no, _station = _connector(partner, data)
    day = _ask(port.PileTariffQuery(pile_code=pile_code, on_date=timezone.localdate()))
    if day is None:
        return {"EquipBizSeq": seq, "ConnectorID": data["ConnectorID"], "SuccStat": 1,
                "FailReason": 1, "SumPeriod": 0, "PolicyInfos": []}
    infos = _policy_infos(day)
    return {"EquipBizSeq": seq, "ConnectorID": data["ConnectorID"], "SuccStat": 0,
            "FailReason": 0, "SumPeriod": len(infos), "PolicyInfos": infos}


# query_start_charge FailReason: 1 此设备不存在 2 此设备离线 3~99 自定义
_START_FAIL = {
    port.StartRefusal.CONNECTOR_UNKNOWN.value: 1,
    port.StartRefusal.PILE_OFFLINE.value: 2,
    port.StartRefusal.CONNECTOR_NOT_PLUGGED.value: 3,
    port.StartRefusal.CONNECTOR_BUSY.value: 4,
    port.StartRefusal.CONNECTOR_RESERVED.value: 4,
    port.StartRefusal.CONNECTOR_FAULT.value: 5,
    port.StartRefusal.STATION_CLOSED.value: 6,
    port.StartRefusal.PILE_DISABLED.value: 6,
    port.StartRefusal.TARIFF_MISSING.value: 7,
    "partner_owes": 8,
    "seq_reused": 9,
}


def query_start_charge(partner: Partner, data: dict) -> dict:
    seq = _seq(partner, data, "StartChargeSeq")
    pile_code, no, _station = _connector(partner, data)
    answer = {"StartChargeSeq": seq, "ConnectorID": data["ConnectorID"]}
    if not partner.charge_while_owing and _owes(partner):
        return answer | {"StartChargeSeqStat": 5, "SuccStat": 1, "FailReason": _START_FAIL["partner_owes"]}
    reply = _ask(port.PartnerStart(partner=partner.operator_id, partner_seq=seq,
                                   pile_code=pile_code, connector_no=no,
                                   credit_yuan=partner.credit_yuan))
    if reply.order is None:
        return answer | {"StartChargeSeqStat": 5, "SuccStat": 1,
                         "FailReason": _START_FAIL.get(reply.refusal, 99)}
    return answer | {"StartChargeSeqStat": convert.SEQ_STAT.get(reply.order.state, 5),
                     "SuccStat": 0, "FailReason": 0}


def _owes(partner: Partner) -> bool:
    return _ask(port.PartnerBalanceQuery(partner=partner.operator_id)) > 0


def _partner_order(partner: Partner, seq: str) -> port.OrderView:
    orders = _ask(port.OrdersQuery(partner=partner.operator_id, partner_seq=seq))
    if not orders:
        raise CecError(RET_PARAMETER, "unknown StartChargeSeq")
    return orders[0]


def query_equip_charge_status(partner: Partner, data: dict) -> dict:
    seq = _seq(partner, data, "StartChargeSeq")
    order = _partner_order(partner, seq)
    return convert.charge_status(partner.our_operator_id, order, timezone.now())


def query_stop_charge(partner: Partner, data: dict) -> dict:
    seq = _seq(partner, data, "StartChargeSeq")
    order = _partner_order(partner, seq)
    if _field(data, "ConnectorID") != convert.connector_id(
        partner.our_operator_id, order.pile_code, order.connector_no
    ):
        raise CecError(RET_PARAMETER, "ConnectorID is not this order's")
    reply = _ask(port.PartnerStop(partner=partner.operator_id, partner_seq=seq))
    view = reply.order or order
    answer = {"StartChargeSeq": seq, "StartChargeSeqStat": convert.SEQ_STAT.get(view.state, 5)}
    if reply.refusal:
        return answer | {"SuccStat": 1, "FailReason": 3}  # 设备已停止充电
    return answer | {"SuccStat": 0, "FailReason": 0}


def _infrastructure(partner: Partner) -> None:
    if not partner.is_infrastructure:
        raise CecError(RET_PARAMETER, "not an infrastructure partner")


def _our_seq(partner: Partner, data: dict) -> str:
    """A StartChargeSeq of ours at this partner (27 characters, our OperatorID first)."""
    value = _field(data, "StartChargeSeq")
    if len(value) != 27 or not value.startswith(partner.our_operator_id):
        raise CecError(RET_PARAMETER, "StartChargeSeq must be 27 characters starting with our OperatorID")
    return value


def notification_station_status(partner: Partner, data: dict) -> dict:
    """An infrastructure partner's connector changed (a single ConnectorStatusInfo, or the
    ``ConnectorStatusInfos`` array some profiles send). Status 0 kept, 1 ignored."""
    from .remote import connector_status_save

    _infrastructure(partner)
    infos = data.get("ConnectorStatusInfos") or [data.get("ConnectorStatusInfo")]
    if not all(isinstance(i, dict) for i in infos):
        raise CecError(RET_PARAMETER, "ConnectorStatusInfo is required")
    saved = [connector_status_save(partner=partner, info=i) for i in infos]
    return {"Status": 0 if all(saved) else 1}


# --- we are the customer-owning operator: the partner reports on our members' orders ---
# Answers: SuccStat 0 received / 1 not ours (FailReason 1 接收失败); ConfirmResult 0 成功,
# 1 争议交易 (billed before with another total), 2 no such order of ours.


def notification_start_charge_result(partner: Partner, data: dict) -> dict:
    """§4.10: the start of our order succeeded (StartChargeSeqStat 1/2) or failed (4/5)."""
    from .remote import _int

    _infrastructure(partner)
    seq = _our_seq(partner, data)
    stat = _int(data.get("StartChargeSeqStat"), 5)
    known = _ask(port.RoamingStarted(partner=partner.operator_id, seq=seq, accepted=stat in (1, 2, 3),
                                     charging=stat == 2, fail_reason=0 if stat in (1, 2, 3) else 99,
                                     at=timezone.now()))
    return {"StartChargeSeq": seq, "SuccStat": 0 if known else 1, "FailReason": 0 if known else 1}


def notification_equip_charge_status(partner: Partner, data: dict) -> dict:
    """§4.12: our order's ChargeStatus at the partner's cadence."""
    from .remote import charge_status_event

    _infrastructure(partner)
    seq = _our_seq(partner, data)
    known = _ask(charge_status_event(partner, data))
    return {"StartChargeSeq": seq, "SuccStat": 0 if known else 1}


def notification_stop_charge_result(partner: Partner, data: dict) -> dict:
    """§4.14: our order stopped (SuccStat 0), or the stop failed with a FailReason."""
    from .remote import _int

    _infrastructure(partner)
    seq = _our_seq(partner, data)
    known = _ask(port.RoamingStopped(partner=partner.operator_id, seq=seq,
                                     accepted=_int(data.get("SuccStat"), 1) == 0,
                                     fail_reason=_int(data.get("FailReason")), at=timezone.now()))
    return {"StartChargeSeq": seq, "SuccStat": 0 if known else 1, "FailReason": 0 if known else 1}


def notification_charge_order_info(partner: Partner, data: dict) -> dict:
    """§4.15: our order's final bill; our member is billed once (a repeat is confirmed
    again, a repeat with another total is disputed)."""
    from .remote import bill_event

    _infrastructure(partner)
    seq = _our_seq(partner, data)
    try:
        bill = bill_event(partner, data, convert.parse_when)
    except (KeyError, ValueError) as exc:
        raise CecError(RET_PARAMETER, f"bad ChargeOrderInfo: {exc}") from exc
    result = _ask(bill)
    confirm = 0 if result.confirmed else (2 if result.dispute == "unknown" else 1)
    return {"StartChargeSeq": seq, "ConnectorID": data.get("ConnectorID", ""), "ConfirmResult": confirm}


def check_charge_orders(partner: Partner, data: dict) -> dict:
    """§4.16: the partner's day of our members' orders; we answer the ones we dispute
    (DisputeReason 1 no such order, 2 money, 3 energy)."""
    from .remote import _dec

    _infrastructure(partner)
    seq = _field(data, "CheckOrderSeq")
    orders = data.get("ChargeOrders")
    if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
        raise CecError(RET_PARAMETER, "ChargeOrders must be a list")
    lines = []
    for o in orders:
        total, power = _dec(o.get("TotalMoney")), _dec(o.get("TotalPower"))
        if not isinstance(o.get("StartChargeSeq"), str) or total is None or power is None:
            raise CecError(RET_PARAMETER, "each order needs StartChargeSeq, TotalPower, TotalMoney")
        lines.append(port.RoamingCheckLine(seq=o["StartChargeSeq"], energy_kwh=power, total_yuan=total))
    disputes = _ask(port.RoamingReconcile(partner=partner.operator_id, lines=tuple(lines)))
    return {
        "CheckOrderSeq": seq, "StartTime": data.get("StartTime", ""), "EndTime": data.get("EndTime", ""),
        "TotalDisputeOrder": len(disputes),
        "TotalDisputePower": convert.q(sum((d.line.energy_kwh for d in disputes), Decimal(0)), 2),
        "TotalDisputeMoney": convert.q(sum((d.line.total_yuan for d in disputes), Decimal(0)), 2),
        "DisputeOrders": [{"StartChargeSeq": d.line.seq, "TotalPower": convert.q(d.line.energy_kwh, 2),
                           "TotalMoney": convert.q(d.line.total_yuan, 2), "DisputeReason": d.reason}
                          for d in disputes],
    }


INTERFACES: dict[str, Handler] = {
    "notification_stationStatus": notification_station_status,
    "notification_start_charge_result": notification_start_charge_result,
    "notification_equip_charge_status": notification_equip_charge_status,
    "notification_stop_charge_result": notification_stop_charge_result,
    "notification_charge_order_info": notification_charge_order_info,
    "check_charge_orders": check_charge_orders,
    "query_token": query_token,
    "query_stations_info": query_stations_info,
    "query_station_status": query_station_status,
    "query_station_stats": query_station_stats,
    "query_equip_auth": query_equip_auth,
    "query_equip_business_policy": query_equip_business_policy,
    "query_start_charge": query_start_charge,
    "query_equip_charge_status": query_equip_charge_status,
    "query_stop_charge": query_stop_charge,
}


# --- the endpoint ------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_ok(request: HttpRequest, partner: Partner) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    return IssuedToken.objects.filter(
        partner=partner, digest=_digest(header[7:].strip()), expires_at__gt=timezone.now()
    ).exists()


def _answer(ret: int, msg: str, data: Any, partner: Partner | None) -> JsonResponse:
    secrets_ = partner.inbound if partner is not None else None
    if partner is not None and data is not None:
        data = partner.rename_out(data)
    body = codec.response_build(ret, msg, data, secrets_)
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
@require_POST
def endpoint(request: HttpRequest, interface: str) -> JsonResponse:
    """POST ``{prefix}{interface}``: one T/CEC request in, one signed answer out."""
    partner: Partner | None = None
    try:
        handler = INTERFACES.get(interface)
        envelope = codec.envelope_parse(request.body)
        partner = Partner.objects.filter(operator_id=envelope["OperatorID"], enabled=True).first()
        if partner is None:
            raise CecError(codec.RET_ENVELOPE, "unknown OperatorID")
        codec.request_check_sig(envelope, partner.inbound)
        if interface != "query_token" and not _token_ok(request, partner):
            raise CecError(RET_TOKEN, "invalid or expired token")
        data = codec.request_open(envelope, partner.inbound)
        if handler is None:
            raise CecError(RET_PARAMETER, f"unknown interface {interface}")
        if not isinstance(data, dict):
            raise CecError(RET_PARAMETER, "Data must be a JSON object")
        return _answer(RET_OK, "", handler(partner, partner.rename_in(data)), partner)
    except CecError as err:
        sign_with = partner if err.ret not in (codec.RET_ENVELOPE,) else None
        return _answer(err.ret, err.msg, None, sign_with)
    except Exception:  # never a 5xx to a partner: Ret 500, logged for us
        logger.exception("CEC %s failed", interface)
        return _answer(RET_SYSTEM, "system error", None, partner)
