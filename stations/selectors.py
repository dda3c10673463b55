"""Reads of the operator's estate: station search (list, map, nearest free connector),
details with live state merged from Redis, QR code lookup.

Units: coordinates GCJ-02 degrees, distances metres (int in results), prices yuan/kWh
(Decimal, electricity + service, null without today's tariff). The driver's list and map
(``station_page``, ``station_map_pins``) are computed in Python from an in-process
snapshot of the operator's stations (``stations.snapshot``: one query when it is
rebuilt, a coarse grid over the coordinates, haversine distances) and the connectors'
live statuses (mirrored in process from Redis, ``stations.statusfeed``), so a request
costs no SQL and one Redis round trip. No PostGIS.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from . import live, snapshot
from .models import Connector, Fault, PartnerConnector, PartnerStation, Pile, Station

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MAX_RADIUS_M = 50_000
DEFAULT_RADIUS_M = 10_000
MAP_MAX_PINS = 500
RECOMMEND_RADIUS_M = 30_000
FREE_STATUSES = snapshot.FREE_STATUSES  # idle or plugged
DC_TYPES = snapshot.DC_TYPES
_STATUS_VALUES = frozenset(Connector.Status.values)
_FREE_VALUES = frozenset(str(v) for v in FREE_STATUSES)
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


@dataclass(frozen=True)
class StationPage:
    """One page of ``station_page``: ``total`` stations match; ``rows`` are this page's,
    each ``{id, name, address, city, lat, lng, distance, price_now, connectors, status}``
    — ``lat``/``lng`` float degrees, ``distance`` int metres (None without a location),
    ``price_now`` Decimal yuan/kWh (None without today's prices), ``connectors``
    ``{"ac": {"free", "total"}, "dc": {"free", "total"}}``, ``status`` CEC StationStatus."""

    total: int
    rows: list[dict]


def _local_slots(now: datetime):
    """Per time zone name: (local ISO date, half-hour slot index) of ``now``, memoized for
    one request."""
    from zoneinfo import ZoneInfo

    memo: dict[str, tuple[str, int]] = {}

    def local(tz: str) -> tuple[str, int]:
        found = memo.get(tz)
        if found is None:
            t = now.astimezone(ZoneInfo(tz))
            found = memo[tz] = (t.date().isoformat(), t.hour * 2 + t.minute // 30)
        return found

    return local


def _snap_price_now(s: snapshot.SnapStation, local) -> Decimal | None:
    """Today's price now of a snapshot station (as ``station_price_now``), or None."""
    if s.price_slots is None:
        return None
    date, slot = local(s.time_zone)
    if s.price_date != date or slot >= len(s.price_slots):
        return None
    return s.price_slots[slot]


def station_page(
    params: StationSearch, *, limit: int, offset: int = 0, now: datetime | None = None
) -> StationPage:
    """The driver's station list: one page of the stations matching ``params`` and how
    many match, computed in Python from the operator's station snapshot
    (``stations.snapshot``: no SQL unless it is rebuilt), with the live connector statuses
    and the snapshot's generation read from Redis in ONE round trip.

    Matching: with a location, the stations in the circle's bounding box (the snapshot's
    grid) within ``radius_m`` haversine metres; ``city`` exact; ``q`` in name or address,
    case-insensitive; ``kind`` stations having such connectors; ``available`` operating
    stations with a free connector (of ``kind`` when given). Order: ``distance`` by
    distance then id; ``price`` price now ascending, unknown last, then distance/id;
    ``available`` free connectors descending, then distance/id; without a location by name
    then id (code points, as the database's C collation).

    The page's counts use each connector's live status from Redis when it is newer than
    the database's (see ``connectors_live``; a connector of an offline or disabled pile is
    never free), so a status change the gateway has written to Redis is visible at once.
    Filters and the ``available`` sort use the database's status, which the gateway
    updates on every change (and every such write renews the snapshot).

    Raises ValueError for a sort by distance without a location.
    """
    now = now or datetime.now(UTC)
    has_location = params.lat is not None and params.lng is not None
    if params.sort == "distance" and not has_location:
        raise ValueError("sorting by distance needs a location")
    local = _local_slots(now)
    operating = int(Station.Status.OPERATING)
    q = params.q.upper()
    kind = params.kind

    def free_of(s: snapshot.SnapStation) -> int:
        if kind == "dc":
            return s.dc_free
        if kind == "ac":
            return s.free - s.dc_free
        return s.free

    def wanted(s: snapshot.SnapStation) -> bool:
        return ((not params.city or s.city == params.city)
                and (not q or q in s.name_upper or q in s.address_upper)
                and (kind != "dc" or s.dc_total > 0)
                and (kind != "ac" or s.total - s.dc_total > 0)
                and (not params.available or (s.status == operating and free_of(s) > 0)))

    filtered = bool(params.city or q or kind or params.available)
    end = offset + max(limit, 0)

    def compute(snap: snapshot.Snapshot):
        if not has_location:
            hits = [s for s in snap.by_rank if wanted(s)] if filtered else snap.by_rank  # by name, id
            if params.sort == "price":
                hits = sorted(hits, key=lambda s: (*_price_key(_snap_price_now(s, local)), s.rank))
            elif params.sort == "available":
                hits = sorted(hits, key=lambda s: (-free_of(s), s.rank))
            page = [(s, None) for s in hits[offset:end]]
            return (len(hits), page), [s for s, _ in page]
        # Haversine's ``a`` (0..1) grows with the distance, so the circle is a <= a_max
        # and nearer is smaller a: the distance itself is computed for the page only.
        lat_r, lng_r = math.radians(params.lat), math.radians(params.lng)
        cos_p = math.cos(lat_r)
        a_max = math.sin(params.radius_m / (2 * EARTH_RADIUS_M)) ** 2
        sin = math.sin
        candidates = snap.near(*bounding_box(params.lat, params.lng, params.radius_m))
        if filtered:
            candidates = [s for s in candidates if wanted(s)]
        hits = [(a, s.id, s) for s in candidates
                if (a := sin((s.lat_r - lat_r) * 0.5) ** 2
                    + cos_p * s.cos_lat * sin((s.lng_r - lng_r) * 0.5) ** 2) <= a_max]
        if params.sort == "price":
            ranked = heapq.nsmallest(end, hits, key=lambda h: (
                *_price_key(_snap_price_now(h[2], local)), h[0], h[1]))
        elif params.sort == "available":
            ranked = heapq.nsmallest(end, hits, key=lambda h: (-free_of(h[2]), h[0], h[1]))
        else:
            ranked = heapq.nsmallest(end, hits)  # by distance, then id
        page = [(s, 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0))))
                for a, _id, s in ranked[offset:end]]
        return (len(hits), page), [s for s, _ in page]

    (total, page), live_status = snapshot.read(compute)
    counts = _live_counts([s for s, _ in page], live_status)
    rows = [
        {
            "id": s.id, "name": s.name, "address": s.address, "city": s.city,
            "lat": s.lat, "lng": s.lng,
            "distance": round(distance) if distance is not None else None,
            "price_now": _snap_price_now(s, local),
            "connectors": {"ac": {"free": c[0], "total": c[1]}, "dc": {"free": c[2], "total": c[3]}},
            "status": s.status,
        }
        for (s, distance), c in zip(page, counts, strict=True)
    ]
    return StationPage(total=total, rows=rows)


def _price_key(price: Decimal | None) -> tuple[bool, Decimal | int]:
    """Ascending price, unknown last."""
    return (price is None, price if price is not None else 0)


def _live_counts(stations: list[snapshot.SnapStation],
                 live_status: snapshot.LiveStatus) -> list[tuple[int, int, int, int]]:
    """(ac_free, ac_total, dc_free, dc_total) per station, each connector's status the
    newer of the database's (in the snapshot) and the live one (``live_status(live id)``:
    ``(status, updated epoch seconds)`` or None, see ``snapshot.read``). The snapshot's
    counts (by the database's statuses) are corrected where a live status wins."""
    out = []
    for s in stations:
        free, dc_free = s.free, s.dc_free
        for live_id, db_status, changed, is_dc, usable in s.connectors:
            found = live_status(live_id)
            if found is None or not usable:
                continue
            status, at = found
            if (status == db_status or status not in _STATUS_VALUES
                    or not (changed is None or (at is not None and at >= changed))):
                continue  # the database's status stands (the newer one wins)
            delta = (status in _FREE_VALUES) - (db_status in _FREE_VALUES)
            if delta:
                free += delta
                dc_free += delta if is_dc else 0
        out.append((free - dc_free, s.total - s.dc_total, dc_free, s.dc_total))
    return out


def _station_pins(*, min_lng: float, min_lat: float, max_lng: float, max_lat: float,
                  limit: int) -> tuple[list[dict], bool, bool]:
    """``station_map_pins``, and whether the operator has any partner station."""

    def compute(snap: snapshot.Snapshot):
        found = snap.in_box(min_lat, max_lat, min_lng, max_lng)
        shown = found[:limit]
        return (shown, len(found) > limit, snap.has_partners), shown

    (shown, truncated, has_partners), live_status = snapshot.read(compute)
    counts = _live_counts(shown, live_status)
    pins = [
        {"id": s.id, "lat": s.lat, "lng": s.lng, "free": c[0] + c[2], "total": c[1] + c[3], "status": s.status}
        for s, c in zip(shown, counts, strict=True)
    ]
    return pins, truncated, has_partners


def station_map_pins(
    *, min_lng: float, min_lat: float, max_lng: float, max_lat: float, limit: int | None = None
) -> tuple[list[dict], bool]:
    """Pins inside the box: ``[{id, lat, lng, free, total, status}]`` (lat/lng floats, status
    the CEC station status code), at most ``limit`` (default MAP_MAX_PINS), by id; and
    whether more were left out. From the station snapshot, free counts with the live
    statuses (one Redis round trip) as ``station_page`` does."""
    pins, truncated, _ = _station_pins(min_lng=min_lng, min_lat=min_lat, max_lng=max_lng,
                                       max_lat=max_lat, limit=limit or MAP_MAX_PINS)
    return pins, truncated


def map_pins(
    *, min_lng: float, min_lat: float, max_lng: float, max_lat: float
) -> tuple[list[dict], bool]:
    """The driver's map: ``station_map_pins`` and then, within MAP_MAX_PINS in all, the
    interconnection partners' pins (``partner_map_pins``, marked ``partner: true``; their
    SQL only when the operator has partner stations); and whether pins were left out."""
    box = {"min_lng": min_lng, "min_lat": min_lat, "max_lng": max_lng, "max_lat": max_lat}
    pins, truncated, has_partners = _station_pins(**box, limit=MAP_MAX_PINS)
    room = MAP_MAX_PINS - len(pins)
    if room > 0 and has_partners:
        partner_pins = partner_map_pins(**box, limit=room + 1)
        truncated = truncated or len(partner_pins) > room
        pins += partner_pins[:room]
    return pins, truncated


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
    known = set(Connector.Status.values)
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
        if live_status in known and (
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


def connectors_state_brief(stations) -> list[dict]:
    """Every connector of ``stations`` (a Station queryset) with its live status by the same
    rule as :func:`connectors_live`, for dashboards over thousands of connectors: ``{id,
    station_id, pile_id, pile_online, status, power_kw}`` (``power_kw`` Decimal for a
    charging connector that reported one, else None). Two Redis commands whatever the
    count: the statuses in one script, then the power of the charging ones."""
    rows = list(Connector.objects.filter(pile__station__in=stations).values(
        "id", "number", "status", "status_changed_at", "pile_id", "pile__code", "pile__online",
        "pile__station_id"))
    schema = connection.schema_name
    states = live.connectors_status(schema, [f"{r['pile__code']}:{r['number']}" for r in rows])
    known = set(Connector.Status.values)
    out = []
    for r, (live_status, updated) in zip(rows, states, strict=True):
        status = r["status"]
        at = live.updated_epoch(updated)
        changed = r["status_changed_at"]
        if live_status in known and (changed is None or (at is not None and at >= changed.timestamp())):
            status = live_status
        if not r["pile__online"]:
            status = Connector.Status.OFFLINE
        out.append({"id": r["id"], "station_id": r["pile__station_id"], "pile_id": r["pile_id"],
                    "pile_online": r["pile__online"], "status": status, "power_kw": None,
                    "_key": (r["pile__code"], r["number"])})
    charging = [o for o in out if o["status"] == Connector.Status.CHARGING]
    if charging:
        pipe = live.client().pipeline(transaction=False)
        for o in charging:
            pipe.hget(live.connector_key(schema, *o["_key"]), "power_kw")
        for o, value in zip(charging, pipe.execute(), strict=True):
            o["power_kw"] = _num(value)
    for o in out:
        del o["_key"]
    return out


def piles_last_seen(codes: list[str]) -> dict[str, datetime]:
    """Last frame time (UTC) per pile code from Redis, one round trip; missing ones absent."""
    if not codes:
        return {}
    scores = live.client().zmscore(live.seen_key(connection.schema_name), codes)
    return {c: datetime.fromtimestamp(s, UTC) for c, s in zip(codes, scores, strict=True) if s}


def connector_get(pk: int) -> Connector | None:
    """The connector ``pk`` with pile and station loaded, None if there is none."""
    return Connector.objects.select_related("pile__station").filter(pk=pk).first()


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


# --- partner stations (interconnection: our members charge on partners' piles) ---------

PARTNER_ROWS_MAX = 50


def partner_station_row(station: PartnerStation, distance_m: float | None = None) -> dict:
    """A partner station as search, map and detail show it: ``partner: true`` marks it;
    ``free``/``total`` count its connectors (idle / all)."""
    connectors = list(station.connectors.all())
    return {
        "id": station.pk, "partner": True, "partner_name": station.partner_name,
        "name": station.name, "address": station.address,
        "lat": float(station.latitude) if station.latitude is not None else None,
        "lng": float(station.longitude) if station.longitude is not None else None,
        "distance": round(distance_m) if distance_m is not None else None,
        "status": station.status, "prices": station.price_note,
        "free": sum(1 for c in connectors if c.status == Connector.Status.IDLE),
        "total": len(connectors),
    }


def partner_stations_near(*, lat: float | None, lng: float | None, radius_m: float,
                          q: str = "", limit: int = PARTNER_ROWS_MAX) -> list[dict]:
    """Partner stations within ``radius_m`` metres of (lat, lng), nearest first (without
    a point: by name); ``q`` filters by name or address. At most ``limit`` rows."""
    stations = PartnerStation.objects.prefetch_related("connectors")
    if q:
        stations = stations.filter(Q(name__icontains=q) | Q(address__icontains=q))
    if lat is None or lng is None:
        return [partner_station_row(s) for s in stations.order_by("name")[:limit]]
    min_lat, max_lat, min_lng, max_lng = bounding_box(lat, lng, radius_m)
    found = []
    for s in stations.filter(latitude__range=(min_lat, max_lat), longitude__range=(min_lng, max_lng)):
        distance = haversine_m(lat, lng, float(s.latitude), float(s.longitude))
        if distance <= radius_m:
            found.append((distance, s))
    found.sort(key=lambda pair: pair[0])
    return [partner_station_row(s, d) for d, s in found[:limit]]


def partner_map_pins(*, min_lng: float, min_lat: float, max_lng: float, max_lat: float,
                     limit: int = MAP_MAX_PINS) -> list[dict]:
    """Partner stations' pins inside the box (as :func:`station_map_pins`, ``partner``
    true; ``free``/``total`` as :func:`partner_station_row` counts them), at most
    ``limit``, by id. One SQL statement: the map asks on every request, mostly of
    operators with no partner at all, and a queryset with its prefetch cost the map
    request a fifth of its CPU to compile."""
    quote = connection.ops.quote_name
    sql = f"""
        SELECT s.id, s.latitude::float8, s.longitude::float8,
               count(c.id) FILTER (WHERE c.status = %(idle)s), count(c.id), s.status
        FROM {quote(PartnerStation._meta.db_table)} s
             LEFT JOIN {quote(PartnerConnector._meta.db_table)} c ON c.station_id = s.id
        WHERE s.latitude BETWEEN %(min_lat)s AND %(max_lat)s
          AND s.longitude BETWEEN %(min_lng)s AND %(max_lng)s
        GROUP BY s.id ORDER BY s.id LIMIT %(limit)s
    """
    args = {"idle": str(Connector.Status.IDLE), "min_lat": min_lat, "max_lat": max_lat,
            "min_lng": min_lng, "max_lng": max_lng, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        rows = cursor.fetchall()
    return [{"id": r[0], "lat": r[1], "lng": r[2], "free": r[3], "total": r[4], "status": r[5],
             "partner": True} for r in rows]


def partner_station_get(*, station_id: int) -> PartnerStation | None:
    return PartnerStation.objects.prefetch_related("connectors").filter(pk=station_id).first()


def partner_connector_get(pk: int) -> PartnerConnector | None:
    return PartnerConnector.objects.select_related("station").filter(pk=pk).first()
