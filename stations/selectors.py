"""Reads of the operator's estate: station search (list, map, nearest free connector),
details with live state merged from Redis, QR code lookup.

Units: coordinates GCJ-02 degrees, distances metres (int in results), prices yuan/kWh
(Decimal, electricity + service, null without today's tariff). Distance and today's price
are computed in SQL so sorting, filtering and paging work on the database at 10,000+
stations: a bounding box on the (latitude, longitude) index narrows the rows, haversine
orders them. No PostGIS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.db import connection
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from . import live
from .models import Connector, Fault, Pile, Station

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MAX_RADIUS_M = 50_000
DEFAULT_RADIUS_M = 10_000
MAP_MAX_PINS = 500
RECOMMEND_RADIUS_M = 30_000
FREE_STATUSES = (Connector.Status.IDLE, Connector.Status.PLUGGED)
DC_TYPES = (Connector.Type.DC,)
SORTS = ("distance", "price", "available")


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres between two GCJ-02 points (same formula as SQL)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(
        math.radians(lng2 - lng1) / 2
    ) ** 2
    return EARTH_RADIUS_M * 2 * math.asin(math.sqrt(a))


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lng, max_lng) enclosing the circle, slightly generous."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.001
    coslat = max(math.cos(math.radians(lat)), 0.01)
    dlng = min(dlat / coslat, 180.0)
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng


def _distance_sql(table: str, lat: float, lng: float) -> RawSQL:
    t = f'"{table}"'
    return RawSQL(
        f"(%s * 2 * asin(sqrt(power(sin(radians({t}.latitude::float8 - %s) / 2), 2)"
        f" + cos(radians(%s)) * cos(radians({t}.latitude::float8))"
        f" * power(sin(radians({t}.longitude::float8 - %s) / 2), 2))))",
        (EARTH_RADIUS_M, lat, lat, lng),
    )


def _price_now_sql(table: str, now: datetime) -> RawSQL:
    """Today's price (yuan/kWh) now: the current local half-hour slot of price_today when
    its date is today in the station's own time zone, else NULL (also for a bad value)."""
    t = f'"{table}"'
    local = f"(%s::timestamptz AT TIME ZONE {t}.time_zone)"
    slot = (
        f"({t}.price_today -> 'slots' ->> "
        f"((extract(hour from {local})::int * 2) + (extract(minute from {local})::int / 30)))"
    )
    return RawSQL(
        f"CASE WHEN {t}.price_today ->> 'date' = to_char({local}, 'YYYY-MM-DD')"
        f" AND {slot} ~ '^[0-9]+(\\.[0-9]+)?$' THEN ({slot})::numeric END",
        (now, now, now, now, now),
    )


def _with_counts(qs: QuerySet[Station]) -> QuerySet[Station]:
    """Annotate connector counts: ac_total, ac_free, dc_total, dc_free, free, total.

    Free = idle or plugged, on an enabled pile that is online.
    """
    conn = "piles__connectors"
    free = Q(
        piles__connectors__status__in=FREE_STATUSES, piles__online=True, piles__enabled=True
    )
    dc = Q(piles__connectors__connector_type__in=DC_TYPES)
    return qs.annotate(
        total=Count(conn),
        free=Count(conn, filter=free),
        dc_total=Count(conn, filter=dc),
        dc_free=Count(conn, filter=dc & free),
    ).annotate(ac_total=F("total") - F("dc_total"), ac_free=F("free") - F("dc_free"))


@dataclass(frozen=True)
class StationSearch:
    """Search parameters: ``lat``/``lng`` GCJ-02 degrees (both or neither), ``radius_m``
    metres (≤ MAX_RADIUS_M; only with a location), ``sort`` one of SORTS, ``kind``
    "ac"/"dc"/None (stations having such connectors), ``available`` only stations with a
    free connector (of ``kind`` when given), ``city`` exact, ``q`` in name or address."""

    lat: float | None = None
    lng: float | None = None
    radius_m: int = DEFAULT_RADIUS_M
    sort: str = "distance"
    kind: str | None = None
    available: bool = False
    city: str = ""
    q: str = ""


def station_search(params: StationSearch, *, now: datetime | None = None) -> QuerySet[Station]:
    """Stations matching ``params``, annotated with ``distance`` (m, float, None without a
    location), ``price_now`` (Decimal yuan/kWh or None) and the counts of ``_with_counts``,
    ordered by ``params.sort`` (ties by distance, then id). The counts are annotated only
    when a filter or the sort needs them: call ``station_counts_attach`` on the page.
    Raises ValueError for a sort by distance without a location."""
    now = now or datetime.now(UTC)
    table = Station._meta.db_table
    qs = Station.objects.all()
    has_location = params.lat is not None and params.lng is not None
    if has_location:
        min_lat, max_lat, min_lng, max_lng = bounding_box(params.lat, params.lng, params.radius_m)
        qs = qs.filter(
            latitude__gte=min_lat, latitude__lte=max_lat, longitude__gte=min_lng, longitude__lte=max_lng
        ).annotate(distance=_distance_sql(table, params.lat, params.lng))
        qs = qs.filter(distance__lte=params.radius_m)
    elif params.sort == "distance":
        raise ValueError("sorting by distance needs a location")
    if params.city:
        qs = qs.filter(city=params.city)
    if params.q:
        qs = qs.filter(Q(name__icontains=params.q) | Q(address__icontains=params.q))
    qs = qs.annotate(price_now=_price_now_sql(table, now))
    if params.kind or params.available or params.sort == "available":
        # Filtering or sorting by them: counts in SQL. Otherwise the page gets them after
        # paging (station_counts_attach), which keeps the query on the station rows only.
        qs = _with_counts(qs)
    if params.kind == "dc":
        qs = qs.filter(dc_total__gt=0)
    elif params.kind == "ac":
        qs = qs.filter(ac_total__gt=0)
    if params.available:
        free_field = {"dc": "dc_free", "ac": "ac_free"}.get(params.kind or "", "free")
        qs = qs.filter(**{f"{free_field}__gt": 0}, status=Station.Status.OPERATING)
    tail = ["distance", "id"] if has_location else ["name", "id"]
    if params.sort == "price":
        order = [F("price_now").asc(nulls_last=True), *tail]
    elif params.sort == "available":
        free_field = {"dc": "dc_free", "ac": "ac_free"}.get(params.kind or "", "free")
        order = [F(free_field).desc(), *tail]
    else:
        order = tail
    return qs.order_by(*order)


def station_counts_attach(stations: list[Station]) -> list[Station]:
    """Set the counts of ``_with_counts`` on stations that lack them, in one query."""
    missing = [s for s in stations if not hasattr(s, "free")]
    if not missing:
        return stations
    counts = {
        row["pk"]: row
        for row in _with_counts(Station.objects.filter(pk__in=[s.pk for s in missing])).values(
            "pk", "total", "free", "dc_total", "dc_free", "ac_total", "ac_free"
        )
    }
    for s in missing:
        row = counts[s.pk]
        for key in ("total", "free", "dc_total", "dc_free", "ac_total", "ac_free"):
            setattr(s, key, row[key])
    return stations


def station_search_count(params: StationSearch) -> int:
    """How many stations ``station_search`` returns — without the price and, unless a
    filter needs them, the connector counts (a cheaper query for paging)."""
    if params.kind or params.available:
        return station_search(params).count()
    qs = Station.objects.all()
    if params.lat is not None and params.lng is not None:
        min_lat, max_lat, min_lng, max_lng = bounding_box(params.lat, params.lng, params.radius_m)
        qs = qs.filter(
            latitude__gte=min_lat, latitude__lte=max_lat, longitude__gte=min_lng, longitude__lte=max_lng
        ).annotate(distance=_distance_sql(Station._meta.db_table, params.lat, params.lng))
        qs = qs.filter(distance__lte=params.radius_m)
    if params.city:
        qs = qs.filter(city=params.city)
    if params.q:
        qs = qs.filter(Q(name__icontains=params.q) | Q(address__icontains=params.q))
    return qs.count()


def station_map_pins(
    *, min_lng: float, min_lat: float, max_lng: float, max_lat: float, limit: int | None = None
) -> tuple[list[dict], bool]:
    """Pins inside the box: ``[{id, lat, lng, free, total, status}]`` (lat/lng floats, status
    the CEC station status code), at most ``limit`` (default MAP_MAX_PINS); and whether
    more were left out."""
    limit = limit or MAP_MAX_PINS
    qs = Station.objects.filter(
        latitude__gte=min_lat, latitude__lte=max_lat, longitude__gte=min_lng, longitude__lte=max_lng
    )
    conn = "piles__connectors"
    free = Q(piles__connectors__status__in=FREE_STATUSES, piles__online=True, piles__enabled=True)
    rows = list(
        qs.annotate(total=Count(conn), free=Count(conn, filter=free))
        .order_by("id")
        .values("id", "latitude", "longitude", "total", "free", "status")[: limit + 1]
    )
    pins = [
        {
            "id": r["id"],
            "lat": float(r["latitude"]),
            "lng": float(r["longitude"]),
            "free": r["free"],
            "total": r["total"],
            "status": r["status"],
        }
        for r in rows[:limit]
    ]
    return pins, len(rows) > limit


def station_price_now(station: Station, *, now: datetime | None = None) -> Decimal | None:
    """Today's price now (yuan/kWh) from ``price_today``, or None (Python twin of the SQL)."""
    from zoneinfo import ZoneInfo

    data = station.price_today or {}
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(station.time_zone))
    if data.get("date") != local.date().isoformat():
        return None
    try:
        return Decimal(str(data["slots"][local.hour * 2 + local.minute // 30]))
    except (KeyError, IndexError, TypeError, InvalidOperation):
        return None


def station_get(*, station_id: int) -> Station | None:
    """A station with its piles and their connectors (prefetched, in order), or None."""
    piles = Pile.objects.order_by("code").prefetch_related(
        Prefetch("connectors", queryset=Connector.objects.order_by("number"))
    )
    return (
        Station.objects.prefetch_related(Prefetch("piles", queryset=piles))
        .filter(pk=station_id)
        .first()
    )


def _num(value: str | None):
    if value in (None, ""):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def connectors_live(connectors: list[Connector]) -> dict[int, dict]:
    """Live state per connector id, the database merged with Redis in one round trip:
    ``{status, power_kw, voltage_v, current_a, soc_percent, updated}`` (Decimals, None when
    unknown; ``updated`` a UTC datetime). A connector of an offline pile is ``offline``;
    otherwise the newer of the Redis and database statuses wins. Connectors must have
    ``pile`` loaded."""
    values = live.connectors_get(
        connection.schema_name, [(c.pile.code, c.number) for c in connectors]
    )
    out = {}
    for c in connectors:
        v = values.get((c.pile.code, c.number), {})
        updated = None
        if v.get("updated"):
            try:
                updated = datetime.fromisoformat(v["updated"])
            except ValueError:
                updated = None
        status = c.status
        live_status = v.get("status")
        if live_status in Connector.Status.values and (
            c.status_changed_at is None or (updated is not None and updated >= c.status_changed_at)
        ):
            status = live_status
        if not c.pile.online:
            status = Connector.Status.OFFLINE
        soc = _num(v.get("soc_percent"))
        out[c.pk] = {
            "status": status,
            "power_kw": _num(v.get("power_kw")),
            "voltage_v": _num(v.get("voltage_v")),
            "current_a": _num(v.get("current_a")),
            "soc_percent": int(soc) if soc is not None else None,
            "updated": updated or c.status_changed_at,
        }
    return out


def piles_last_seen(codes: list[str]) -> dict[str, datetime]:
    """Last frame time (UTC) per pile code from Redis, one round trip; missing ones absent."""
    if not codes:
        return {}
    scores = live.client().zmscore(live.seen_key(connection.schema_name), codes)
    return {c: datetime.fromtimestamp(s, UTC) for c, s in zip(codes, scores, strict=True) if s}


def connector_get_by_code(code: str) -> Connector | None:
    """What a QR scan resolves to: the connector whose ``qr_code`` is ``code``, else the one
    whose connector code (14-digit pile code + 2-digit number) it is; with pile and
    station loaded."""
    qs = Connector.objects.select_related("pile__station")
    found = qs.filter(qr_code=code).first()
    if found is None and len(code) == 16 and code.isdigit():
        found = qs.filter(pile__code=code[:14], number=int(code[14:])).first()
    return found


def member_usual_connector_type(member) -> str | None:
    """The kind ("ac"/"dc") a member usually charges with, or None when unknown.

    Hook for charging orders (not there yet): always None for now.
    """
    return None


def connectors_nearest_free(
    *, lat: float, lng: float, prefer: str | None = None, limit: int = 5,
    radius_m: int = RECOMMEND_RADIUS_M,
) -> list[Connector]:
    """Free connectors (idle or plugged, pile online and enabled, station operating) within
    ``radius_m`` metres, nearest first; connectors of kind ``prefer`` ("ac"/"dc") before the
    others. Each has ``distance`` (m) and ``live`` (see ``connectors_live``); connectors
    whose fresher Redis status says busy are dropped."""
    table = Station._meta.db_table
    min_lat, max_lat, min_lng, max_lng = bounding_box(lat, lng, radius_m)
    qs = (
        Connector.objects.select_related("pile__station")
        .filter(
            status__in=FREE_STATUSES,
            pile__online=True,
            pile__enabled=True,
            pile__station__status=Station.Status.OPERATING,
            pile__station__latitude__gte=min_lat,
            pile__station__latitude__lte=max_lat,
            pile__station__longitude__gte=min_lng,
            pile__station__longitude__lte=max_lng,
        )
        .annotate(distance=_distance_sql(table, lat, lng))
        .filter(distance__lte=radius_m)
    )
    order = ["distance", "id"]
    if prefer in ("ac", "dc"):
        kind_sql = RawSQL(
            f'CASE WHEN "{Connector._meta.db_table}".connector_type = %s THEN 1 ELSE 0 END',
            (Connector.Type.DC,),
        )
        qs = qs.annotate(is_dc=kind_sql)
        order = ["-is_dc" if prefer == "dc" else "is_dc", *order]
    candidates = list(qs.order_by(*order)[: limit * 4])
    states = connectors_live(candidates)
    out = []
    for c in candidates:
        if states[c.pk]["status"] in FREE_STATUSES:
            c.live = states[c.pk]
            out.append(c)
    return out[:limit]


def faults_open(*, pile: Pile) -> QuerySet[Fault]:
    return Fault.objects.filter(pile=pile, cleared_at__isnull=True)


def stations_visible_to(user) -> QuerySet[Station]:
    """Stations a staff user may see in the admin: all for operator admins (superusers),
    only the ones they own for station owners."""
    if sees_all_stations(user):
        return Station.objects.all()
    return Station.objects.filter(owners=user)


def sees_all_stations(user) -> bool:
    from accounts.roles import OPERATOR_ADMIN, ROLE_NAMES

    return bool(
        user.is_active
        and (user.is_superuser or user.groups.filter(name=ROLE_NAMES[OPERATOR_ADMIN]).exists())
    )
