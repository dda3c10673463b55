"""The PREVIOUS design of the driver's station list and map, kept only as the benchmark's
baseline (``benchmarks/station_search.py`` measures it in the same run as the current one).

Before: a Django queryset per page (distance and price annotated), a second count query,
a third for the page's connector counts, DRF serializers per row; the map an ORM
aggregate. It reads connector statuses from the database only. Mounted at
``/api/app/v1/bench-previous/stations`` and ``.../stations/map`` by
``benchmarks/support/bench_settings.py`` (ROOT_URLCONF = this module); never by production.
Also the floor of a driver-API request (``/api/app/v1/bench-floor``: routing, middleware,
DRF, no query of its own).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from evplatform import urls as project_urls
from evplatform.api.errors import APIError
from evplatform.api.pagination import Pagination
from stations.api.serializers import StationRowOut, StationSearchIn
from stations.api.views import _bbox, _validated
from stations.models import Station
from stations.selectors import (
    DC_TYPES,
    DEFAULT_RADIUS_M,
    EARTH_RADIUS_M,
    FREE_STATUSES,
    MAP_MAX_PINS,
    StationSearch,
    bounding_box,
)


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



class CountedQuerySet:
    """A queryset whose count is known (Django's Paginator asks ``count()``, then slices)."""

    ordered = True

    def __init__(self, queryset, count: int):
        self.queryset, self._count = queryset, count

    def count(self) -> int:
        return self._count

    def __getitem__(self, key):
        return self.queryset[key]


@api_view(["GET"])
@permission_classes([AllowAny])
def station_list(request):
    data = _validated(StationSearchIn, request.query_params)
    has_location = "lat" in data
    sort = data.get("sort") or ("distance" if has_location else "")
    if sort in ("distance",) and not has_location:
        raise APIError("location_required", "Sorting by distance needs lat and lng.", 400)
    params = StationSearch(
        lat=data.get("lat"), lng=data.get("lng"), radius_m=data.get("radius", DEFAULT_RADIUS_M),
        sort=sort, kind=data.get("type"), available=data["available"], city=data["city"], q=data["q"],
    )
    rows = CountedQuerySet(station_search(params), station_search_count(params))
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request)
    station_counts_attach(page)
    return paginator.get_paginated_response(StationRowOut(page, many=True).data)


@api_view(["GET"])
@permission_classes([AllowAny])
def station_map(request):
    min_lng, min_lat, max_lng, max_lat = _bbox(request.query_params.get("bbox"))
    pins, truncated = station_map_pins(min_lng=min_lng, min_lat=min_lat, max_lng=max_lng, max_lat=max_lat)
    return Response({"count": len(pins), "truncated": truncated, "results": pins})


@api_view(["GET"])
@permission_classes([AllowAny])
def api_floor(request):
    """The floor of a driver-API request: tenant routing, the middleware, DRF — no query."""
    return Response({"ok": True})


urlpatterns = [
    path("api/app/v1/bench-floor", api_floor),
    path("api/app/v1/bench-previous/stations", station_list),
    path("api/app/v1/bench-previous/stations/map", station_map),
    *project_urls.urlpatterns,
]
handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
