"""The driver's station API: search, map pins, details, QR lookup, nearest free connector.

Public (AllowAny: anyone naming the operator) and works with a member token too. Errors
(all in the common format): 400 ``invalid_coordinates``, ``location_required``,
``radius_too_large``, ``invalid_radius``, ``invalid_sort``, ``invalid_type``,
``invalid_bbox``, ``invalid_parameter``, ``invalid_id``; 404 ``station_not_found``,
``connector_not_found``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from evplatform.api.errors import APIError
from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from stations import selectors

from .serializers import (
    KINDS,
    ConnectorByCodeOut,
    MapOut,
    PartnerStationDetailOut,
    PartnerStationsOut,
    RecommendIn,
    RecommendOut,
    StationDetailOut,
    StationRowOut,
    StationSearchIn,
    connector_out,
    pile_out,
    station_brief_out,
)

FIELD_CODES = {
    "lat": "invalid_coordinates",
    "lng": "invalid_coordinates",
    "sort": "invalid_sort",
    "type": "invalid_type",
}


def _validated(serializer_class, data) -> dict:
    """Validated input, or APIError 400 with the first offending field's specific code."""
    s = serializer_class(data=data)
    if s.is_valid():
        return s.validated_data
    fields = {k: [str(m) for m in v] for k, v in s.errors.items()}
    codes = s.errors
    if "radius" in codes:
        over = any(getattr(e, "code", "") == "max_value" for e in codes["radius"])
        code = "radius_too_large" if over else "invalid_radius"
        detail = (
            _("The radius may be at most %(max)d m.") % {"max": selectors.MAX_RADIUS_M}
            if over
            else _("The radius must be a whole number of metres.")
        )
        raise APIError(code, detail, 400, fields)
    for name in codes:
        if name in FIELD_CODES:
            code = FIELD_CODES[name]
            if name in ("lat", "lng") and name not in data:
                code = "location_required"
            raise APIError(code, _("Invalid %(field)s.") % {"field": name}, 400, fields)
    raise APIError("invalid_parameter", _("Invalid input."), 400, fields)


_DEGREES = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,15})?")
_FAST_KEYS = frozenset({"lat", "lng", "radius", "sort", "type", "available", "page", "page_size"})
_BOOLEANS = {"true": True, "false": False}


def _search_input(query) -> dict:
    """``StationSearchIn``'s validated data for the usual query (plain decimal ``lat`` and
    ``lng`` in range, digits ``radius`` in range, a known ``sort``/``type``,
    ``available`` true/false, each at most once, no ``city``/``q``), built without
    DRF's serializer (a new one deep-copies its nine fields: a fifth of a list request's
    CPU); anything else goes through the serializer, so every answer and error is its."""
    if not query.keys() <= _FAST_KEYS or ("lat" in query) != ("lng" in query):
        return _validated(StationSearchIn, query)
    data = {}
    for key in query:
        values = query.getlist(key)
        if len(values) != 1:
            return _validated(StationSearchIn, query)
        data[key] = values[0]
    out: dict = {}
    if "lat" in data:
        if not (_DEGREES.fullmatch(data["lat"]) and _DEGREES.fullmatch(data["lng"])):
            return _validated(StationSearchIn, query)
        lat, lng = float(data["lat"]), float(data["lng"])
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            return _validated(StationSearchIn, query)
        out["lat"], out["lng"] = lat, lng
    if "radius" in data:
        raw = data["radius"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6
                and 1 <= int(raw) <= selectors.MAX_RADIUS_M):
            return _validated(StationSearchIn, query)
        out["radius"] = int(raw)
    for key, allowed in (("sort", selectors.SORTS), ("type", KINDS)):
        if key in data:
            if data[key] not in allowed:
                return _validated(StationSearchIn, query)
            out[key] = data[key]
    if data.get("available", "false") not in _BOOLEANS:
        return _validated(StationSearchIn, query)
    out["available"] = _BOOLEANS[data.get("available", "false")]
    out["city"] = out["q"] = ""
    return out


class _PageRows:
    """The rows of ``station_page`` as a sequence for Django's Paginator: ``count()`` is
    the selector's total; a slice other than the fetched one (``?page=last``) fetches it."""

    def __init__(self, fetch, page: selectors.StationPage, offset: int):
        self._fetch, self._page, self._offset = fetch, page, offset

    def count(self) -> int:
        return self._page.total

    def __len__(self) -> int:
        return self._page.total

    def __getitem__(self, key: slice):
        if key.start != self._offset:
            self._offset = key.start
            self._page = self._fetch(key.stop - key.start, key.start)
        return self._page.rows[: key.stop - key.start]


SEARCH_PARAMS = [
    OpenApiParameter("lat", float, description="GCJ-02 latitude"),
    OpenApiParameter("lng", float, description="GCJ-02 longitude"),
    OpenApiParameter("radius", int, description=f"metres, default {selectors.DEFAULT_RADIUS_M}, max {selectors.MAX_RADIUS_M}"),
    OpenApiParameter("sort", str, enum=selectors.SORTS),
    OpenApiParameter("type", str, enum=["ac", "dc"]),
    OpenApiParameter("available", bool),
    OpenApiParameter("city", str),
    OpenApiParameter("q", str),
]


@extend_schema(
    operation_id="stations_list",
    parameters=SEARCH_PARAMS,
    responses=paginated("StationRowPage", StationRowOut(many=True)),
    auth=[],
)
@api_view(["GET"])
@permission_classes([AllowAny])
def station_list(request):
    """Stations near a point (or all, by name, without one): distance in metres, today's
    price now in yuan/kWh, free/total connectors by AC/DC; paginated."""
    data = _search_input(request.query_params)
    has_location = "lat" in data
    sort = data.get("sort") or ("distance" if has_location else "")
    if sort in ("distance",) and not has_location:
        raise APIError("location_required", _("Sorting by distance needs lat and lng."), 400)
    if "radius" in data and not has_location:
        raise APIError("location_required", _("A radius needs lat and lng."), 400)
    params = selectors.StationSearch(
        lat=data.get("lat"),
        lng=data.get("lng"),
        radius_m=data.get("radius", selectors.DEFAULT_RADIUS_M),
        sort=sort,
        kind=data.get("type"),
        available=data["available"],
        city=data["city"],
        q=data["q"],
    )
    paginator = Pagination()
    size = paginator.get_page_size(request)
    number = request.query_params.get(paginator.page_query_param) or "1"
    # The page the paginator will ask for (anything else, e.g. "last" or a page past the
    # end, is fetched again or refused by it with the usual 404).
    offset = (int(number) - 1) * size if number.isdigit() and 1 <= int(number) <= 10**6 else 0

    def fetch(limit: int, offset: int) -> selectors.StationPage:
        return selectors.station_page(params, limit=limit, offset=offset)

    rows = paginator.paginate_queryset(_PageRows(fetch, fetch(size, offset), offset), request)
    for row in rows:
        row["price_now"] = _price(row["price_now"])
    return paginator.get_paginated_response(rows)


@lru_cache(maxsize=1024)
def _price(value) -> str | None:
    """yuan/kWh as the API has always written it: 5 decimal places, a string (memoized: a
    page's rows share a few tariffs, and DRF's field costs ~4 µs a value)."""
    return None if value is None else _PRICE_FIELD.to_representation(value)


_PRICE_FIELD = serializers.DecimalField(max_digits=10, decimal_places=5)


def _bbox(raw: str | None) -> tuple[float, float, float, float]:
    parts = (raw or "").split(",")
    try:
        min_lng, min_lat, max_lng, max_lat = (float(p) for p in parts)
    except ValueError:
        raise APIError(
            "invalid_bbox", _("bbox is minLng,minLat,maxLng,maxLat in degrees."), 400
        ) from None
    if not (
        -180 <= min_lng < max_lng <= 180 and -90 <= min_lat < max_lat <= 90
    ):
        raise APIError("invalid_bbox", _("bbox is minLng,minLat,maxLng,maxLat in degrees."), 400)
    return min_lng, min_lat, max_lng, max_lat


@extend_schema(
    parameters=[OpenApiParameter("bbox", str, required=True, description="minLng,minLat,maxLng,maxLat (GCJ-02)")],
    responses=MapOut,
    auth=[],
)
@api_view(["GET"])
@permission_classes([AllowAny])
def station_map(request):
    """Map pins inside a box: ``{count, truncated, results: [{id, lat, lng, free, total,
    status}]}``, at most MAP_MAX_PINS (then ``truncated`` is true: zoom in)."""
    min_lng, min_lat, max_lng, max_lat = _bbox(request.query_params.get("bbox"))
    # Interconnection partners' stations too, marked ``partner: true`` (within the cap).
    pins, truncated = selectors.map_pins(min_lng=min_lng, min_lat=min_lat, max_lng=max_lng, max_lat=max_lat)
    return Response({"count": len(pins), "truncated": truncated, "results": pins})


@extend_schema(responses=StationDetailOut, auth=[])
@api_view(["GET"])
@permission_classes([AllowAny])
def station_detail(request, pk: str):
    """A station with piles, connectors and their live state, today's price periods and
    the price now (yuan/kWh), parking note, photos, facilities, opening hours."""
    if not pk.isdigit() or len(pk) > 18:
        raise APIError("invalid_id", _("A station id is a number."), 400)
    station = selectors.station_get(station_id=int(pk))
    if station is None:
        raise APIError("station_not_found", _("No such station."), 404)
    piles = list(station.piles.all())
    connectors = [c for p in piles for c in p.connectors.all()]
    states = selectors.connectors_live(connectors)
    price_now = selectors.station_price_now(station)
    prices = station.price_today or {}
    body = {
        **station_brief_out(station),
        "code": station.code,
        "city": station.city,
        "district": station.district,
        "phone": station.phone,
        "photos": station.photos,
        "facilities": station.facilities,
        "time_zone": station.time_zone,
        "price_now": str(price_now) if price_now is not None else None,
        "price_periods": prices.get("periods", []) if price_now is not None else [],
        "piles": [
            {**pile_out(p), "connectors": [connector_out(c, states[c.pk]) for c in p.connectors.all()]}
            for p in piles
        ],
    }
    return Response(body)


def _connector_page(connector) -> Response:
    """A connector with live state, its pile, station and price now (no pile codes)."""
    state = selectors.connectors_live([connector])[connector.pk]
    station = connector.pile.station
    price_now = selectors.station_price_now(station)
    return Response(
        {
            "connector": connector_out(connector, state),
            "pile": pile_out(connector.pile),
            "station": station_brief_out(station),
            "price_now": str(price_now) if price_now is not None else None,
        }
    )


@extend_schema(responses=ConnectorByCodeOut, auth=[])
@api_view(["GET"])
@permission_classes([AllowAny])
def connector_by_code(request, code: str):
    """What a QR scan resolves to (connector code = pile code + 2-digit number, or the
    label's qr_code value): connector with live state, pile, station, price now."""
    connector = selectors.connector_get_by_code(code) if len(code) <= 64 else None
    if connector is None:
        raise APIError("connector_not_found", _("No connector with this code."), 404)
    return _connector_page(connector)


@extend_schema(responses=ConnectorByCodeOut, auth=[], operation_id="connector_detail")
@api_view(["GET"])
@permission_classes([AllowAny])
def connector_detail(request, pk: int):
    """A connector by its ``id`` (as station detail and recommend list it): the same shape
    as a QR scan's answer."""
    connector = selectors.connector_get(pk)
    if connector is None:
        raise APIError("connector_not_found", _("No such connector."), 404)
    return _connector_page(connector)


@extend_schema(
    parameters=[
        OpenApiParameter("lat", float, required=True),
        OpenApiParameter("lng", float, required=True),
        OpenApiParameter("type", str, enum=["ac", "dc"], description="preferred kind"),
    ],
    responses=RecommendOut,
    auth=[],
)
@api_view(["GET"])
@permission_classes([AllowAny])
def station_recommend(request):
    """One-click "nearest free connector": up to 5 free connectors within 30 km, nearest
    first, the preferred kind (``type``, else the member's usual one) first."""
    data = _validated(RecommendIn, request.query_params)
    prefer = data.get("type")
    if prefer is None and request.user is not None and getattr(request.user, "pk", None):
        prefer = selectors.member_usual_connector_type(request.user)
    found = selectors.connectors_nearest_free(lat=data["lat"], lng=data["lng"], prefer=prefer)
    return Response(
        {
            "results": [
                {
                    "connector": connector_out(c, c.live),
                    "pile": pile_out(c.pile),
                    "station": station_brief_out(c.pile.station),
                    "distance": round(c.distance),
                    "price_now": (
                        str(p) if (p := selectors.station_price_now(c.pile.station)) is not None else None
                    ),
                }
                for c in found
            ]
        }
    )


@extend_schema(
    parameters=[
        OpenApiParameter("lat", float, description="GCJ-02 degrees (with lng: nearest first)"),
        OpenApiParameter("lng", float),
        OpenApiParameter("radius", int, description="metres (default 10000, at most 50000)"),
        OpenApiParameter("q", str, description="part of the name or address"),
    ],
    responses=PartnerStationsOut,
    auth=[],
)
@api_view(["GET"])
@permission_classes([AllowAny])
def partner_station_list(request):
    """Interconnection partners' stations (our members charge there through the partner):
    ``{count, results: [{id, partner: true, partner_name, name, address, lat, lng,
    distance (m), status, prices, free, total}]}``, nearest first within ``radius`` metres
    of (lat, lng), at most 50. Errors: 400 ``location_required`` (lat without lng or the
    reverse), 400 ``invalid_parameter`` (not a number, out of range)."""
    params = request.query_params
    try:
        lat = float(params["lat"]) if params.get("lat") else None
        lng = float(params["lng"]) if params.get("lng") else None
        radius = int(params.get("radius") or selectors.DEFAULT_RADIUS_M)
    except ValueError:
        raise APIError("invalid_parameter", _("lat, lng and radius are numbers."), 400) from None
    if (lat is None) != (lng is None):
        raise APIError("location_required", _("Give both lat and lng, or neither."), 400)
    if not (0 < radius <= 50_000) or (lat is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180)):
        raise APIError("invalid_parameter", _("lat, lng or radius is out of range."), 400)
    rows = selectors.partner_stations_near(lat=lat, lng=lng, radius_m=radius, q=(params.get("q") or "")[:50])
    return Response({"count": len(rows), "results": rows})


@extend_schema(responses=PartnerStationDetailOut, auth=[], operation_id="app_v1_stations_partners_detail")
@api_view(["GET"])
@permission_classes([AllowAny])
def partner_station_detail(request, pk: str):
    """A partner's station with its connectors and their live status (as the partner
    last reported). Errors: 400 ``invalid_id``, 404 ``station_not_found``."""
    if not pk.isdigit() or len(pk) > 18:
        raise APIError("invalid_id", _("A station id is a number."), 400)
    station = selectors.partner_station_get(station_id=int(pk))
    if station is None:
        raise APIError("station_not_found", _("No such station."), 404)
    body = {
        **selectors.partner_station_row(station),
        "opening_hours": station.opening_hours, "phone": station.phone,
        "connectors": [
            {"id": c.pk, "connector_id": c.connector_id, "connector_type": c.connector_type,
             "power_kw": str(c.power_kw), "status": c.status}
            for c in station.connectors.all()
        ],
    }
    return Response(body)
