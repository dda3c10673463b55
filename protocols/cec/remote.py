"""Infrastructure partners' stations (where our members could charge): pulled with
``query_stations_info`` and ``query_station_status``, kept live by the partner's
``notification_stationStatus``.

:func:`stations_pull` raises ``client.CallFailed`` when the partner cannot be reached or
answers with a ``Ret`` other than 0 (the beat job logs it and tries again next time).
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from . import client
from .models import Partner, RemoteConnector, RemoteStation

logger = logging.getLogger(__name__)

MAX_PAGES = 200


def _call(partner: Partner, interface: str, data: dict) -> dict:
    reply = client.call(partner, interface, data)
    if reply.ret != 0 or not isinstance(reply.data, dict):
        raise client.CallFailed(f"{interface}: Ret {reply.ret} {reply.msg}", reply.request, reply.response)
    return reply.data


def _dec(value, default=None):
    try:
        return Decimal(str(value)) if value not in (None, "") else default
    except InvalidOperation:
        return default


def stations_pull(*, partner: Partner) -> int:
    """Pull every station of ``partner`` (all pages) and its connectors' status; stations it
    no longer lists are removed. Returns the number of stations."""
    infos: list[dict] = []
    page, pages = 1, 1
    while page <= pages and page <= MAX_PAGES:
        data = _call(partner, "query_stations_info", {"PageNo": page, "PageSize": 50})
        infos += [i for i in data.get("StationInfos") or [] if isinstance(i, dict) and i.get("StationID")]
        pages = int(data.get("PageCount") or 1)
        page += 1
    statuses: dict[str, int] = {}
    ids = [str(i["StationID"]) for i in infos]
    for start in range(0, len(ids), 50):
        data = _call(partner, "query_station_status", {"StationIDs": ids[start:start + 50]})
        for station in data.get("StationStatusInfos") or []:
            for c in station.get("ConnectorStatusInfos") or []:
                statuses[str(c.get("ConnectorID"))] = int(c.get("Status") or 0)
    now = timezone.now()
    with transaction.atomic():
        keep = []
        for info in infos:
            station, _created = RemoteStation.objects.update_or_create(
                partner=partner, station_id=str(info["StationID"])[:20], defaults={
                    "name": str(info.get("StationName") or "")[:100],
                    "address": str(info.get("Address") or "")[:200],
                    "latitude": _dec(info.get("StationLat")), "longitude": _dec(info.get("StationLng")),
                    "status": int(info.get("StationStatus") or 0),
                    "price_note": str(info.get("ElectricityFee") or "")[:256],
                    "info": info, "pulled_at": now,
                })
            keep.append(station.pk)
            seen = []
            for equipment in info.get("EquipmentInfos") or []:
                for c in equipment.get("ConnectorInfos") or []:
                    cid = str(c.get("ConnectorID") or "")[:50]
                    if not cid:
                        continue
                    RemoteConnector.objects.update_or_create(partner=partner, connector_id=cid, defaults={
                        "station": station, "equipment_id": str(equipment.get("EquipmentID") or "")[:50],
                        "connector_type": int(c.get("ConnectorType") or 0),
                        "power_kw": _dec(c.get("Power"), Decimal(0)),
                        "status": statuses.get(cid, 0), "status_at": now,
                    })
                    seen.append(cid)
            station.connectors.exclude(connector_id__in=seen).delete()
        RemoteStation.objects.filter(partner=partner).exclude(pk__in=keep).delete()
    return len(infos)


def connector_status_save(*, partner: Partner, info: dict) -> bool:
    """A partner's ``notification_stationStatus``: the connector's new status. False when
    the connector is unknown (the partner is told to ignore: Status 1)."""
    try:
        cid, status = str(info["ConnectorID"]), int(info["Status"])
    except (KeyError, TypeError, ValueError):
        return False
    return bool(RemoteConnector.objects.filter(partner=partner, connector_id=cid)
                .update(status=status, status_at=timezone.now()))
