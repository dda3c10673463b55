"""Offline detection, coming back online, and the merge of Redis live values with the DB."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection

from evplatform.tenancy import for_each_active_operator, run_in_each_active_operator
from stations import live, selectors, services, tasks
from stations.models import Connector, Fault, Pile
from tenants.models import Operator

from .conftest import make_pile, make_station

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _pile(**kw):
    return make_pile(make_station(), heartbeat_interval_s=10, **kw)


def test_pile_silent_for_three_heartbeats_goes_offline(tenant):
    pile = _pile()
    live.pile_seen(connection.schema_name, pile.code, NOW - timedelta(seconds=31))
    assert services.piles_mark_offline(now=NOW) == [pile.code]
    pile.refresh_from_db()
    assert pile.online is False
    assert pile.last_seen_at == NOW - timedelta(seconds=31)
    assert set(pile.connectors.values_list("status", flat=True)) == {Connector.Status.OFFLINE}
    fault = Fault.objects.get(pile=pile)
    assert (fault.source, fault.code, fault.cleared_at) == ("offline", "offline", None)
    assert fault.started_at == NOW - timedelta(seconds=31)


def test_pile_seen_within_three_heartbeats_stays_online(tenant):
    pile = _pile()
    live.pile_seen(connection.schema_name, pile.code, NOW - timedelta(seconds=29))
    assert services.piles_mark_offline(now=NOW) == []
    pile.refresh_from_db()
    assert pile.online is True
    assert not Fault.objects.exists()


def test_second_check_opens_no_second_fault(tenant):
    pile = _pile()
    live.pile_seen(connection.schema_name, pile.code, NOW - timedelta(minutes=5))
    services.piles_mark_offline(now=NOW)
    assert services.piles_mark_offline(now=NOW + timedelta(minutes=1)) == []
    assert Fault.objects.filter(pile=pile).count() == 1


def test_without_redis_the_db_last_seen_decides_with_slack(tenant):
    fresh = _pile()
    stale = _pile()
    Pile.objects.filter(pk=fresh.pk).update(last_seen_at=NOW - timedelta(seconds=80))
    Pile.objects.filter(pk=stale.pk).update(last_seen_at=NOW - timedelta(seconds=95))
    assert services.piles_mark_offline(now=NOW) == [stale.code]


def test_never_seen_online_pile_goes_offline(tenant):
    pile = _pile()
    assert services.piles_mark_offline(now=NOW) == [pile.code]


def test_offline_pile_comes_back_online_by_itself(tenant):
    pile = _pile()
    live.pile_seen(connection.schema_name, pile.code, NOW - timedelta(minutes=5))
    services.piles_mark_offline(now=NOW)
    back = NOW + timedelta(minutes=1)
    assert services.pile_mark_online(pile_code=pile.code, at=back) is True
    pile.refresh_from_db()
    assert pile.online is True
    assert pile.last_seen_at == back
    assert set(pile.connectors.values_list("status", flat=True)) == {Connector.Status.IDLE}
    assert Fault.objects.get(pile=pile).cleared_at == back
    assert live.pile_last_seen(connection.schema_name, pile.code) == back
    # A second frame soon after writes Redis only.
    assert services.pile_mark_online(pile_code=pile.code, at=back + timedelta(seconds=5)) is False
    pile.refresh_from_db()
    assert pile.last_seen_at == back


def test_frame_after_back_online_prevents_offline(tenant):
    pile = _pile()
    services.pile_mark_online(pile_code=pile.code, at=NOW - timedelta(seconds=5))
    assert services.piles_mark_offline(now=NOW) == []


def test_a_closed_connection_goes_offline_though_its_last_frames_reach_redis_late(
        tenant, monkeypatch):
    """The gateway batches last-seen writes: the closed connection's last frame (before the
    close) may land between the offline decision's two reads. Only a frame after the close
    keeps the pile online."""
    pile = _pile()
    live.pile_seen(connection.schema_name, pile.code, NOW - timedelta(seconds=20))
    reads = iter([NOW - timedelta(seconds=20), NOW - timedelta(seconds=1)])
    # The offline mark's two reads of Redis (before its decision, after its lock).
    monkeypatch.setattr(live, "piles_last_seen",
                        lambda schema, codes: {code: next(reads) for code in codes})
    assert services.pile_mark_offline(pile_code=pile.code, at=NOW) is True
    pile.refresh_from_db()
    assert pile.online is False

    services.pile_mark_online(pile_code=pile.code, at=NOW + timedelta(seconds=5))
    reads = iter([NOW + timedelta(seconds=5), NOW + timedelta(seconds=12)])
    assert services.pile_mark_offline(pile_code=pile.code, at=NOW + timedelta(seconds=10)) is False
    pile.refresh_from_db()
    assert pile.online is True


def test_unknown_pile_code_is_ignored(tenant):
    assert services.pile_mark_online(pile_code="99999999999999", at=NOW) is False


def test_task_runs_the_check_in_the_current_schema(tenant):
    pile = _pile()
    assert tasks.piles_check_offline() == [pile.code]


def test_live_merge_prefers_the_fresher_redis_values(tenant):
    pile = _pile()
    c1, c2 = pile.connectors.order_by("number")
    Connector.objects.filter(pk=c1.pk).update(status_changed_at=NOW)
    c1.refresh_from_db()
    live.connector_update(
        connection.schema_name, pile.code, 1, status="charging", power_kw=Decimal("58.3"),
        voltage_v=Decimal("402.5"), current_a=Decimal("144.8"), soc_percent=63,
        updated=(NOW + timedelta(seconds=3)).isoformat(),
    )
    states = selectors.connectors_live([c1, c2])
    assert states[c1.pk] == {
        "status": "charging",
        "power_kw": Decimal("58.3"),
        "voltage_v": Decimal("402.5"),
        "current_a": Decimal("144.8"),
        "soc_percent": 63,
        "updated": NOW + timedelta(seconds=3),
    }
    assert states[c2.pk]["status"] == "idle"
    assert states[c2.pk]["power_kw"] is None


def test_live_merge_keeps_a_newer_db_status(tenant):
    pile = _pile()
    c1 = pile.connectors.get(number=1)
    Connector.objects.filter(pk=c1.pk).update(status="fault", status_changed_at=NOW)
    c1.refresh_from_db()
    live.connector_update(
        connection.schema_name, pile.code, 1, status="idle", updated=(NOW - timedelta(minutes=1)).isoformat()
    )
    assert selectors.connectors_live([c1])[c1.pk]["status"] == "fault"


def test_live_merge_shows_offline_pile_connectors_offline(tenant):
    pile = _pile(online=False)
    c1 = pile.connectors.get(number=1)
    live.connector_update(connection.schema_name, pile.code, 1, status="idle")
    assert selectors.connectors_live([c1])[c1.pk]["status"] == "offline"


class _Recorder:
    def __init__(self):
        self.calls = []

    def apply_async(self, args=(), kwargs=None):
        self.calls.append((connection.schema_name, tuple(args), kwargs))


def test_fan_out_queues_once_per_active_operator(tenant, other_tenant):
    recorder = _Recorder()
    assert for_each_active_operator(recorder, 1, x=2) == ["op_tenant_a", "op_tenant_b"]
    assert recorder.calls == [("op_tenant_a", (1,), {"x": 2}), ("op_tenant_b", (1,), {"x": 2})]
    assert connection.schema_name == "op_tenant_a"  # the caller's schema is back


def test_fan_out_skips_suspended_operators(tenant, other_tenant):
    Operator.objects.filter(pk=other_tenant.pk).update(status=Operator.Status.SUSPENDED)
    recorder = _Recorder()
    assert for_each_active_operator(recorder) == ["op_tenant_a"]
    assert run_in_each_active_operator(lambda: connection.schema_name) == {"op_tenant_a": "op_tenant_a"}


def test_beat_schedule_fans_out_the_offline_check(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["stations-piles-offline"]
    assert entry["task"] == "evplatform.fan_out"
    assert entry["args"] == ["stations.piles_check_offline"]


def test_connectors_status_answers_each_id_in_order_in_one_command(tenant):
    """Known, unknown and status-only hashes, in the order asked (one script call: the
    ids travel as one argument, the answer as one string)."""
    import pytest

    schema = connection.schema_name
    live.connector_update(schema, "32010600000001", 1, status="charging")
    live.connector_update(schema, "32010600000001", 2, power_kw="7.0")  # no status
    live.client().hset(live.connector_key(schema, "32010600000002", 1), "status", "idle")  # no time
    ids = ["32010600000002:1", "32010600000009:1", "32010600000001:1", "32010600000001:2"]
    got = live.connectors_status(schema, ids)
    assert [s for s, _ in got] == ["idle", None, "charging", None]
    assert got[0][1] is None and got[1] == (None, None)
    assert live.updated_epoch(got[2][1]) is not None
    assert live.connectors_status(schema, []) == []
    assert live.connectors_status(schema, ids[1:2]) == [(None, None)]
    with pytest.raises(ValueError):
        live.connectors_status(schema, ["32010600000001:1", ""])


def test_many_piles_marked_online_at_once_as_one_by_one_in_fixed_statements(tenant):
    from django.test.utils import CaptureQueriesContext

    offline = [_pile() for _ in range(3)]
    for pile in offline:
        live.pile_seen(connection.schema_name, pile.code, NOW - timedelta(minutes=5))
    services.piles_mark_offline(now=NOW)
    fresh, stale = _pile(), _pile()  # online: last seen 33 s and 2 min before their mark
    Pile.objects.filter(pk=fresh.pk).update(last_seen_at=NOW + timedelta(seconds=30))
    Pile.objects.filter(pk=stale.pk).update(last_seen_at=NOW - timedelta(minutes=1))
    at = {pile.code: NOW + timedelta(minutes=1, seconds=i) for i, pile in
          enumerate([*offline, fresh, stale])}
    marks = [(code, when) for code, when in at.items()]
    marks.append((offline[0].code, at[offline[0].code] - timedelta(seconds=30)))  # older

    with CaptureQueriesContext(connection) as queries:
        back = services.piles_mark_online(marks=marks)

    assert back == sorted(p.code for p in offline)
    for pile in offline:
        pile.refresh_from_db()
        assert (pile.online, pile.last_seen_at) == (True, at[pile.code])
        assert set(pile.connectors.values_list("status_changed_at", flat=True)) == {at[pile.code]}
        assert set(pile.connectors.values_list("status", flat=True)) == {Connector.Status.IDLE}
        assert Fault.objects.get(pile=pile).cleared_at == at[pile.code]
        assert live.pile_last_seen(connection.schema_name, pile.code) == at[pile.code]
    fresh.refresh_from_db()
    stale.refresh_from_db()
    assert fresh.last_seen_at == NOW + timedelta(seconds=30)  # under a minute: Redis only
    assert stale.last_seen_at == at[stale.code]
    assert services.piles_mark_online(marks=[]) == []
    # SAVEPOINT, SELECT … FOR UPDATE, four UPDATEs, RELEASE (whatever the number of piles)
    assert len(queries) <= 7


def test_many_online_marks_at_once_as_each_alone(tenant, django_assert_max_num_queries):
    """``piles_mark_online`` (a gateway's marks of all its piles, gathered): a pile back
    comes back as with ``pile_mark_online``, a stale last-seen time moves, a recent one does
    not, an unknown code is ignored; in a fixed number of statements."""
    back, stale, recent = _pile(), _pile(), _pile()
    live.pile_seen(connection.schema_name, back.code, NOW - timedelta(minutes=5))
    services.piles_mark_offline(now=NOW)  # all three offline …
    Pile.objects.filter(pk__in=[stale.pk, recent.pk]).update(online=True)  # … two back
    Pile.objects.filter(pk=stale.pk).update(last_seen_at=NOW - timedelta(minutes=5))
    at = NOW + timedelta(minutes=1)
    Pile.objects.filter(pk=recent.pk).update(last_seen_at=at - timedelta(seconds=10))
    with django_assert_max_num_queries(7):  # SAVEPOINT, SELECT … FOR UPDATE, 4 UPDATEs, RELEASE
        came_back = services.piles_mark_online(marks=[
            (back.code, at), (stale.code, at), (recent.code, at), ("NOSUCHPILE0001", at)])
    assert came_back == [back.code]
    for pile in (back, stale, recent):
        pile.refresh_from_db()
        assert pile.online is True
        assert live.pile_last_seen(connection.schema_name, pile.code) == at
    assert back.last_seen_at == at and stale.last_seen_at == at
    assert recent.last_seen_at == at - timedelta(seconds=10)
    assert set(back.connectors.values_list("status", flat=True)) == {Connector.Status.IDLE}
    assert Fault.objects.get(pile=back).cleared_at == at
    # Connectors of the piles already online are not touched.
    assert Connector.objects.filter(pile__in=[stale, recent],
                                    status=Connector.Status.OFFLINE).count() == \
        Connector.objects.filter(pile__in=[stale, recent]).count()
    assert services.piles_mark_online(marks=[]) == []
