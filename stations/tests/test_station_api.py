"""Station detail, map pins, QR code lookup and the nearest free connector."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from stations import live, selectors
from stations.models import Connector, Station

from .conftest import make_pile, make_station
from .test_station_search import _today_prices

LAT, LNG = 31.2300, 121.4700


def test_detail_with_piles_connectors_live_state_and_prices(api, tenant):
    s = make_station(
        name="详情站", lat=LAT, lng=LNG, parking_fee_note="充电免停车费 2 小时",
        photos=["https://img.example/1.jpg"], facilities=["卫生间", "便利店"],
        opening_hours="06:00-23:00", price_today=_today_prices("1.10000"),
    )
    pile = make_pile(s, code="31000000000001", connectors=2)
    live.connector_update(
        connection.schema_name, pile.code, 2, status="charging", power_kw=Decimal("55.5"),
        soc_percent=40, updated=datetime.now(UTC).isoformat(),
    )
    body = api.get(f"/api/app/v1/stations/{s.pk}").json()
    assert body["name"] == "详情站"
    assert body["parking_fee_note"] == "充电免停车费 2 小时"
    assert body["photos"] == ["https://img.example/1.jpg"]
    assert body["facilities"] == ["卫生间", "便利店"]
    assert body["opening_hours"] == "06:00-23:00"
    assert body["price_now"] == "1.10000"
    assert body["price_periods"] == s.price_today["periods"]
    [p] = body["piles"]
    assert p["id"] == pile.pk and p["online"] is True
    c1, c2 = p["connectors"]
    assert (c1["number"], c1["type"], c1["live"]["status"]) == (1, "dc", "idle")
    assert c2["live"]["status"] == "charging"
    assert c2["live"]["power_kw"] == "55.50"
    assert c2["live"]["soc_percent"] == 40


def test_detail_without_todays_prices_has_no_periods(api, tenant):
    s = make_station(lat=LAT, lng=LNG)
    body = api.get(f"/api/app/v1/stations/{s.pk}").json()
    assert (body["price_now"], body["price_periods"], body["piles"]) == (None, [], [])


@pytest.mark.parametrize(("pk", "status", "code"), [("999999", 404, "station_not_found"), ("abc", 400, "invalid_id"), ("-1", 400, "invalid_id")])
def test_detail_errors(api, tenant, pk, status, code):
    r = api.get(f"/api/app/v1/stations/{pk}")
    assert (r.status_code, r.json()["code"]) == (status, code)


def test_detail_of_another_operators_station_is_404(api, tenant, other_tenant):
    from django_tenants.utils import tenant_context

    with tenant_context(other_tenant):
        theirs = make_station(name="B 的站")
    connection.set_tenant(tenant)
    assert api.get(f"/api/app/v1/stations/{theirs.pk + 100000}").status_code == 404


def test_map_pins_inside_the_box(api, tenant):
    inside = make_station(lat=31.2, lng=121.4)
    make_pile(inside, connectors=2)
    make_pile(inside, connectors=1, status=Connector.Status.CHARGING)
    make_station(lat=32.5, lng=121.4)
    r = api.get("/api/app/v1/stations/map", {"bbox": "121.0,31.0,122.0,32.0"})
    assert r.json() == {
        "count": 1,
        "truncated": False,
        "results": [{"id": inside.pk, "lat": 31.2, "lng": 121.4, "free": 2, "total": 3, "status": 50}],
    }


def test_map_pins_are_capped(api, tenant, monkeypatch):
    monkeypatch.setattr(selectors, "MAP_MAX_PINS", 3)
    for i in range(5):
        make_station(lat=31.2 + i / 100, lng=121.4)
    pins, truncated = selectors.station_map_pins(min_lng=121, min_lat=31, max_lng=122, max_lat=32, limit=3)
    assert (len(pins), truncated) == (3, True)
    body = api.get("/api/app/v1/stations/map", {"bbox": "121,31,122,32"}).json()
    assert (body["count"], body["truncated"]) == (3, True)


@pytest.mark.parametrize("bbox", [None, "", "1,2,3", "a,b,c,d", "122,31,121,32", "121,31,122,91", "121,31,122,31", "1,2,3,4,5"])
def test_map_bad_bbox(api, tenant, bbox):
    r = api.get("/api/app/v1/stations/map", {} if bbox is None else {"bbox": bbox})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_bbox")


def test_connector_by_code_and_by_label_value(api, tenant):
    s = make_station(name="扫码站", lat=LAT, lng=LNG, price_today=_today_prices("0.98000"))
    pile = make_pile(s, code="31000000000002", connectors=2)
    Connector.objects.filter(pile=pile, number=2).update(qr_code="LABEL-XYZ")
    body = api.get("/api/app/v1/connectors/by-code/3100000000000201").json()
    assert body["connector"]["number"] == 1
    assert body["pile"]["id"] == pile.pk
    assert body["station"]["name"] == "扫码站"
    assert body["price_now"] == "0.98000"
    assert body["connector"]["live"]["status"] == "idle"
    body = api.get("/api/app/v1/connectors/by-code/LABEL-XYZ").json()
    assert body["connector"]["number"] == 2


@pytest.mark.parametrize("code", ["3100000000000299", "nothing", "x" * 80, "31000000000002"])
def test_connector_by_unknown_code_is_404(api, tenant, code):
    make_pile(make_station(), code="31000000000002", connectors=1)
    r = api.get(f"/api/app/v1/connectors/by-code/{code}")
    assert (r.status_code, r.json()["code"]) == (404, "connector_not_found")


def test_recommend_nearest_free_connector(api, tenant):
    near_busy = make_station(name="近但忙", lat=LAT + 0.001, lng=LNG)
    make_pile(near_busy, connectors=2, status=Connector.Status.CHARGING)
    near_offline = make_station(name="近但离线", lat=LAT + 0.002, lng=LNG)
    make_pile(near_offline, connectors=1, online=False)
    closed = make_station(name="关闭", lat=LAT + 0.002, lng=LNG, status=Station.Status.CLOSED)
    make_pile(closed, connectors=1)
    ac = make_station(name="交流", lat=LAT + 0.01, lng=LNG)
    make_pile(ac, connectors=1, kind="ac")
    dc = make_station(name="直流", lat=LAT + 0.02, lng=LNG)
    dc_pile = make_pile(dc, connectors=1, kind="dc")
    r = api.get("/api/app/v1/stations/recommend", {"lat": LAT, "lng": LNG})
    rows = r.json()["results"]
    assert [row["station"]["name"] for row in rows] == ["交流", "直流"]
    assert rows[0]["distance"] == round(haversine := selectors.haversine_m(LAT, LNG, LAT + 0.01, LNG))
    assert haversine > 1000
    rows = api.get("/api/app/v1/stations/recommend", {"lat": LAT, "lng": LNG, "type": "dc"}).json()["results"]
    assert [row["station"]["name"] for row in rows] == ["直流", "交流"]
    # Redis knows better: the DC connector was just taken.
    live.connector_update(connection.schema_name, dc_pile.code, 1, status="charging",
                          updated=datetime.now(UTC).isoformat())
    rows = api.get("/api/app/v1/stations/recommend", {"lat": LAT, "lng": LNG, "type": "dc"}).json()["results"]
    assert [row["station"]["name"] for row in rows] == ["交流"]


def test_recommend_with_a_member_uses_the_hook(member_api, tenant):
    assert selectors.member_usual_connector_type(member_api.member) is None
    r = member_api.get("/api/app/v1/stations/recommend", {"lat": LAT, "lng": LNG})
    assert r.status_code == 200 and r.json() == {"results": []}


@pytest.mark.parametrize(
    ("params", "code"),
    [({}, "location_required"), ({"lat": 31}, "location_required"), ({"lat": 100, "lng": 121}, "invalid_coordinates"),
     ({"lat": 31, "lng": 121, "type": "x"}, "invalid_type")],
)
def test_recommend_bad_input(api, tenant, params, code):
    r = api.get("/api/app/v1/stations/recommend", params)
    assert (r.status_code, r.json()["code"]) == (400, code)


def test_station_api_needs_a_tenant(db, operators):
    from rest_framework.test import APIClient

    r = APIClient().get("/api/app/v1/stations")
    assert (r.status_code, r.json()["code"]) == (400, "tenant_required")


def test_pile_codes_are_not_public(api, tenant):
    """A pile code is what a pile logs in with (YKC has no other credential): the driver API
    identifies connectors by id and by the QR value the driver scanned, never by it
    (issue 21, item 1)."""
    s = make_station(name="不公开站", lat=LAT, lng=LNG)
    pile = make_pile(s, code="31000000000077", connectors=2)
    Connector.objects.filter(pile=pile, number=2).update(qr_code="LABEL-SECRET-FREE")
    bodies = [
        api.get(f"/api/app/v1/stations/{s.pk}"),
        api.get("/api/app/v1/stations/recommend", {"lat": LAT, "lng": LNG}),
        api.get("/api/app/v1/connectors/by-code/LABEL-SECRET-FREE"),
        api.get("/api/app/v1/stations", {"lat": LAT, "lng": LNG}),
        api.get("/api/app/v1/stations/map", {"bbox": "121,31,122,32"}),
    ]
    for r in bodies:
        assert r.status_code == 200 and "31000000000077" not in r.content.decode(), r.content
    detail = bodies[0].json()
    assert [c["id"] for c in detail["piles"][0]["connectors"]] == list(
        pile.connectors.order_by("number").values_list("id", flat=True)
    )
    assert bodies[2].json()["connector"]["number"] == 2
