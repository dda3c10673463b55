"""The station snapshot behind the driver's list and map (``stations.snapshot``): no SQL
on a warm request, renewed by every kind of write, per operator, bounded in memory.

Each test runs in a transaction that is rolled back, so nothing here really commits:
``_commit()`` runs what a commit would run for the snapshot (its on-commit generation
bumps) and removes them from the transaction, so the snapshot may be kept as after a real
commit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stations import generation, live, selectors, snapshot
from stations.models import Connector, PartnerStation, Pile, Station

from .conftest import make_pile, make_station
from .test_station_page import _sql_statements, redis_round_trips  # noqa: F401 (fixture)
from .test_station_search import _today_prices

LAT, LNG = 31.2300, 121.4700
NEAR = selectors.StationSearch(lat=LAT, lng=LNG)
BOX = {"min_lng": 121.4, "min_lat": 31.2, "max_lng": 121.5, "max_lat": 31.3}


@pytest.fixture(autouse=True)
def _fresh_snapshots():
    snapshot.clear()
    yield
    snapshot.clear()  # what this test kept was built from data now rolled back


def _commit() -> None:
    mine = [e for e in connection.run_on_commit if isinstance(e[1], generation._Bump)]
    connection.run_on_commit = [e for e in connection.run_on_commit if e not in mine]
    for _sids, func, _robust in mine:
        func()


def _token(kind: str = generation.ESTATE) -> str | None:
    return live.client().get(generation.generation_key(connection.schema_name, kind))


def _kept() -> snapshot.Snapshot | None:
    return snapshot.cached(connection.schema_name)


def _page() -> list[dict]:
    return selectors.station_page(NEAR, limit=20).rows


def _dc_free() -> int:
    return _page()[0]["connectors"]["dc"]["free"]


@pytest.fixture
def estate(tenant):
    station = make_station(name="快照站", lat=LAT, lng=LNG, price_today=_today_prices("1.20000"))
    pile = make_pile(station, connectors=2, kind="dc")
    _commit()
    return station, pile


def test_a_warm_request_costs_no_sql_and_one_redis_round_trip(estate, redis_round_trips):  # noqa: F811
    with CaptureQueriesContext(connection) as queries:
        first = _page()
    assert len(_sql_statements(queries.captured_queries)) == 1  # the snapshot, built once
    assert _kept() is not None
    for call in (_page, lambda: selectors.station_map_pins(**BOX)):
        redis_round_trips.clear()
        with CaptureQueriesContext(connection) as queries:
            call()
        assert _sql_statements(queries.captured_queries) == []
        assert redis_round_trips == ["EVALSHA"]
    assert _page() == first


def test_a_live_status_change_is_visible_on_the_next_request_from_a_kept_snapshot(estate):
    _, pile = estate
    assert _dc_free() == 2
    kept = _kept()
    live.connector_update(connection.schema_name, pile.code, 1, status="charging")
    assert _dc_free() == 1
    live.connector_update(connection.schema_name, pile.code, 1, status="idle")
    assert _dc_free() == 2
    assert _kept() is kept  # statuses never rebuild it


def _rename(station, pile):
    station.name = "改名站"
    station.save()
    return lambda: _page()[0]["name"] == "改名站"


def _reprice(station, pile):
    Station.objects.filter(pk=station.pk).update(price_today=_today_prices("2.50000"))
    return lambda: _page()[0]["price_now"] == Decimal("2.50000")


def _pile_offline(station, pile):
    Pile.objects.filter(pk=pile.pk).update(online=False)
    return lambda: _dc_free() == 0


def _pile_disabled(station, pile):
    pile.enabled = False
    pile.save()
    return lambda: _dc_free() == 0


def _connector_status(station, pile):
    Connector.objects.filter(pile=pile, number=1).update(
        status=Connector.Status.FAULT, status_changed_at=datetime.now(UTC))
    return lambda: _dc_free() == 1


def _connector_bulk_update(station, pile):
    connectors = list(pile.connectors.all())
    for c in connectors:
        c.connector_type = Connector.Type.AC_SOCKET
    Connector.objects.bulk_update(connectors, ["connector_type"])
    return lambda: _page()[0]["connectors"]["ac"]["total"] == 2


def _connector_added(station, pile):
    Connector.objects.bulk_create([Connector(pile=pile, number=3, connector_type=Connector.Type.DC,
                                             rated_power_kw=pile.rated_power_kw)])
    return lambda: _page()[0]["connectors"]["dc"]["total"] == 3


def _connector_deleted(station, pile):
    pile.connectors.get(number=2).delete()
    return lambda: _page()[0]["connectors"]["dc"]["total"] == 1


def _station_added(station, pile):
    make_station(name="新站", lat=LAT + 0.001, lng=LNG)
    return lambda: [r["name"] for r in _page()] == ["快照站", "新站"]


def _station_deleted(station, pile):
    pile.connectors.all().delete()
    pile.delete()  # (a station's piles protect it)
    station.delete()
    return lambda: _page() == []


def _partner_station_added(station, pile):
    PartnerStation.objects.create(
        partner="MA1AGGR01", partner_name="伙伴", our_operator_id="MA59TEST1", station_id="S1",
        name="伙伴站", latitude=Decimal("31.25"), longitude=Decimal("121.45"), status=50,
        pulled_at=datetime.now(UTC))
    return lambda: [p.get("partner", False) for p in selectors.map_pins(**BOX)[0]] == [False, True]


@pytest.mark.parametrize("write", [
    _rename, _reprice, _pile_disabled, _connector_bulk_update, _connector_added,
    _connector_deleted, _station_added, _station_deleted, _partner_station_added,
])
def test_every_kind_of_write_renews_the_snapshot(estate, write):
    station, pile = estate
    _page()
    selectors.map_pins(**BOX)
    before, kept = _token(), _kept()
    assert kept is not None and kept.token == before
    shows_the_change = write(station, pile)
    assert _token() == before  # not before commit: no other process can see the change yet
    assert shows_the_change()  # this transaction's own read builds a snapshot for itself
    assert _kept() is kept  # built inside the writing transaction: used, never kept
    _commit()
    assert _token() != before  # on commit: every process rebuilds
    assert shows_the_change()
    assert _kept() is not kept and _kept().token == _token()


@pytest.mark.parametrize("write", [_pile_offline, _connector_status])
def test_a_status_write_renews_the_snapshot_within_the_refresh_interval(estate, write, settings):
    station, pile = estate
    _page()
    estate_token, before, kept = _token(), _token(generation.STATUS), _kept()
    assert kept.status_token == before
    shows_the_change = write(station, pile)
    assert _token(generation.STATUS) == before  # not before commit
    assert shows_the_change()  # this transaction's own read: built for it, not kept
    assert _kept() is kept
    _commit()
    assert _token() == estate_token  # not the estate: statuses
    assert _token(generation.STATUS) != before
    # Within the interval the kept snapshot answers (its database statuses a moment old;
    # the live ones from Redis are merged all the same) ...
    settings.STATION_SNAPSHOT_STATUS_REFRESH_MS = 60_000
    assert not shows_the_change() and _kept() is kept
    # ... and past it, the next request rebuilds.
    settings.STATION_SNAPSHOT_STATUS_REFRESH_MS = 0
    assert shows_the_change()
    assert _kept() is not kept and _kept().status_token == _token(generation.STATUS)


def test_while_a_status_rebuild_runs_the_kept_snapshot_answers(estate, settings):
    _, pile = estate
    _page()
    kept = _kept()
    _connector_status(*estate)
    _commit()
    settings.STATION_SNAPSHOT_STATUS_REFRESH_MS = 0
    with snapshot._build_lock(connection.schema_name):  # another request is rebuilding
        assert _dc_free() == 2 and _kept() is kept
    assert _dc_free() == 1 and _kept() is not kept


def test_a_write_of_what_the_snapshot_does_not_read_renews_nothing(estate):
    station, pile = estate
    _page()
    tokens, kept = (_token(), _token(generation.STATUS)), _kept()
    Pile.objects.filter(pk=pile.pk).update(last_seen_at=datetime.now(UTC))
    pile.firmware_version = "V2.0"
    pile.save(update_fields=["firmware_version"])
    Station.objects.filter(pk=station.pk).update(phone="020-1234567")
    _commit()
    assert (_token(), _token(generation.STATUS)) == tokens
    _page()
    assert _kept() is kept


def test_what_a_write_renews():
    assert generation.write_kind(Connector, ["status", "status_changed_at"]) == generation.STATUS
    assert generation.write_kind(Pile, {"online", "last_seen_at"}) == generation.STATUS
    assert generation.write_kind(Pile, ["online", "enabled"]) == generation.ESTATE
    assert generation.write_kind(Pile, ["station_id"]) == generation.ESTATE  # attname
    assert generation.write_kind(Pile, ["last_seen_at", "updated_at"]) is None
    assert generation.write_kind(Station, None) == generation.ESTATE  # a whole row
    assert generation.write_kind(PartnerStation, ["pulled_at"]) == generation.ESTATE


def test_a_write_that_rolls_back_leaves_no_snapshot_of_it(estate):
    from django.db import transaction

    _page()
    kept = _kept()
    with pytest.raises(RuntimeError), transaction.atomic():
        Station.objects.filter(pk=estate[0].pk).update(name="回滚站")
        assert _page()[0]["name"] == "回滚站"
        raise RuntimeError
    assert _page()[0]["name"] == "快照站"
    assert _kept() is kept  # nothing was bumped: the write never committed


def test_a_lost_generation_rebuilds_the_snapshot(estate):
    _page()
    kept = _kept()
    live.client().delete(generation.generation_key(connection.schema_name))
    _page()
    assert _kept() is not kept and _kept().token == _token() != kept.token


def test_two_operators_never_see_each_others_snapshot(estate, other_tenant, operators):
    tenant_a = connection.tenant
    assert [r["name"] for r in _page()] == ["快照站"]
    connection.set_tenant(other_tenant)
    try:
        make_station(name="乙方站", lat=LAT, lng=LNG)
        _commit()
        assert [r["name"] for r in _page()] == ["乙方站"]
        assert [p["id"] for p in selectors.station_map_pins(**BOX)[0]] == \
            [s.pk for s in Station.objects.all()]
        b_snapshot = _kept()
    finally:
        connection.set_tenant(tenant_a)
    assert [r["name"] for r in _page()] == ["快照站"]
    assert _kept() is not b_snapshot
    assert {s.name for s in _kept().stations} == {"快照站"}
    assert {s.name for s in b_snapshot.stations} == {"乙方站"}


def _fake(size: int) -> snapshot.Snapshot:
    return snapshot.Snapshot(token="t", status_token="s", stations=[snapshot.SnapStation() for _ in range(size)],
                             by_rank=[], grid={}, has_partners=False)


def test_snapshots_are_bounded_least_recently_used_first(settings):
    settings.STATION_SNAPSHOT_MAX_STATIONS = 10
    for i in range(4):
        snapshot.keep(f"op{i}", _fake(3))  # 12 stations > 10: op0 goes
    assert [snapshot.cached(f"op{i}") is not None for i in range(4)] == [False, True, True, True]
    assert snapshot.cached("op1") is not None  # now the most recently used
    snapshot.keep("op4", _fake(3))  # op2 is the least recently used
    assert [snapshot.cached(f"op{i}") is not None for i in (1, 2, 3, 4)] == [True, False, True, True]
    snapshot.keep("huge", _fake(11))  # past the bound alone: served, not kept
    assert snapshot.cached("huge") is None and snapshot.cached("op4") is not None
    snapshot.keep("op4", _fake(9))  # a rebuilt, bigger one pushes the others out
    assert [snapshot.cached(f"op{i}") is not None for i in (1, 3, 4)] == [False, False, True]


def test_the_grid_finds_what_a_scan_finds(tenant):
    points = [(LAT + i * 0.037, LNG - i * 0.051) for i in range(-12, 13)]
    for i, (lat, lng) in enumerate(points):
        make_station(name=f"格{i}", lat=lat, lng=lng)
    snap = snapshot.build(None)
    for box in ((31.0, 31.5, 121.0, 122.0), (31.1999, 31.3001, 121.3, 121.55), (30.0, 30.1, 120.0, 120.1),
                (-90, 90, -180, 180)):
        scan = [s.id for s in snap.stations if box[0] <= s.lat <= box[1] and box[2] <= s.lng <= box[3]]
        assert [s.id for s in snap.in_box(*box)] == scan


def test_a_write_goes_on_without_redis_and_this_process_drops_its_snapshots(estate, monkeypatch):
    import redis

    station, _ = estate
    _page()
    assert _kept() is not None

    class Down:
        def set(self, *args, **kwargs):
            raise redis.exceptions.ConnectionError("No connection available.")

    with monkeypatch.context() as m:
        m.setattr(generation.live, "client", lambda: Down())
        Station.objects.filter(pk=station.pk).update(name="无缓存站")  # does not raise
        _commit()  # the bump fails: logged, not raised
    assert _kept() is None
    assert _page()[0]["name"] == "无缓存站"


def test_a_kept_snapshot_is_rebuilt_past_its_age(estate, settings):
    _page()
    kept = _kept()
    assert kept is not None
    settings.STATION_SNAPSHOT_MAX_AGE_S = 0
    kept.built -= 1
    assert _kept() is None
    _page()
    assert _kept() is not kept


def test_a_kept_snapshot_is_out_of_the_collectors_generations(estate):
    import gc

    _page()
    station = _kept().stations[0]
    assert gc.is_tracked(station)
    young = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert id(station) not in young  # frozen: full collections do not walk it
    assert gc.get_freeze_count() > 0
