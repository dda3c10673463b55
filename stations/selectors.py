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
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from . import live
from .models import Connector, Fault, PartnerConnector, PartnerStation, Pile, Station

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MAX_RADIUS_M = 50_000
DEFAULT_RADIUS_M = 10_000
MAP_MAX_PINS = 500
RECOMMEND_RADIUS_M = 30_000
FREE_STATUSES = (Connector.Status.IDLE, Connector.Status.PLUGGED)
DC_TYPES = (Connector.Type.DC,)
_STATUS_VALUES = frozenset(Connector.Status.values)
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


# The connectors of one station as one string: per connector (ordered by pile, number)
# "pile_code:number", status, epoch seconds of the status change (or empty), 1 if DC, 1 if
# the pile is online and enabled — fields separated by US (0x1f), connectors by RS (0x1e).
# What the live merge needs, aggregated by PostgreSQL so the page is one statement, and
# cheaper to split than JSON to decode (a map has up to 2,000 connectors).
_CONNECTORS = """
    SELECT string_agg(concat_ws(chr(31), p.code || ':' || c.number, c.status,
                                coalesce(extract(epoch FROM c.status_changed_at)::float8::text, ''),
                                (c.connector_type = ANY(%(dc_types)s))::int, (p.online AND p.enabled)::int),
                      chr(30) ORDER BY p.id, c.number)
    FROM {pile} p JOIN {connector} c ON c.pile_id = p.id
    WHERE p.station_id = {station_id}
"""

# Connector counts per station from the database's statuses (free = idle or plugged on an
# online, enabled pile) — only where a filter or the sort needs them for every match.
_COUNTS = """
    SELECT count(*) AS total,
           count(*) FILTER (WHERE c.status = ANY(%(free)s) AND p.online AND p.enabled) AS free,
           count(*) FILTER (WHERE c.connector_type = ANY(%(dc_types)s)) AS dc_total,
           count(*) FILTER (WHERE c.connector_type = ANY(%(dc_types)s)
                            AND c.status = ANY(%(free)s) AND p.online AND p.enabled) AS dc_free
    FROM {pile} p JOIN {connector} c ON c.pile_id = p.id
    WHERE p.station_id = s.id
"""

_DISTANCE = (
    "(%(earth_r)s * 2 * asin(sqrt(power(sin(radians(s.latitude::float8 - %(lat)s) / 2), 2)"
    " + cos(radians(%(lat)s)) * cos(radians(s.latitude::float8))"
    " * power(sin(radians(s.longitude::float8 - %(lng)s) / 2), 2))))"
)

# Today's price now: the current local half-hour slot of price_today when its date is
# today in the station's own time zone, else NULL (also for a malformed value).
_LOCAL_NOW = "(%(now)s::timestamptz AT TIME ZONE s.time_zone)"
_SLOT = (
    f"(s.price_today -> 'slots' ->> ((extract(hour from {_LOCAL_NOW})::int * 2)"
    f" + (extract(minute from {_LOCAL_NOW})::int / 30)))"
)
_PRICE_NOW = (
    f"CASE WHEN s.price_today ->> 'date' = to_char({_LOCAL_NOW}, 'YYYY-MM-DD')"
    f" AND {_SLOT} ~ '^[0-9]+(\\.[0-9]+)?$' THEN ({_SLOT})::numeric END"
)


def _tables() -> dict[str, str]:
    return {
        "station": connection.ops.quote_name(Station._meta.db_table),
        "pile": connection.ops.quote_name(Pile._meta.db_table),
        "connector": connection.ops.quote_name(Connector._meta.db_table),
    }


def _like(value: str) -> str:
    """``%value%`` for LIKE, with LIKE's own characters escaped (as Django's icontains)."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def station_page(
    params: StationSearch, *, limit: int, offset: int = 0, now: datetime | None = None
) -> StationPage:
    """The driver's station list: one page of the stations matching ``params`` and how
    many match, from ONE SQL statement, with live connector statuses from Redis merged in
    ONE round trip.

    The statement filters on the (latitude, longitude) index with the circle's bounding
    box, computes the haversine distance and today's price now, sorts (``distance``: by
    distance then id; ``price``: price now ascending, unknown last, then distance/id;
    ``available``: free connectors descending, then distance/id; without a location by
    name then id), pages, counts every match, and aggregates the page's connectors.
    Connector counts of every match are computed only when ``kind``, ``available`` or the
    ``available`` sort need them (from the database's statuses).

    The page's counts then use each connector's live status from Redis when it is newer
    than the database's (see ``connectors_live``; a connector of an offline or disabled
    pile is never free), so a status change the gateway has written to Redis is visible
    at once. Filters and the ``available`` sort use the database's status, which the
    gateway updates on every change.

    Raises ValueError for a sort by distance without a location.
    """
    now = now or datetime.now(UTC)
    has_location = params.lat is not None and params.lng is not None
    if params.sort == "distance" and not has_location:
        raise ValueError("sorting by distance needs a location")
    tables = _tables()
    args: dict = {
        "now": now, "dc_types": [int(t) for t in DC_TYPES], "free": [str(v) for v in FREE_STATUSES],
        "limit": limit, "offset": offset,
    }
    where = []
    within = ""  # the radius, applied to the computed distance (computed once per row)
    if has_location:
        min_lat, max_lat, min_lng, max_lng = bounding_box(params.lat, params.lng, params.radius_m)
        args.update(lat=params.lat, lng=params.lng, earth_r=EARTH_RADIUS_M, radius=params.radius_m,
                    min_lat=min_lat, max_lat=max_lat, min_lng=min_lng, max_lng=max_lng)
        where += ["s.latitude BETWEEN %(min_lat)s AND %(max_lat)s",
                  "s.longitude BETWEEN %(min_lng)s AND %(max_lng)s"]
        within = "WHERE distance <= %(radius)s"
        distance = _DISTANCE
    else:
        distance = "NULL::float8"
    if params.city:
        args["city"] = params.city
        where.append("s.city = %(city)s")
    if params.q:
        args["q"] = _like(params.q)
        where.append("(UPPER(s.name::text) LIKE UPPER(%(q)s) OR UPPER(s.address::text) LIKE UPPER(%(q)s))")
    counted = bool(params.kind or params.available or params.sort == "available")
    free_col = {"dc": "k.dc_free", "ac": "(k.free - k.dc_free)"}.get(params.kind or "", "k.free")
    if params.kind == "dc":
        where.append("k.dc_total > 0")
    elif params.kind == "ac":
        where.append("k.total - k.dc_total > 0")
    if params.available:
        args["operating"] = int(Station.Status.OPERATING)
        where += [f"{free_col} > 0", "s.status = %(operating)s"]
    tail = "distance, id" if has_location else "name, id"
    order = {
        "price": f"price_now ASC NULLS LAST, {tail}",
        "available": f"free_sort DESC, {tail}",
    }.get(params.sort, tail)
    # ``hits`` (materialized: read twice) holds only what filtering and sorting need, for
    # every station in the box; the page's 20 rows then take their names, coordinates
    # and price now from the station by primary key — computing those for every station
    # in the box was most of the statement's time.
    sql = f"""
        WITH hits AS (
            SELECT s.id, {"s.name" if not has_location else "NULL::text"} AS name,
                   {distance} AS distance,
                   {_PRICE_NOW if params.sort == "price" else "NULL::numeric"} AS price_now,
                   {free_col if counted else "0"} AS free_sort
            FROM {tables["station"]} s
            {f"CROSS JOIN LATERAL ({_COUNTS.format(**tables)}) k" if counted else ""}
            {"WHERE " + " AND ".join(where) if where else ""}
        ), page AS (
            SELECT * FROM hits {within} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s
        )
        SELECT (SELECT count(*) FROM hits {within}), page.id, s.name, s.address, s.city,
               s.status, s.latitude::float8, s.longitude::float8, page.distance, {_PRICE_NOW},
               ({_CONNECTORS.format(station_id="page.id", **tables)})
        FROM (SELECT 1) AS one LEFT JOIN page ON true
             LEFT JOIN {tables["station"]} s ON s.id = page.id
        ORDER BY {", ".join(f"page.{part.strip()}" for part in order.split(","))}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        fetched = cursor.fetchall()
    total = fetched[0][0]
    found = [r for r in fetched if r[1] is not None]
    counts = _live_counts([r[10] for r in found])
    rows = [
        {
            "id": r[1], "name": r[2], "address": r[3], "city": r[4],
            "lat": r[6], "lng": r[7],
            "distance": round(r[8]) if r[8] is not None else None,
            "price_now": r[9],
            "connectors": {"ac": {"free": c[0], "total": c[1]}, "dc": {"free": c[2], "total": c[3]}},
            "status": r[5],
        }
        for r, c in zip(found, counts, strict=True)
    ]
    return StationPage(total=total, rows=rows)


def _live_counts(aggregates: list[str | None]) -> list[tuple[int, int, int, int]]:
    """(ac_free, ac_total, dc_free, dc_total) per station from its ``_CONNECTORS``
    aggregate, with the live statuses of all of them read in one round trip."""
    stations = [
        [item.split("\x1f") for item in agg.split("\x1e")] if agg else [] for agg in aggregates
    ]
    statuses = live.connectors_status(connection.schema_name, [c[0] for conns in stations for c in conns])
    out = []
    i = 0
    for conns in stations:
        ac_free = ac_total = dc_free = dc_total = 0
        for _id, db_status, changed, is_dc, usable in conns:
            live_status, updated = statuses[i]
            i += 1
            status = db_status
            if live_status != db_status and live_status in _STATUS_VALUES:
                # the newer one wins (the timestamp parsed only when they differ)
                if not changed or (
                    (at := live.updated_epoch(updated)) is not None and at >= float(changed)
                ):
                    status = live_status
            free = usable == "1" and status in FREE_STATUSES
            if is_dc == "1":
                dc_total += 1
                dc_free += free
            else:
                ac_total += 1
                ac_free += free
        out.append((ac_free, ac_total, dc_free, dc_total))
    return out


def station_map_pins(
    *, min_lng: float, min_lat: float, max_lng: float, max_lat: float, limit: int | None = None
) -> tuple[list[dict], bool]:
    """Pins inside the box: ``[{id, lat, lng, free, total, status}]`` (lat/lng floats, status
    the CEC station status code), at most ``limit`` (default MAP_MAX_PINS), by id; and
    whether more were left out. One SQL statement; free counts use the live statuses in
    Redis (one round trip) as ``station_page`` does."""
    limit = limit or MAP_MAX_PINS
    tables = _tables()
    sql = f"""
        SELECT s.id, s.latitude::float8, s.longitude::float8, s.status,
               ({_CONNECTORS.format(station_id="s.id", **tables)})
        FROM {tables["station"]} s
        WHERE s.latitude BETWEEN %(min_lat)s AND %(max_lat)s
          AND s.longitude BETWEEN %(min_lng)s AND %(max_lng)s
        ORDER BY s.id LIMIT %(limit)s
    """
    args = {"min_lat": min_lat, "max_lat": max_lat, "min_lng": min_lng, "max_lng": max_lng,
            "limit": limit + 1, "dc_types": [int(t) for t in DC_TYPES]}
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        rows = cursor.fetchall()
    shown = rows[:limit]
    counts = _live_counts([r[4] for r in shown])
    pins = [
        {"id": r[0], "lat": r[1], "lng": r[2], "free": c[0] + c[2], "total": c[1] + c[3], "status": r[3]}
        for r, c in zip(shown, counts, strict=True)
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
