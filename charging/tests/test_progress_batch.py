"""The port's batch of live readings (``port.ProgressBatch``): each reading applied as a
single ``port.Progress`` would be, in a fixed number of statements per batch."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from charging import handlers, port, services
from charging.models import ChargingOrder, MeterSample, OrderState


@pytest.fixture
def piles(station, tariff):
    """Three piles of two connectors each, plugged, beside the fixtures' station."""
    from stations.models import Connector, Pile

    made = []
    for p in range(3):
        pile = Pile.objects.create(station=station, code=f"4401060000020{p}",
                                   rated_power_kw=Decimal("120.0"), online=True,
                                   connector_count=2)
        for n in (1, 2):
            Connector.objects.create(pile=pile, number=n, rated_power_kw=Decimal("60.0"),
                                     qr_code=f"qr-20{p}-{n}", status=Connector.Status.PLUGGED)
        made.append(pile)
    return made


def _charging_orders(piles, count):
    """``count`` orders charging, one per connector, each of its own funded member."""
    from accounts.models import Member
    from charging.tests.money import wallet_credit

    connectors = [c for pile in piles for c in pile.connectors.order_by("number")][:count]
    orders = []
    for i, connector in enumerate(connectors):
        member = Member.objects.create(openid=f"openid-batch-{i}", nickname=f"车主{i}")
        wallet_credit(member, Decimal("100.00"))
        order = services.order_start(member=member, connector=connector)
        services.order_start_result(port.StartResult(
            connector.pile.code, connector.number, order.trade_no, accepted=True,
            at=timezone.now() - timedelta(minutes=30)))
        orders.append(ChargingOrder.objects.get(pk=order.pk))
    return orders


def _reading(order, at, kwh, *, soc=None, power="22.00", trade_no=None):
    return port.Progress(
        pile_code=order.pile.code, connector_no=order.connector.number,
        status=port.ConnectorStatus.CHARGING, at=at,
        trade_no=order.trade_no if trade_no is None else trade_no,
        energy_kwh=Decimal(kwh), power_kw=Decimal(power), soc_percent=soc, sample=True)


def test_a_batch_of_several_piles_applies_each_reading(piles):
    orders = _charging_orders(piles, 4)
    now = timezone.now()
    batch = []
    for i, order in enumerate(orders):
        batch += [_reading(order, now, f"{i + 1}.0000", soc=30 + i),
                  _reading(order, now + timedelta(seconds=61), f"{i + 2}.0000", soc=50)]

    applied = handlers.dispatch(connection.schema_name, port.ProgressBatch(tuple(batch)))

    assert applied == 8
    for i, order in enumerate(orders):
        order.refresh_from_db()
        assert order.state == OrderState.CHARGING
        assert order.progress["energy_kwh"] == f"{i + 2}.0000"  # the last reading of each
        assert order.progress["at"] == (now + timedelta(seconds=61)).isoformat()
        assert order.last_progress_at == now + timedelta(seconds=61)
        assert order.soc_start == 30 + i  # the first SoC, not the last
        # A sample per interval (60 s): both readings, energies as read.
        assert list(order.samples.order_by("at").values_list("energy_kwh", flat=True)) == [
            Decimal(f"{i + 1}.0000"), Decimal(f"{i + 2}.0000")]


def test_the_batch_and_a_reading_alone_leave_the_same_order(piles):
    one, other = _charging_orders(piles, 2)
    now = timezone.now()
    readings = [(now, "1.5000", 40), (now + timedelta(seconds=20), "2.0000", 41),
                (now + timedelta(seconds=75), "3.2500", 45)]

    services.order_progress_batch(events=[_reading(one, at, kwh, soc=soc)
                                          for at, kwh, soc in readings])
    for at, kwh, soc in readings:
        services.order_progress(_reading(other, at, kwh, soc=soc))

    one.refresh_from_db()
    other.refresh_from_db()
    assert one.progress == other.progress
    assert (one.soc_start, one.last_progress_at) == (other.soc_start, other.last_progress_at)
    assert [(s.at, s.energy_kwh, s.power_kw) for s in one.samples.order_by("at")] == [
        (s.at, s.energy_kwh, s.power_kw) for s in other.samples.order_by("at")]
    assert one.samples.count() == 2  # 0 s and 75 s; 20 s is inside the interval


def test_statements_do_not_grow_with_the_readings(piles):
    orders = _charging_orders(piles, 6)
    start = timezone.now()

    def batch(orders, minute):
        at = start + timedelta(minutes=minute)
        return port.ProgressBatch(tuple(_reading(o, at, f"{minute}.0000") for o in orders))

    first, second = batch(orders[:2], 1), batch(orders, 2)
    schema = connection.schema_name
    with CaptureQueriesContext(connection) as two:
        handlers.dispatch(schema, first)
    with CaptureQueriesContext(connection) as six:
        handlers.dispatch(schema, second)

    assert len(six.captured_queries) == len(two.captured_queries)
    assert len(six.captured_queries) <= 8, [q["sql"][:80] for q in six.captured_queries]
    assert MeterSample.objects.filter(order__in=orders).count() == 8


def test_duplicates_and_unknown_transactions_lose_nothing_else(piles):
    one, two = _charging_orders(piles, 2)
    now = timezone.now()
    same = _reading(one, now, "1.0000")
    batch = (same, same,  # a queued reading sent twice
             _reading(two, now, "9.0000", trade_no="9" * 32),  # no such order
             _reading(two, now, "0", trade_no="0" * 32),  # the pile says: no session
             _reading(two, now, "2.0000"))

    applied = services.order_progress_batch(events=batch)

    assert [o.pk if o else None for o in applied] == [one.pk, one.pk, None, None, two.pk]
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.progress["energy_kwh"] == "1.0000" and one.samples.count() == 1
    assert two.progress["energy_kwh"] == "2.0000" and two.samples.count() == 1
    assert not MeterSample.objects.filter(trade_no="9" * 32).exists()


def test_one_bad_reading_does_not_lose_the_others(piles, caplog):
    one, two, three = _charging_orders(piles, 3)
    now = timezone.now()
    # A power past the sample's column (8 digits, 2 decimals): the database refuses it.
    batch = [_reading(one, now, "1.0000"), _reading(two, now, "2.0000", power="123456789.00"),
             _reading(three, now, "3.0000")]

    applied = services.order_progress_batch(events=batch)

    assert [o.pk if o else None for o in applied] == [one.pk, None, three.pk]
    for order, kwh, samples in ((one, "1.0000", 1), (two, None, 0), (three, "3.0000", 1)):
        order.refresh_from_db()
        assert order.progress.get("energy_kwh") == kwh
        assert order.samples.count() == samples
    assert "dropped" in caplog.text


def test_a_bad_reading_alone_raises_as_before(piles):
    (order,) = _charging_orders(piles, 1)
    from django.db import DataError

    with pytest.raises(DataError):
        services.order_progress(_reading(order, timezone.now(), "1.0000",
                                         power="123456789.00"))


def test_a_start_is_confirmed_and_a_stop_waiting_is_confirmed_in_a_batch(piles):
    from accounts.models import Member
    from charging.tests.money import wallet_credit

    (charging,) = _charging_orders(piles, 1)
    member = Member.objects.create(openid="openid-batch-starting", nickname="车主S")
    wallet_credit(member, Decimal("100.00"))
    connector = piles[2].connectors.get(number=2)
    starting = services.order_start(member=member, connector=connector)
    services.order_stop(order_id=charging.pk, actor="member")
    later = timezone.now() + timedelta(seconds=5)
    idle = port.Progress(pile_code=charging.pile.code, connector_no=charging.connector.number,
                         status=port.ConnectorStatus.IDLE, at=later)
    other_idle = port.Progress(pile_code=piles[1].code, connector_no=1,
                               status=port.ConnectorStatus.IDLE, at=later)

    services.order_progress_batch(events=[
        idle, other_idle,
        port.Progress(pile_code=connector.pile.code, connector_no=connector.number,
                      status=port.ConnectorStatus.CHARGING, at=later,
                      trade_no=starting.trade_no, energy_kwh=Decimal("0.5000"))])

    charging.refresh_from_db()
    starting.refresh_from_db()
    assert charging.stop_confirmed_at == later and charging.stop_result == "idle"
    assert starting.state == OrderState.CHARGING and starting.started_at == later
    assert starting.progress["energy_kwh"] == "0.5000"


def test_each_order_is_pushed_once_per_batch_with_its_last_reading(piles):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from charging.realtime import order_group

    orders = _charging_orders(piles, 2)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    for order in orders:
        async_to_sync(layer.group_add)(order_group(connection.schema_name, order.pk), channel)
    now = timezone.now()
    readings = [_reading(o, now + timedelta(seconds=s), kwh) for o in orders
                for s, kwh in ((0, "1.0000"), (10, "1.5000"))]

    services.order_progress_batch(events=readings)

    async def receive_all():
        return [await layer.receive(channel) for _ in orders]

    got = async_to_sync(receive_all)()
    assert sorted((m["order"]["id"], m["order"]["progress"]["energy_kwh"]) for m in got) == [
        (o.pk, "1.5000") for o in sorted(orders, key=lambda o: o.pk)]
