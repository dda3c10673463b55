"""Races on committed data (each thread its own connection): two offers of one freed
connector, a walk-up reservation against the queue's offer, two re-plans at once."""

from __future__ import annotations

import itertools
import threading
import time
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_context

from charging import port, services
from charging.models import ChargingOrder, OrderState, PowerPlan, QueueEntry, Reservation
from charging.services.common import OrderRefused

SCHEMA = "op_tenant_a"
# The database is set up for this module; the test's own connection stays unused (its
# transaction would hide the threads' commits): every step runs through ``committed``.
pytestmark = pytest.mark.django_db
D = Decimal
_n = itertools.count(1)


def committed(fn):
    """Run ``fn`` in the operator's schema in a thread of its own (its own connection,
    autocommit); returns its result or raises its exception."""
    out: dict = {}

    def run():
        try:
            with schema_context(SCHEMA):
                out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    if "error" in out:
        raise out["error"]
    return out.get("value")


@pytest.fixture
def live(operators, django_db_blocker):
    """A station with one busy DC pile and three members, committed; removed afterwards."""
    with django_db_blocker.unblock():
        made = committed(_make)
        try:
            yield made
        finally:
            committed(lambda: _remove(*made))


def _make():
    from accounts.models import Member
    from stations.models import Connector, Pile, Station

    tag = f"{int(time.time() * 1000) % 10**8:08d}"
    station = Station.objects.create(name="排队站", code=f"Q{tag}", address="-", area_code="440106",
                                     latitude=D("23.1"), longitude=D("113.3"))
    pile = Pile.objects.create(station=station, code=f"440106{tag}", rated_power_kw=D("120"),
                               online=True)
    Connector.objects.create(pile=pile, number=1, rated_power_kw=D("120"), qr_code=f"qq{tag}",
                             status=Connector.Status.CHARGING)
    members = [Member.objects.create(openid=f"openid-race-{tag}-{i}") for i in range(3)]
    return station, pile, members


def _remove(station, pile, members):
    from accounts.models import Member
    from stations.models import Pile

    QueueEntry.objects.filter(station=station).delete()
    Reservation.objects.filter(connector__pile=pile).delete()
    PowerPlan.objects.filter(station=station).delete()
    ChargingOrder.objects.filter(station=station).delete()
    Pile.objects.filter(station=station).delete()
    station.delete()
    Member.objects.filter(pk__in=[m.pk for m in members]).delete()


def together(*calls):
    """Run the calls at once, each in a thread on its own connection in the operator's
    schema; returns their results (or the exceptions raised)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, fn):
        try:
            with schema_context(SCHEMA):
                barrier.wait(10)
                results[i] = fn()
        except Exception as exc:  # reported to the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_offers_at_once_give_one_freed_connector_to_one_driver(live, django_db_blocker):
    station, pile, members = live
    with django_db_blocker.unblock():
        committed(lambda: _two_offers(station, pile, members))


def _two_offers(station, pile, members):
    first = services.queue_join(member=members[0], station=station)
    services.queue_join(member=members[1], station=station)
    pile.connectors.update(status="idle")
    results = together(*[lambda: services.queue_offer(station_id=station.pk)] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert Reservation.objects.filter(connector__pile=pile, state="active").count() == 1
    states = dict(QueueEntry.objects.filter(station=station).values_list("member_id", "state"))
    assert states == {members[0].pk: "offered", members[1].pk: "waiting"}
    assert Reservation.objects.get(connector__pile=pile, state="active").member_id == first.member_id


def test_a_walk_up_reservation_racing_the_queue_offer_leaves_one_holder(live, django_db_blocker):
    station, pile, members = live
    with django_db_blocker.unblock():
        committed(lambda: _walk_up(station, pile, members))


def _walk_up(station, pile, members):
    services.queue_join(member=members[0], station=station)
    pile.connectors.update(status="idle")
    connector = pile.connectors.get()
    results = together(
        lambda: services.queue_offer(station_id=station.pk),
        lambda: services.reservation_create(member=members[2], connector=connector),
    )
    holders = list(Reservation.objects.filter(connector=connector, state="active")
                   .values_list("member_id", flat=True))
    assert len(holders) == 1
    entry = QueueEntry.objects.get(station=station)
    if holders == [members[0].pk]:
        assert entry.state == "offered"
        assert isinstance(results[1], OrderRefused) and results[1].code in (
            "connector_reserved", "connector_busy")
    else:
        assert holders == [members[2].pk]
        assert entry.state == "waiting" and results[0] == []


def test_re_plans_at_once_never_sum_above_the_limit(live, django_db_blocker, monkeypatch):
    from charging import bus

    station, pile, members = live
    sent: list = []

    def fake_send(schema, command, timeout=10.0):
        sent.append(command)
        time.sleep(0.05)  # a slow pile: the plans overlap if nothing serialises them
        return port.CommandResult(ok=True, detail={"applied_kw": str(command.max_power_kw)})

    monkeypatch.setattr(bus, "send", fake_send)
    with django_db_blocker.unblock():
        committed(lambda: _replans(station, pile, sent))


def _replans(station, pile, sent):
    from stations.models import Connector, Pile

    station.max_power_kw = D("200")
    station.save()
    piles = [pile]
    for i in range(3):
        other = Pile.objects.create(station=station, code=f"{pile.code[:-2]}{(int(pile.code[-2:]) + 1 + i) % 100:02d}",
                                    rated_power_kw=D("120"), online=True)
        Connector.objects.create(pile=other, number=1, rated_power_kw=D("120"),
                                 qr_code=f"{pile.code}-{i}", status="charging")
        piles.append(other)
    for p in piles:
        n = next(_n)
        ChargingOrder.objects.create(
            number=f"CDRACE{p.code[-8:]}{n:04d}", connector=p.connectors.get(), pile=p,
            station=station, trade_no=f"{p.code}01{n:016d}", mode="wallet",
            state=OrderState.CHARGING, started_at=timezone.now())
    results = together(*[lambda: services.station_power_plan(station_id=station.pk)] * 3)
    assert not [r for r in results if isinstance(r, Exception)], results
    caps = dict(Pile.objects.filter(station=station).values_list("code", "power_cap_kw"))
    assert sum(caps.values()) <= D("200")
    assert set(caps.values()) == {D("50.0")}
    # Serialised: the first plan sent four caps, the others found nothing to change.
    assert len(sent) == 4
    for plan in PowerPlan.objects.filter(station=station):
        assert plan.total_kw <= plan.limit_kw
