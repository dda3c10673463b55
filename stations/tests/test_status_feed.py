"""The live statuses the list and map mirror in process (``stations.statusfeed``), kept
current from each operator's status change log (``live.log_key``): a status written to
Redis by any writer shows on the next request, one operator's never on another's, and a
feed that may have missed something reloads everything it mirrors."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from charging.handlers import live_queue
from stations import live, selectors, snapshot, statusfeed
from stations.models import Connector

from .conftest import make_pile, make_station
from .test_station_page import redis_round_trips  # noqa: F401 (fixture)
from .test_station_snapshot import BOX, LAT, LNG, NEAR, _commit, _kept


@pytest.fixture(autouse=True)
def _fresh_snapshots():
    snapshot.clear()
    yield
    snapshot.clear()


@pytest.fixture
def pile(tenant):
    station = make_station(name="状态站", lat=LAT, lng=LNG)
    pile = make_pile(station, connectors=2, kind="dc")
    _commit()
    return pile


def _free() -> int:
    """Free connectors of the one station, as the list shows them (and the map agrees)."""
    row = selectors.station_page(NEAR, limit=20).rows[0]
    pins, _ = selectors.station_map_pins(**BOX)
    assert pins[0]["free"] == row["connectors"]["dc"]["free"]
    return pins[0]["free"]


def _feed() -> statusfeed.StatusFeed:
    return snapshot._feeds[connection.schema_name]


def _hash_only(pile, number: int, status: str) -> None:
    """A status in the connector's hash with no change log entry (as a log entry lost)."""
    key = live.connector_key(connection.schema_name, pile.code, number)
    live.client().hset(key, mapping={"status": status, "updated": datetime.now(UTC).isoformat()})


def test_a_status_change_is_visible_on_the_next_request_in_one_round_trip(pile, redis_round_trips):  # noqa: F811
    assert _free() == 2
    kept, feed = _kept(), _feed()
    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    redis_round_trips.clear()
    selectors.station_map_pins(**BOX)
    assert redis_round_trips == ["EVALSHA"]
    assert _free() == 1
    live.connector_update(connection.schema_name, pile.code, 1, status="idle")
    assert _free() == 2
    assert _kept() is kept and _feed() is feed  # neither is rebuilt for a live status


def test_the_gateways_batched_writes_are_visible_on_the_next_request(pile):
    assert _free() == 2
    pipe = live.client().pipeline(transaction=False)
    live_queue(pipe, seen={}, connectors={
        (connection.schema_name, pile.code, 1): {"status": "charging"},
        (connection.schema_name, pile.code, 2): {"status": "fault"},
    })
    pipe.execute()
    assert _free() == 0


def test_a_cleared_status_falls_back_to_the_databases(pile):
    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    assert _free() == 1
    live.connector_clear(connection.schema_name, pile.code, 1, "status", "updated")
    assert _free() == 2


def test_an_older_live_status_loses_to_a_newer_database_status(pile, settings):
    Connector.objects.filter(pile=pile).update(status_changed_at=datetime.now(UTC))
    _commit()
    settings.STATION_SNAPSHOT_STATUS_REFRESH_MS = 0
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    live.connector_update(connection.schema_name, pile.code, 1, status="charging", updated=earlier)
    assert _free() == 2  # the database's idle is newer
    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    assert _free() == 1  # a newer live one wins


def test_an_operators_changes_never_reach_another_operators_page(pile, other_tenant, operators):
    tenant_a = connection.tenant
    connection.set_tenant(other_tenant)
    try:
        b_pile = make_pile(make_station(name="乙方站", lat=LAT, lng=LNG), connectors=2, kind="dc")
        _commit()
        assert _free() == 2
        b_feed = _feed()
    finally:
        connection.set_tenant(tenant_a)
    assert _free() == 2
    # A's changes, even under B's pile code (the same connector id in another schema).
    live.connector_update(connection.schema_name, b_pile.code, 1, status="charging")
    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    live.connector_update(connection.schema_name, pile.code, 2, status="charging")
    assert _free() == 0
    connection.set_tenant(other_tenant)
    try:
        assert _free() == 2
        assert _feed() is b_feed
        live.connector_update(connection.schema_name, b_pile.code, 2, status="fault")
        assert _free() == 1
    finally:
        connection.set_tenant(tenant_a)
    assert _free() == 0
    assert live.log_key(tenant_a.schema_name) != live.log_key(other_tenant.schema_name)


def test_a_log_trimmed_past_the_feed_reloads_every_status(pile, redis_round_trips):  # noqa: F811
    assert _free() == 2
    _hash_only(pile, 1, "charging")  # its log entry is among the trimmed ones
    live.connector_update(connection.schema_name, pile.code, 2, status="charging")
    live.client().xtrim(live.log_key(connection.schema_name), maxlen=0)
    redis_round_trips.clear()
    assert _free() == 0
    assert redis_round_trips[:2] == ["EVALSHA", "EVALSHA"]  # the refresh, then the reload


def test_a_lost_log_reloads_every_status(pile):
    live.connector_update(connection.schema_name, pile.code, 2, status="charging")
    assert _free() == 1
    live.client().delete(live.log_key(connection.schema_name))
    _hash_only(pile, 1, "charging")
    assert _free() == 0


def test_too_many_changes_waiting_reload_instead(pile, monkeypatch):
    assert _free() == 2
    monkeypatch.setattr(statusfeed, "MAX_ENTRIES", 1)
    feed = _feed()
    loads = []
    real_load = feed.load
    monkeypatch.setattr(feed, "load", lambda *args: loads.append(1) or real_load(*args))
    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    assert _free() == 1 and loads == []  # one entry: applied
    live.connector_update(connection.schema_name, pile.code, 1, status="fault")
    live.connector_update(connection.schema_name, pile.code, 2, status="fault")
    assert _free() == 0 and loads == [1]  # two: reloaded (by the list; the map has nothing new)


def test_a_connector_added_to_the_estate_has_its_earlier_status_read(pile):
    assert _free() == 2
    _hash_only(pile, 3, "charging")  # written before the connector is in the estate
    Connector.objects.bulk_create([Connector(pile=pile, number=3, connector_type=Connector.Type.DC,
                                             rated_power_kw=pile.rated_power_kw)])
    _commit()
    row = selectors.station_page(NEAR, limit=20).rows[0]
    assert row["connectors"]["dc"] == {"free": 2, "total": 3}


def test_a_feed_goes_with_its_snapshot(settings, pile, other_tenant, operators):
    assert _free() == 2
    settings.STATION_SNAPSHOT_MAX_STATIONS = 1
    tenant_a = connection.tenant
    connection.set_tenant(other_tenant)
    try:
        make_station(name="乙方站", lat=LAT, lng=LNG)
        _commit()
        selectors.station_page(NEAR, limit=20)
    finally:
        connection.set_tenant(tenant_a)
    assert set(snapshot._feeds) == {other_tenant.schema_name}  # A's snapshot evicted, and its feed
    snapshot.clear()
    assert snapshot._feeds == {}


def test_an_answer_read_earlier_never_overwrites_a_later_one(pile):
    schema = connection.schema_name
    feed = statusfeed.StatusFeed(schema, "t", [f"{pile.code}:1"])
    keys = (f"{schema}:test:g", f"{schema}:test:sg", "fresh")
    feed.load(*keys)
    live.connector_update(schema, pile.code, 1, status="charging")
    stale = statusfeed.StatusFeed(schema, "t", [f"{pile.code}:1"])
    stale._last, stale._added = feed._last, feed._added
    stale.refresh(*keys)  # read "charging" one entry later
    live.connector_update(schema, pile.code, 1, status="fault")
    feed.refresh(*keys)
    assert feed.statuses([f"{pile.code}:1"])[0][0] == "fault"
    # The older answer ("charging"), offered at its earlier position, is not applied.
    feed._apply(stale._last, stale._added, [(f"{pile.code}:1", ("charging", None))])
    assert feed.statuses([f"{pile.code}:1"])[0][0] == "fault"


def test_the_log_is_bounded_and_expires_without_writes(pile):
    schema = connection.schema_name
    live.connector_update(schema, pile.code, 1, status="charging")
    key = live.log_key(schema)
    assert 0 < live.client().ttl(key) <= live.STATUS_LOG_TTL_S
    assert live.client().xinfo_stream(key)["length"] == 1
    assert _free() == 1
    live.client().delete(key)  # as expired after an hour without a write
    _hash_only(pile, 2, "charging")
    assert _free() == 0  # the feed had applied entries of it: it reloads
