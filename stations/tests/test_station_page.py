"""``selectors.station_page`` and ``station_map_pins``: one SQL statement for the page, live
connector statuses from Redis in one round trip, status changes visible at once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stations import live, selectors
from stations.models import Connector, Pile

from .conftest import make_pile, make_station
from .test_station_search import _today_prices

URL = "/api/app/v1/stations"
MAP = "/api/app/v1/stations/map"
LAT, LNG = 31.2300, 121.4700
BBOX = "121.4,31.2,121.5,31.3"


def _dc(api) -> dict:
    return api.get(URL, {"lat": LAT, "lng": LNG}).json()["results"][0]["connectors"]["dc"]


def _pin(api) -> dict:
    pin = api.get(MAP, {"bbox": BBOX}).json()["results"][0]
    return {"free": pin["free"], "total": pin["total"]}


@pytest.fixture
def station(tenant):
    s = make_station(name="实时站", lat=LAT, lng=LNG)
    pile = make_pile(s, connectors=2, kind="dc")
    return s, pile


def test_a_live_status_change_shows_in_the_list_and_map_at_once(api, station):
    _, pile = station
    assert _dc(api) == {"free": 2, "total": 2}
    assert _pin(api) == {"free": 2, "total": 2}

    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    assert _dc(api) == {"free": 1, "total": 2}
    assert _pin(api) == {"free": 1, "total": 2}

    live.connector_update(connection.schema_name, pile.code, 1, status="idle")
    live.connector_update(connection.schema_name, pile.code, 2, status="fault")
    assert _dc(api) == {"free": 1, "total": 2}
    assert _pin(api) == {"free": 1, "total": 2}


def test_a_live_status_older_than_the_databases_is_ignored(api, station):
    _, pile = station
    live.connector_update(connection.schema_name, pile.code, 1, status="charging",
                          updated=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    Connector.objects.filter(pile=pile, number=1).update(
        status=Connector.Status.IDLE, status_changed_at=datetime.now(UTC))
    assert _dc(api) == {"free": 2, "total": 2}
    assert _pin(api) == {"free": 2, "total": 2}


def test_a_connector_of_an_offline_or_disabled_pile_is_never_free(api, station):
    _, pile = station
    live.connector_update(connection.schema_name, pile.code, 1, status="idle")
    Pile.objects.filter(pk=pile.pk).update(online=False)
    assert _dc(api) == {"free": 0, "total": 2}
    Pile.objects.filter(pk=pile.pk).update(online=True, enabled=False)
    assert _pin(api) == {"free": 0, "total": 2}


def test_an_unknown_live_status_is_ignored(api, station):
    _, pile = station
    live.connector_update(connection.schema_name, pile.code, 2, status="exploded")
    assert _dc(api) == {"free": 2, "total": 2}


def _sql_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if not q["sql"].startswith("SET search_path")]


@pytest.fixture
def redis_round_trips(monkeypatch):
    """Counts pipeline executions and single commands on the live-state client (the
    real client, only counted)."""
    calls = []
    real_execute = redis.client.Pipeline.execute
    real_command = redis.Redis.execute_command

    def execute(self, *args, **kwargs):
        calls.append("pipeline")
        return real_execute(self, *args, **kwargs)

    def command(self, *args, **kwargs):
        calls.append(args[0])
        return real_command(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    return calls


def test_the_page_is_one_sql_statement_and_one_redis_round_trip(tenant, redis_round_trips):
    for i in range(30):
        s = make_station(name=f"页{i:02d}", lat=LAT + i / 1000, lng=LNG,
                         price_today=_today_prices("1.50000"))
        make_pile(s, connectors=2, kind="dc" if i % 2 else "ac")
    # The first call may load the status script into Redis (SCRIPT LOAD): once per server.
    selectors.station_page(selectors.StationSearch(lat=LAT, lng=LNG), limit=20)
    for params in (
        selectors.StationSearch(lat=LAT, lng=LNG),
        selectors.StationSearch(lat=LAT, lng=LNG, sort="price", kind="dc", available=True),
        selectors.StationSearch(lat=LAT, lng=LNG, sort="available", q="页"),
    ):
        redis_round_trips.clear()
        with CaptureQueriesContext(connection) as queries:
            page = selectors.station_page(params, limit=20)
        assert len(_sql_statements(queries.captured_queries)) == 1
        assert redis_round_trips == ["EVALSHA"]
        assert len(page.rows) == min(20, page.total)
    assert page.total == 30

    redis_round_trips.clear()
    with CaptureQueriesContext(connection) as queries:
        pins, truncated = selectors.station_map_pins(
            min_lng=121.4, min_lat=31.2, max_lng=121.5, max_lat=31.3)
    assert (len(pins), truncated) == (30, False)
    assert len(_sql_statements(queries.captured_queries)) == 1
    assert redis_round_trips == ["EVALSHA"]


def test_page_rows_total_and_a_page_past_the_end(tenant):
    s = make_station(name="甲", lat=LAT, lng=LNG, price_today=_today_prices("1.2"))
    make_pile(s, connectors=3, kind="ac")
    make_station(name="乙", lat=LAT + 0.01, lng=LNG)
    params = selectors.StationSearch(lat=LAT, lng=LNG)
    page = selectors.station_page(params, limit=1)
    assert page.total == 2
    assert page.rows == [{
        "id": s.pk, "name": "甲", "address": s.address, "city": "上海市", "lat": LAT, "lng": LNG,
        "distance": 0, "price_now": Decimal("1.2"),
        "connectors": {"ac": {"free": 3, "total": 3}, "dc": {"free": 0, "total": 0}}, "status": 50,
    }]
    assert selectors.station_page(params, limit=1, offset=1).rows[0]["name"] == "乙"
    past = selectors.station_page(params, limit=20, offset=40)
    assert (past.total, past.rows) == (2, [])
    assert selectors.station_page(selectors.StationSearch(lat=0, lng=0), limit=20) == \
        selectors.StationPage(total=0, rows=[])


def test_q_matches_like_characters_literally(tenant):
    make_station(name="100%站", lat=LAT, lng=LNG)
    make_station(name="1000站", lat=LAT, lng=LNG)
    make_station(name="a_b站", lat=LAT, lng=LNG)
    make_station(name="axb站", lat=LAT, lng=LNG)

    def names(q):
        return [r["name"] for r in selectors.station_page(
            selectors.StationSearch(sort="", q=q), limit=20).rows]

    assert names("0%") == ["100%站"]
    assert names("a_b") == ["a_b站"]
    assert names("A_B") == ["a_b站"]


def test_sort_by_distance_needs_a_location(tenant):
    with pytest.raises(ValueError):
        selectors.station_page(selectors.StationSearch(), limit=20)


def test_the_api_pages_like_before(api, tenant):
    for i in range(5):
        make_station(name=f"翻{i}", lat=LAT + i / 1000, lng=LNG)
    body = api.get(URL, {"lat": LAT, "lng": LNG, "page_size": 2, "page": "last"}).json()
    assert (body["count"], [r["name"] for r in body["results"]]) == (5, ["翻4"])
    assert body["next"] is None and "page=2" in body["previous"]
    r = api.get(URL, {"lat": LAT, "lng": LNG, "page_size": 2, "page": 4})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = api.get(URL, {"lat": LAT, "lng": LNG, "page": "99999999999999999999"})
    assert r.status_code == 404


def test_partner_pins_count_as_the_partner_station_row_does(tenant):
    """``partner_map_pins`` (one SQL statement) gives each pin inside the box the id,
    coordinates, free/total and status that ``partner_station_row`` gives the station, by
    id, at most ``limit``; stations outside the box or without coordinates are left out."""
    from stations.models import PartnerConnector, PartnerStation

    now = datetime.now(UTC)

    def partner_station(n: int, lat, lng, statuses: list[str]) -> PartnerStation:
        station = PartnerStation.objects.create(
            partner="MA1AGGR01", partner_name="伙伴", our_operator_id="MA59TEST1", station_id=f"S{n}",
            name=f"伙伴站{n}", latitude=lat, longitude=lng, status=50 if n % 2 else 6, pulled_at=now)
        for i, status in enumerate(statuses):
            PartnerConnector.objects.create(station=station, partner="MA1AGGR01", connector_id=f"S{n}C{i}",
                                            status=status)
        return station

    inside = [
        partner_station(1, Decimal("31.250001"), Decimal("121.450002"), ["idle", "charging", "idle"]),
        partner_station(2, Decimal("31.2"), Decimal("121.4"), []),  # on the box's corner
        partner_station(3, Decimal("31.299999"), Decimal("121.499999"), ["fault", "offline"]),
    ]
    partner_station(4, Decimal("31.35"), Decimal("121.45"), ["idle"])  # north of the box
    partner_station(5, None, None, ["idle"])
    box = {"min_lng": 121.4, "min_lat": 31.2, "max_lng": 121.5, "max_lat": 31.3}

    expected = [{k: selectors.partner_station_row(s)[k]
                 for k in ("id", "lat", "lng", "free", "total", "status")} | {"partner": True}
                for s in inside]
    assert selectors.partner_map_pins(**box) == expected
    assert [p["free"] for p in expected] == [2, 0, 0] and [p["total"] for p in expected] == [3, 0, 2]
    assert selectors.partner_map_pins(**box, limit=2) == expected[:2]
