"""The station queue (offers, hold expiry, passing on, leaving, start rules) and load
management (caps sent to piles under the station limit, two phases, a pile that does not
answer), through the services, on the test transaction."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charging import port, services
from charging.models import (
    ChargingOrder,
    ChargingPolicy,
    OrderState,
    PowerPlan,
    QueueEntry,
    Reservation,
)
from charging.services.common import OrderRefused

D = Decimal
_n = itertools.count(1)


@pytest.fixture
def members(tenant):
    from accounts.models import Member

    return [Member.objects.create(openid=f"openid-q-{i}", nickname=f"车主{i}") for i in range(4)]


def make_pile(station, *, rated="120", status="charging", online=True, connectors=1, dc=True):
    from stations.models import Connector, Pile

    n = next(_n)
    pile = Pile.objects.create(station=station, code=f"4401069{n:07d}", rated_power_kw=D(rated),
                               online=online, connector_count=connectors)
    for no in range(1, connectors + 1):
        Connector.objects.create(
            pile=pile, number=no, rated_power_kw=D(rated), qr_code=f"q-{n}-{no}", status=status,
            connector_type=Connector.Type.DC if dc else Connector.Type.AC_SOCKET)
    return pile


def running_order(pile, member=None, state=OrderState.CHARGING, connector_no=1):
    n = next(_n)
    return ChargingOrder.objects.create(
        number=f"CDTEST{n:010d}", member=member, connector=pile.connectors.get(number=connector_no),
        pile=pile, station=pile.station, trade_no=f"{pile.code}{connector_no:02d}{n:016d}",
        mode="wallet", state=state, started_at=timezone.now(),
    )


def set_status(pile, status, no=1):
    pile.connectors.filter(number=no).update(status=status)


# --- the queue ---------------------------------------------------------------------------


def test_joining_is_refused_while_a_connector_is_free(station, members):
    make_pile(station, status="idle")
    with pytest.raises(OrderRefused) as refused:
        services.queue_join(member=members[0], station=station)
    assert refused.value.code == "connector_free"


def test_drivers_queue_in_order_with_a_wait_from_the_running_sessions(station, members):
    pile = make_pile(station)
    order = running_order(pile)
    ChargingOrder.objects.filter(pk=order.pk).update(started_at=timezone.now() - timedelta(minutes=15))
    first = services.queue_join(member=members[0], station=station, kind="dc")
    second = services.queue_join(member=members[1], station=station, kind="")
    a, b = services.queue_status(first), services.queue_status(second)
    assert (a.position, b.position) == (1, 2)
    # typical DC session 45 min, 15 charged: 30 min; the next waits one more session.
    assert a.wait_min == 30
    assert b.wait_min == 75
    with pytest.raises(OrderRefused) as again:
        services.queue_join(member=members[0], station=station)
    assert again.value.code == "queue_exists"
    with pytest.raises(OrderRefused) as ac:
        services.queue_join(member=members[2], station=station, kind="ac")
    assert ac.value.code == "no_such_connector"


def test_a_freed_connector_is_offered_to_the_first_with_a_hold_window(station, members):
    pile = make_pile(station)
    order = running_order(pile)
    first = services.queue_join(member=members[0], station=station)
    services.queue_join(member=members[1], station=station)
    assert services.queue_offer(station_id=station.pk) == []  # nothing free yet
    ChargingOrder.objects.filter(pk=order.pk).update(state=OrderState.SETTLED)
    set_status(pile, "plugged")  # the car is still there: blocked
    assert services.queue_offer(station_id=station.pk) == []
    set_status(pile, "idle")  # unplugged
    now = timezone.now()
    offered = services.queue_offer(station_id=station.pk, now=now)
    assert [e.pk for e in offered] == [first.pk]
    first.refresh_from_db()
    assert first.state == QueueEntry.State.OFFERED
    assert first.reservation.connector == pile.connectors.get()
    assert first.reservation.expires_at == now + timedelta(minutes=ChargingPolicy.current().queue_hold_minutes)
    status = services.queue_status(first, now=now + timedelta(minutes=1))
    assert (status.position, status.expires_in_s) == (0, 4 * 60)
    # Offering again changes nothing.
    assert services.queue_offer(station_id=station.pk) == []


def test_an_offer_not_taken_passes_to_the_next(station, members):
    pile = make_pile(station, status="idle")
    running_order(pile)
    first = services.queue_join(member=members[0], station=station)
    second = services.queue_join(member=members[1], station=station)
    ChargingOrder.objects.filter(pile=pile).update(state=OrderState.SETTLED)
    now = timezone.now()
    services.queue_offer(station_id=station.pk, now=now)
    assert services.queue_expire(now=now + timedelta(minutes=4)) == 0
    assert services.queue_expire(now=now + timedelta(minutes=6)) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == QueueEntry.State.PASSED and "no-show" in first.end_reason
    assert first.reservation.state == Reservation.State.EXPIRED
    assert second.state == QueueEntry.State.OFFERED
    assert second.reservation.connector_id == first.reservation.connector_id


def test_declining_or_leaving_passes_the_connector_on(station, members):
    pile = make_pile(station, status="idle")
    running_order(pile)
    entries = [services.queue_join(member=m, station=station) for m in members[:3]]
    ChargingOrder.objects.filter(pile=pile).update(state=OrderState.SETTLED)
    services.queue_offer(station_id=station.pk)
    services.queue_decline(entry=QueueEntry.objects.get(pk=entries[0].pk))
    services.queue_offer(station_id=station.pk)  # (the task queued after commit)
    services.queue_leave(entry=QueueEntry.objects.get(pk=entries[1].pk))
    services.queue_offer(station_id=station.pk)
    states = [QueueEntry.objects.get(pk=e.pk).state for e in entries]
    assert states == [QueueEntry.State.PASSED, QueueEntry.State.CANCELLED, QueueEntry.State.OFFERED]
    with pytest.raises(OrderRefused):
        services.queue_leave(entry=QueueEntry.objects.get(pk=entries[0].pk))


def test_only_the_offered_driver_may_start_and_starting_serves_the_entry(
        station, members, tariff, funded_member):
    pile = make_pile(station, status="idle")
    running_order(pile)
    waiting = services.queue_join(member=funded_member, station=station)
    ChargingOrder.objects.filter(pile=pile).update(state=OrderState.SETTLED)
    services.queue_offer(station_id=station.pk)
    set_status(pile, "plugged")
    connector = pile.connectors.get()
    from charging.tests.money import wallet_credit

    wallet_credit(members[1], D("100.00"))
    with pytest.raises(OrderRefused) as refused:
        services.order_start(member=members[1], connector=connector)
    assert refused.value.code == "connector_reserved"
    order = services.order_start(member=funded_member, connector=connector)
    waiting.refresh_from_db()
    assert waiting.state == QueueEntry.State.SERVED
    assert waiting.reservation.state == Reservation.State.USED
    assert waiting.reservation.order == order


def test_offers_respect_the_kind(station, members):
    dc = make_pile(station, status="idle")
    ac = make_pile(station, rated="7", status="idle", dc=False)
    running_order(dc)
    running_order(ac)
    wants_dc = services.queue_join(member=members[0], station=station, kind="dc")
    wants_ac = services.queue_join(member=members[1], station=station, kind="ac")
    ChargingOrder.objects.filter(pile=ac).update(state=OrderState.SETTLED)
    offered = services.queue_offer(station_id=station.pk)
    assert [e.pk for e in offered] == [wants_ac.pk]
    wants_dc.refresh_from_db()
    assert wants_dc.state == QueueEntry.State.WAITING


# --- load management ---------------------------------------------------------------------


class FakeBus:
    """Stands in for charging.bus.send: piles named in ``silent`` do not answer."""

    def __init__(self):
        self.sent: list[port.PowerLimit] = []
        self.silent: set[str] = set()
        self.percent = False  # like YKC: the cap rounded down to a whole % of the rating

    def send(self, schema, command, timeout=10.0):
        assert isinstance(command, port.PowerLimit)
        self.sent.append(command)
        if command.pile_code in self.silent:
            return port.CommandResult(ok=False, error="timeout")
        applied = command.max_power_kw
        if self.percent:
            percent = int(command.max_power_kw * 100 // command.rated_power_kw)
            applied = (command.rated_power_kw * min(percent, 100) / 100).quantize(D("0.1"), "ROUND_DOWN")
        return port.CommandResult(ok=True, detail={"applied_kw": str(applied)})


@pytest.fixture
def fake_bus(monkeypatch):
    from charging import bus

    fake = FakeBus()
    monkeypatch.setattr(bus, "send", fake.send)
    return fake


def believed(piles):
    from stations.models import Pile

    return {p.code: Pile.objects.get(pk=p.pk).power_cap_kw for p in piles}


def test_four_120_kw_sessions_under_200_kw_get_50_each_and_a_fifth_waits_for_power(
        station, fake_bus):
    station.max_power_kw = D("200")
    station.save()
    fake_bus.percent = True
    piles = [make_pile(station) for _ in range(4)]
    for pile in piles:
        running_order(pile)
    plan = services.station_power_plan(station_id=station.pk, reason="test")
    assert {row["cap_kw"] for row in plan.caps} == {"50.0"}
    # 41 % of 120 kW: what the piles took, never above what was asked.
    assert set(believed(piles).values()) == {D("49.2")}
    assert plan.total_kw == D("196.8") <= plan.limit_kw
    # Planned again with nothing changed: nothing is sent.
    fake_bus.sent.clear()
    services.station_power_plan(station_id=station.pk)
    assert fake_bus.sent == []
    fake_bus.percent = False
    # A fifth 120 kW pile still fits (5 × 36 kW floors = 180); a sixth does not.
    fifth = make_pile(station, status="plugged")
    assert services.power_admits(station=station, pile=fifth)
    running_order(fifth)
    plan = services.station_power_plan(station_id=station.pk)
    assert plan.total_kw == D("200.0")
    assert set(believed(piles + [fifth]).values()) == {D("40.0")}
    assert [c.pile_code for c in fake_bus.sent][-1] == fifth.code  # lowered last: it was new
    sixth = make_pile(station, status="plugged")
    assert not services.power_admits(station=station, pile=sixth)


def test_caps_go_down_before_they_go_up(station, fake_bus):
    station.max_power_kw = D("200")
    station.save()
    a, b = make_pile(station), make_pile(station)
    first = running_order(a)
    running_order(b)
    services.station_power_plan(station_id=station.pk)
    assert believed([a, b]) == {a.code: D("100.0"), b.code: D("100.0")}
    c = make_pile(station)
    running_order(c)
    fake_bus.sent.clear()
    services.station_power_plan(station_id=station.pk)
    # 66.6 each: a and b are lowered before c (never capped, so at 120) is... lowered too.
    assert [cmd.pile_code for cmd in fake_bus.sent][:2] == [a.code, b.code]
    ChargingOrder.objects.filter(pk=first.pk).update(state=OrderState.SETTLED)
    fake_bus.sent.clear()
    services.station_power_plan(station_id=station.pk)
    assert [(cmd.pile_code, cmd.max_power_kw) for cmd in fake_bus.sent] == [
        (b.code, D("100.0")), (c.code, D("100.0"))]


def test_a_pile_that_does_not_take_a_lower_cap_is_counted_at_what_it_may_draw(station, fake_bus):
    station.max_power_kw = D("200")
    station.save()
    a, b = make_pile(station), make_pile(station)
    running_order(a)
    running_order(b)
    services.station_power_plan(station_id=station.pk)  # 100 + 100
    c = make_pile(station)
    running_order(c)
    fake_bus.silent.add(a.code)  # a stays at 100
    plan = services.station_power_plan(station_id=station.pk)
    caps = believed([a, b, c])
    assert caps[a.code] == D("100.0")
    assert sum(caps.values()) <= D("200")
    assert caps[b.code] == caps[c.code] == D("50.0")
    assert plan.assumed_kw == D("100.0")
    assert any(row["pile"] == a.code and row["ok"] is False for row in plan.caps)
    # The tick re-plans a station whose last plan had a pile that did not answer.
    fake_bus.silent.clear()
    counts = services.scheduling_tick(replan_after_s=300)
    assert counts["replanned"] == 1
    caps = believed([a, b, c])
    assert sum(caps.values()) <= D("200")
    assert max(caps.values()) - min(caps.values()) <= D("0.1")  # 66.7, 66.7, 66.6


def test_a_start_the_pile_cannot_cap_fails_before_it_draws_power(
        station, fake_bus, funded_member, tariff, monkeypatch):
    station.max_power_kw = D("200")
    station.save()
    pile = make_pile(station, status="plugged")
    order = services.order_start(member=funded_member, connector=pile.connectors.get())
    fake_bus.silent.add(pile.code)
    assert services.order_start_send(order_id=order.pk) == "power_cap_refused"
    order.refresh_from_db()
    assert order.state == OrderState.FAILED
    assert not any(isinstance(c, port.RemoteStart) for c in fake_bus.sent)


def test_a_station_without_a_limit_is_not_planned(station, fake_bus):
    running_order(make_pile(station))
    assert services.station_power_plan(station_id=station.pk) is None
    assert fake_bus.sent == [] and not PowerPlan.objects.exists()


def test_a_pile_with_one_gun_in_use_is_not_given_more_than_that_gun_takes(station, fake_bus):
    station.max_power_kw = D("200")
    station.save()
    two_guns = make_pile(station, rated="120", connectors=2)  # 2 × 120 kW guns on 120 kW
    two_guns.connectors.update(rated_power_kw=D("60"))
    one = make_pile(station)
    running_order(two_guns)
    running_order(one)
    services.station_power_plan(station_id=station.pk)
    assert believed([two_guns, one]) == {two_guns.code: D("60.0"), one.code: D("120.0")}
    running_order(two_guns, connector_no=2)
    services.station_power_plan(station_id=station.pk)
    assert believed([two_guns, one]) == {two_guns.code: D("100.0"), one.code: D("100.0")}


def test_the_offer_is_sent_as_a_subscribe_message_once_configured(station, members, monkeypatch):
    from accounts import wechat
    from charging import notify

    sent = []
    monkeypatch.setattr(wechat, "subscribe_message_send", lambda mp, **kw: sent.append(kw))
    pile = make_pile(station, status="idle")
    running_order(pile)
    entry = services.queue_join(member=members[0], station=station)
    ChargingOrder.objects.filter(pile=pile).update(state=OrderState.SETTLED)
    services.queue_offer(station_id=station.pk)
    assert notify.queue_offer_notify(entry_id=entry.pk) == "no_template"
    policy = ChargingPolicy.current()
    policy.queue_template_id = "TPL_QUEUE_OFFER"
    policy.save()
    assert notify.queue_offer_notify(entry_id=entry.pk) == "sent"
    (message,) = sent
    assert message["openid"] == members[0].openid and message["template_id"] == "TPL_QUEUE_OFFER"
    assert message["data"]["thing1"]["value"] == station.name
    assert message["data"]["character_string2"]["value"] == "1"
    services.queue_decline(entry=QueueEntry.objects.get(pk=entry.pk))
    assert notify.queue_offer_notify(entry_id=entry.pk) == "skipped"
