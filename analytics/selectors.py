"""Reads for the operator's home, the big screen and the reports: aggregates only (never raw
orders) plus the live state of connectors (Redis merged with the database).

``stations`` arguments are a Station queryset the viewer may see
(:func:`stations.selectors.stations_visible_to`); every figure is limited to it.
Amounts are Decimal yuan, energy Decimal kWh, power Decimal kW.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from stations.models import Connector, Fault, Station
from stations.selectors import connectors_state_brief

from .models import PERIODS, ConnectorHour, MemberDay, StationDay
from .services import day_bounds, operator_zone

ZERO = Decimal("0")
TOTALS = {
    "energy_kwh": Sum("energy_kwh"),
    "total_yuan": Sum("total_yuan"),
    "electricity_yuan": Sum("electricity_yuan"),
    "service_yuan": Sum("service_yuan"),
    "discount_yuan": Sum("discount_yuan"),
    "refund_yuan": Sum("refund_yuan"),
    "orders": Sum("orders"),
    "faults": Sum("faults"),
}


def local_today() -> date:
    return timezone.now().astimezone(operator_zone()).date()


def _days(stations: QuerySet[Station], start: date, end: date) -> QuerySet[StationDay]:
    return StationDay.objects.filter(day__gte=start, day__lte=end, station__in=stations)


def day_totals(stations: QuerySet[Station], day: date) -> dict:
    """``{energy_kwh, total_yuan, electricity_yuan, service_yuan, discount_yuan, refund_yuan,
    orders, faults}`` of one local day (zeros when nothing happened)."""
    row = _days(stations, day, day).aggregate(**TOTALS)
    return {k: (v if v is not None else (0 if k in ("orders", "faults") else ZERO)) for k, v in row.items()}


def daily_trend(stations: QuerySet[Station], start: date, end: date) -> list[dict]:
    """One dict per day from ``start`` to ``end`` inclusive (missing days as zeros)."""
    rows = {r["day"]: r for r in _days(stations, start, end).values("day").annotate(**TOTALS)}
    out, day = [], start
    while day <= end:
        r = rows.get(day, {})
        out.append({"day": day, "energy_kwh": r.get("energy_kwh") or ZERO, "total_yuan": r.get("total_yuan") or ZERO,
                    "orders": r.get("orders") or 0})
        day += timedelta(days=1)
    return out


def revenue_by_period(stations: QuerySet[Station], start: date, end: date) -> dict[str, dict]:
    """{period: {energy_kwh, revenue_yuan}} for sharp, peak, flat, valley."""
    sums = {}
    for p in PERIODS:
        sums[f"e_{p}"] = Sum(f"energy_{p}_kwh")
        sums[f"r_{p}"] = Sum(f"revenue_{p}_yuan")
    row = _days(stations, start, end).aggregate(**sums)
    return {p: {"energy_kwh": row[f"e_{p}"] or ZERO, "revenue_yuan": row[f"r_{p}"] or ZERO} for p in PERIODS}


def station_ranking(stations: QuerySet[Station], start: date, end: date) -> list[dict]:
    """Every visible station with its figures over the range, best revenue first
    (stations without orders included, at the bottom): ``{id, name, total_yuan, energy_kwh,
    orders, utilisation}`` (utilisation 0..1 of the connector time available)."""
    rows = {
        r["station_id"]: r
        for r in _days(stations, start, end).values("station_id").annotate(
            total=Sum("total_yuan"), energy=Sum("energy_kwh"), n=Sum("orders"),
            charging=Sum("charging_s"), offline=Sum("offline_s"))
    }
    connectors = Counter(Connector.objects.filter(pile__station__in=stations).values_list("pile__station_id", flat=True))
    days = (end - start).days + 1
    out = []
    for s in stations.values("id", "name"):
        r = rows.get(s["id"], {})
        available = connectors.get(s["id"], 0) * days * 86400 - (r.get("offline") or 0)
        out.append({
            "id": s["id"], "name": s["name"], "total_yuan": r.get("total") or ZERO,
            "energy_kwh": r.get("energy") or ZERO, "orders": r.get("n") or 0,
            "utilisation": min(1.0, (r.get("charging") or 0) / available) if available > 0 else 0.0,
        })
    out.sort(key=lambda x: (-x["total_yuan"], -x["energy_kwh"], x["id"]))
    return out


def hourly_power(stations: QuerySet[Station], day: date) -> list[dict]:
    """24 (or 23/25) entries ``{hour: local datetime, energy_kwh, power_kw}``: the energy of
    orders ending in each local hour and its average power (kWh over one hour)."""
    zone = operator_zone()
    start, end = day_bounds(day, zone)
    rows = dict(
        ConnectorHour.objects.filter(day=day, station__in=stations).values("hour")
        .annotate(e=Sum("energy_kwh")).values_list("hour", "e")
    )
    out, at = [], start
    while at < end:
        e = rows.get(at, ZERO)  # aware datetimes compare (and hash) by instant
        out.append({"hour": at.astimezone(zone), "energy_kwh": e, "power_kw": e})
        at += timedelta(hours=1)
    return out


def live_state(stations: QuerySet[Station]) -> dict:
    """The connectors' live state: ``{statuses: {status: count}, power_kw, piles, piles_online,
    stations: [{id, name, lat, lng, state, charging, total}]}``; a station's ``state`` is
    ``offline`` (no connector online), ``fault`` (any connector faulted), ``charging`` (any
    charging) or ``idle``."""
    statuses: Counter = Counter()
    power = ZERO
    per_station: dict[int, Counter] = {}
    piles, online = set(), set()
    for c in connectors_state_brief(stations):
        statuses[c["status"]] += 1
        piles.add(c["pile_id"])
        if c["pile_online"]:
            online.add(c["pile_id"])
        if c["status"] == Connector.Status.CHARGING and c["power_kw"]:
            power += c["power_kw"]
        per_station.setdefault(c["station_id"], Counter())[c["status"]] += 1
    out_stations = []
    for s in stations.values("id", "name", "latitude", "longitude"):
        counts = per_station.get(s["id"], Counter())
        total = sum(counts.values())
        if counts.get(Connector.Status.FAULT):
            state = "fault"
        elif counts.get(Connector.Status.CHARGING):
            state = "charging"
        elif total and counts.get(Connector.Status.OFFLINE, 0) == total or not total:
            state = "offline"
        else:
            state = "idle"
        out_stations.append({"id": s["id"], "name": s["name"], "lat": float(s["latitude"]),
                             "lng": float(s["longitude"]), "state": state,
                             "charging": counts.get(Connector.Status.CHARGING, 0), "total": total})
    return {"statuses": dict(statuses), "power_kw": power, "piles": len(piles),
            "piles_online": len(online), "stations": out_stations}


def power_plans(stations: QuerySet[Station]) -> list[dict]:
    """The latest power plan of each station with a power limit (load management), by
    station name: ``{station, limit_kw, total_kw, sharing, at, piles: [{pile, cap_kw,
    held_kw, weight, priority: ["svip" | "fleet" | "departure"], ok}], unserved: [pile
    code]}`` (kW as floats; ``at`` aware datetime or None before the first plan). Read
    through the stations' reverse relation ``power_plans`` (charging's ``PowerPlan``)."""
    out = []
    for station in stations.filter(max_power_kw__isnull=False).order_by("name"):
        plan = station.power_plans.first()
        rows = plan.caps if plan is not None else []
        out.append({
            "station": station.name, "limit_kw": float(station.max_power_kw),
            "total_kw": float(plan.total_kw) if plan is not None else 0.0,
            "sharing": station.power_sharing, "at": plan.at if plan is not None else None,
            "piles": [{"pile": r.get("pile"),
                       "cap_kw": float(r["cap_kw"]) if r.get("cap_kw") else None,
                       "held_kw": float(r["believed_kw"]) if r.get("believed_kw") else None,
                       "weight": float(r.get("weight") or 1), "priority": r.get("priority") or [],
                       "ok": r.get("ok") is not False} for r in rows],
            "unserved": list(plan.unserved) if plan is not None else [],
        })
    return out


def faults_open(stations: QuerySet[Station]) -> int:
    return Fault.objects.filter(pile__station__in=stations, cleared_at__isnull=True).count()


def alarms_recent(stations: QuerySet[Station], limit: int = 10) -> list[dict]:
    """Newest faults first: ``{at, station, pile, code, description, open}``."""
    rows = (Fault.objects.filter(pile__station__in=stations).order_by("-started_at")
            .values("started_at", "cleared_at", "code", "description", pile_code=F("pile__code"),
                    station_name=F("pile__station__name"))[:limit])
    return [{"at": r["started_at"], "station": r["station_name"], "pile": r["pile_code"], "code": r["code"],
             "description": r["description"], "open": r["cleared_at"] is None} for r in rows]


def members_trend(start: date, end: date) -> list[MemberDay]:
    return list(MemberDay.objects.filter(day__gte=start, day__lte=end).order_by("day"))

