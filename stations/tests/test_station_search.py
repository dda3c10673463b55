"""GET /api/app/v1/stations: distance, price, availability, filters, paging, errors."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stations.models import Connector, Station
from stations.selectors import haversine_m

from .conftest import make_pile, make_station

URL = "/api/app/v1/stations"
LAT, LNG = 31.2300, 121.4700


def _today_prices(value_now: str, other: str = "9.99", tz: str = "Asia/Shanghai") -> dict:
    local = datetime.now(UTC).astimezone(ZoneInfo(tz))
    slots = [other] * 48
    slots[local.hour * 2 + local.minute // 30] = value_now
    return {
        "date": local.date().isoformat(),
        "slots": slots,
        "periods": [{"start": "00:00", "end": "24:00", "period": "flat", "electricity": "0.8", "service": "0.4"}],
    }


@pytest.fixture
def spread(tenant):
    """Five stations north of the point at 1, 2, 3, 4 km and one 20 km away."""
    out = {}
    for km in (3, 1, 4, 2, 20):
        out[km] = make_station(name=f"站{km}", lat=LAT + km / 111.2, lng=LNG)
    return out


def _ids(r):
    assert r.status_code == 200, r.json()
    return [row["id"] for row in r.json()["results"]]


def test_distance_order_is_exact_and_radius_applies(api, spread):
    r = api.get(URL, {"lat": LAT, "lng": LNG, "radius": 5000})
    assert _ids(r) == [spread[k].pk for k in (1, 2, 3, 4)]
    for row in r.json()["results"]:
        s = Station.objects.get(pk=row["id"])
        assert row["distance"] == round(haversine_m(LAT, LNG, float(s.latitude), float(s.longitude)))
    assert r.json()["count"] == 4


def test_default_radius_is_10_km_and_max_50(api, spread):
    assert len(_ids(api.get(URL, {"lat": LAT, "lng": LNG}))) == 4
    assert len(_ids(api.get(URL, {"lat": LAT, "lng": LNG, "radius": 50000}))) == 5


def test_row_shape(api, tenant):
    s = make_station(name="形状站", lat=LAT, lng=LNG, price_today=_today_prices("1.23456"))
    make_pile(s, connectors=2, kind="dc")
    make_pile(s, connectors=3, kind="ac", status=Connector.Status.CHARGING)
    row = api.get(URL, {"lat": LAT, "lng": LNG}).json()["results"][0]
    assert row == {
        "id": s.pk,
        "name": "形状站",
        "address": s.address,
        "city": "上海市",
        "lat": LAT,
        "lng": LNG,
        "distance": 0,
        "price_now": "1.23456",
        "connectors": {"ac": {"free": 0, "total": 3}, "dc": {"free": 2, "total": 2}},
        "status": 50,
    }


def test_price_now_is_null_without_todays_prices(api, tenant):
    yesterday = _today_prices("1.0")
    yesterday["date"] = (datetime.fromisoformat(yesterday["date"]) - timedelta(days=1)).date().isoformat()
    make_station(name="昨天", lat=LAT, lng=LNG, price_today=yesterday)
    make_station(name="无价", lat=LAT, lng=LNG)
    make_station(name="坏价", lat=LAT, lng=LNG, price_today={"date": _today_prices("1")["date"], "slots": "x"})
    rows = api.get(URL, {"lat": LAT, "lng": LNG}).json()["results"]
    assert [r["price_now"] for r in rows] == [None, None, None]


def test_price_now_uses_the_stations_own_time_zone(api, tenant):
    s = make_station(name="乌鲁木齐", lat=LAT, lng=LNG, time_zone="Asia/Urumqi",
                     price_today=_today_prices("0.77777", tz="Asia/Urumqi"))
    row = api.get(URL, {"lat": LAT, "lng": LNG}).json()["results"][0]
    assert (row["id"], row["price_now"]) == (s.pk, "0.77777")


def test_sort_by_price_puts_unknown_last_then_distance(api, spread):
    spread[3].price_today = _today_prices("0.90000")
    spread[4].price_today = _today_prices("0.50000")
    spread[1].price_today = _today_prices("1.50000")
    for s in spread.values():
        s.save()
    r = api.get(URL, {"lat": LAT, "lng": LNG, "sort": "price"})
    assert _ids(r) == [spread[k].pk for k in (4, 3, 1, 2)]


def test_sort_by_available_then_distance(api, spread):
    make_pile(spread[4], connectors=3)
    make_pile(spread[2], connectors=1)
    make_pile(spread[3], connectors=1)
    make_pile(spread[1], connectors=2, status=Connector.Status.CHARGING)
    r = api.get(URL, {"lat": LAT, "lng": LNG, "sort": "available"})
    assert _ids(r) == [spread[k].pk for k in (4, 2, 3, 1)]


def test_available_filter_needs_a_free_connector_on_an_online_pile(api, spread):
    make_pile(spread[1], connectors=1, status=Connector.Status.CHARGING)
    make_pile(spread[2], connectors=1, online=False)
    make_pile(spread[3], connectors=1, status=Connector.Status.PLUGGED)
    make_pile(spread[4], connectors=1, enabled=False)
    assert _ids(api.get(URL, {"lat": LAT, "lng": LNG, "available": "true"})) == [spread[3].pk]


def test_available_filter_skips_closed_stations(api, tenant):
    s = make_station(lat=LAT, lng=LNG, status=Station.Status.CLOSED)
    make_pile(s, connectors=1)
    assert _ids(api.get(URL, {"lat": LAT, "lng": LNG, "available": "true"})) == []


def test_type_filter_and_available_of_that_type(api, spread):
    make_pile(spread[1], connectors=1, kind="ac")
    make_pile(spread[2], connectors=1, kind="dc")
    make_pile(spread[3], connectors=1, kind="dc", status=Connector.Status.CHARGING)
    make_pile(spread[3], connectors=1, kind="ac")
    assert _ids(api.get(URL, {"lat": LAT, "lng": LNG, "type": "dc"})) == [spread[2].pk, spread[3].pk]
    assert _ids(api.get(URL, {"lat": LAT, "lng": LNG, "type": "ac"})) == [spread[1].pk, spread[3].pk]
    assert _ids(api.get(URL, {"lat": LAT, "lng": LNG, "type": "dc", "available": "1"})) == [spread[2].pk]


def test_city_and_q_filters(api, tenant):
    a = make_station(name="虹桥枢纽站", lat=LAT, lng=LNG, city="上海市")
    make_station(name="西湖站", lat=LAT, lng=LNG, city="杭州市")
    c = make_station(name="普通站", lat=LAT, lng=LNG, city="上海市", address="虹桥路 1 号")
    assert set(_ids(api.get(URL, {"city": "上海市"}))) == {a.pk, c.pk}
    assert _ids(api.get(URL, {"q": "虹桥", "city": "上海市", "lat": LAT, "lng": LNG})) == [a.pk, c.pk]
    assert _ids(api.get(URL, {"q": "西湖"})) != []
    assert _ids(api.get(URL, {"q": "不存在"})) == []


def test_without_location_lists_by_name_without_distance(api, spread):
    r = api.get(URL)
    assert _ids(r) == [s.pk for s in sorted(spread.values(), key=lambda s: s.name)]
    assert {row["distance"] for row in r.json()["results"]} == {None}


def test_pagination(api, tenant):
    stations = [make_station(name=f"p{i}", lat=LAT + i / 1000, lng=LNG) for i in range(7)]
    first = api.get(URL, {"lat": LAT, "lng": LNG, "page_size": 3}).json()
    assert first["count"] == 7
    assert [r["id"] for r in first["results"]] == [s.pk for s in stations[:3]]
    third = api.get(URL, {"lat": LAT, "lng": LNG, "page_size": 3, "page": 3}).json()
    assert [r["id"] for r in third["results"]] == [stations[6].pk]
    beyond = api.get(URL, {"lat": LAT, "lng": LNG, "page_size": 3, "page": 4})
    assert beyond.status_code == 404
    assert beyond.json()["code"] == "not_found"


def test_counted_pages_with_filters(api, spread):
    make_pile(spread[1], connectors=1, kind="ac")
    assert api.get(URL, {"lat": LAT, "lng": LNG, "type": "ac"}).json()["count"] == 1


def test_works_with_a_member_token(member_api, spread):
    assert len(_ids(member_api.get(URL, {"lat": LAT, "lng": LNG}))) == 4


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"lat": 91, "lng": 121}, "invalid_coordinates"),
        ({"lat": 31, "lng": -181}, "invalid_coordinates"),
        ({"lat": "north", "lng": 121}, "invalid_coordinates"),
        ({"lat": 31}, "location_required"),
        ({"lng": 121}, "location_required"),
        ({"sort": "distance"}, "location_required"),
        ({"radius": 1000}, "location_required"),
        ({"lat": 31, "lng": 121, "radius": 50001}, "radius_too_large"),
        ({"lat": 31, "lng": 121, "radius": 0}, "invalid_radius"),
        ({"lat": 31, "lng": 121, "radius": "far"}, "invalid_radius"),
        ({"lat": 31, "lng": 121, "sort": "rating"}, "invalid_sort"),
        ({"type": "hydrogen"}, "invalid_type"),
        ({"available": "maybe"}, "invalid_parameter"),
    ],
)
def test_bad_input_is_400_with_a_specific_code(api, tenant, params, code):
    r = api.get(URL, params)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == code
    assert set(body) == {"code", "detail", "fields"}
