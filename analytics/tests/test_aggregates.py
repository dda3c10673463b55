"""Aggregates from settled orders: figures, idempotent rebuild, the per-order update, the
command, station scoping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from analytics import selectors, services
from analytics.models import ConnectorDay, ConnectorHour, MemberDay

DAY = date(2026, 3, 10)  # Asia/Shanghai; 02:00 UTC is 10:00 local


def _order(connector, member, n, *, stopped, energy="10.0000", elec="8.00", service="4.00", discount="1.00",
           refunded="0.00", state="settled"):
    from charging.models import ChargingOrder

    energy = Decimal(energy)
    total = Decimal(elec) + Decimal(service) - Decimal(discount)
    bill = {"period_energy": {"peak": str(energy * 3 / 5), "valley": str(energy * 2 / 5)},
            "lines": [{"periods": ["peak", "valley"], "energy_kwh": str(energy), "electricity_yuan": elec,
                       "service_yuan": service}]}
    return ChargingOrder.objects.create(
        number=f"CDT{n:06d}", member=member, connector=connector, pile=connector.pile,
        station=connector.pile.station, trade_no=f"T{n:031d}", mode="wallet", state=state,
        started_at=stopped - timedelta(minutes=30), stopped_at=stopped, energy_kwh=energy, bill=bill,
        electricity_amount=Decimal(elec), service_amount=Decimal(service), discount_amount=Decimal(discount),
        total_amount=total, paid_amount=total, refunded_amount=Decimal(refunded),
    )


@pytest.fixture
def orders(connector, member):
    at = datetime(2026, 3, 10, 2, 10, tzinfo=UTC)
    return [
        _order(connector, member, 1, stopped=at),
        _order(connector, member, 2, stopped=at + timedelta(minutes=20), energy="5.0000", elec="4.00",
               service="2.00", discount="0.00", refunded="1.50"),
        _order(connector, member, 3, stopped=at + timedelta(hours=2)),
        _order(connector, member, 4, stopped=at, state="charging"),  # not settled: not counted
        _order(connector, member, 5, stopped=datetime(2026, 3, 10, 16, 30, tzinfo=UTC)),  # 00:30 on the 11th
    ]


def test_day_rebuild_figures(orders, connector):
    assert services.stats_day_rebuild(day=DAY) == {"connector_days": 1}
    row = ConnectorDay.objects.get(connector=connector, day=DAY)
    assert row.orders == 3
    assert row.energy_kwh == Decimal("25.0000")
    assert row.energy_peak_kwh == Decimal("15.0000") and row.energy_valley_kwh == Decimal("10.0000")
    assert row.electricity_yuan == Decimal("20.00") and row.service_yuan == Decimal("10.00")
    assert row.discount_yuan == Decimal("2.00") and row.refund_yuan == Decimal("1.50")
    assert row.total_yuan == Decimal("28.00")
    assert row.revenue_peak_yuan + row.revenue_valley_yuan == Decimal("30.00")
    assert row.charging_s == 3 * 1800
    assert round(row.average_power_kw, 2) == Decimal("16.67")  # 25 kWh in 1.5 h
    hours = {h.hour: h.orders for h in ConnectorHour.objects.filter(connector=connector, day=DAY)}
    assert hours == {datetime(2026, 3, 10, 2, tzinfo=UTC): 2, datetime(2026, 3, 10, 4, tzinfo=UTC): 1}
    assert MemberDay.objects.get(day=DAY).active_members == 1


def test_rebuild_is_idempotent(orders, connector):
    services.stats_day_rebuild(day=DAY)
    first = list(ConnectorDay.objects.values().order_by("connector_id"))
    services.stats_day_rebuild(day=DAY)
    again = list(ConnectorDay.objects.values().order_by("connector_id"))
    assert [{k: v for k, v in r.items() if k != "id"} for r in first] == \
           [{k: v for k, v in r.items() if k != "id"} for r in again]
    assert ConnectorHour.objects.filter(day=DAY).count() == 2


def test_order_update_refreshes_its_day_only(orders, connector):
    services.stats_order_update(order_id=orders[4].pk)
    assert list(ConnectorDay.objects.values_list("day", "orders")) == [(date(2026, 3, 11), 1)]
    orders[0].refunded_amount = Decimal("3.00")
    orders[0].save()
    services.stats_order_update(order_id=orders[0].pk)
    services.stats_order_update(order_id=orders[0].pk)
    row = ConnectorDay.objects.get(day=DAY)
    assert (row.orders, row.refund_yuan) == (3, Decimal("4.50"))


def test_settling_queues_the_update(connector, member, django_capture_on_commit_callbacks):
    from charging.models import OrderTransition
    from charging.services import order_transition

    order = _order(connector, member, 9, stopped=datetime(2026, 3, 10, 2, tzinfo=UTC), state="finished")
    sent = []
    from evplatform import queue

    original = queue.app.send_task
    queue.app.send_task = lambda name, **kw: sent.append((name, kw["args"]))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            order_transition(order, "settled", actor=OrderTransition.Actor.SYSTEM)
    finally:
        queue.app.send_task = original
    assert ("analytics.order_update", (order.pk,)) in sent


def test_dashboard_selectors_read_the_aggregates(orders, station):
    from stations.models import Station

    services.stats_day_rebuild(day=DAY)
    stations = Station.objects.all()
    assert selectors.day_totals(stations, DAY)["total_yuan"] == Decimal("28.00")
    trend = selectors.daily_trend(stations, DAY - timedelta(days=1), DAY)
    assert [d["orders"] for d in trend] == [0, 3]
    assert selectors.station_ranking(stations, DAY, DAY)[0]["total_yuan"] == Decimal("28.00")
    assert selectors.day_totals(Station.objects.none(), DAY)["orders"] == 0
    power = selectors.hourly_power(stations, DAY)
    assert len(power) == 24 and power[10]["energy_kwh"] == Decimal("15.0000")


def test_command_rebuilds_a_range(orders, tenant, capsys):
    call_command("stats_rebuild", "--tenant", tenant.slug, "--from", "2026-03-10", "--to", "2026-03-11")
    assert "2026-03-11: 1 connector days" in capsys.readouterr().out
    from django.db import connection

    connection.set_tenant(tenant)
    assert ConnectorDay.objects.count() == 2
    with pytest.raises(CommandError):
        call_command("stats_rebuild", "--tenant", "nobody", "--from", "2026-03-10", "--to", "2026-03-11")
    with pytest.raises(CommandError):
        call_command("stats_rebuild", "--tenant", tenant.slug, "--from", "2026-03-11", "--to", "2026-03-10")


def test_operator_day_published_to_public(orders, tenant):
    from django_tenants.utils import schema_context

    from analytics.platform.models import OperatorDay

    services.stats_day_rebuild(day=DAY)
    with schema_context("public"):
        row = OperatorDay.objects.get(operator=tenant, day=DAY)
        assert (row.orders, row.gmv_yuan, row.piles) == (3, Decimal("28.00"), 1)


def test_station_days_sum_their_connector_days(orders, connector, member):
    from stations.models import Connector

    second = Connector.objects.create(pile=connector.pile, number=7, rated_power_kw=Decimal("60"), qr_code="qr-7")
    _order(second, member, 21, stopped=datetime(2026, 3, 10, 5, tzinfo=UTC), energy="7.0000", elec="5.00",
           service="3.00", discount="0.00")
    services.stats_day_rebuild(day=DAY)
    from analytics.models import StationDay

    day = StationDay.objects.get(station=connector.pile.station, day=DAY)
    parts = ConnectorDay.objects.filter(station=connector.pile.station, day=DAY)
    assert parts.count() == 2
    for field in StationDay.SUMMED:
        assert getattr(day, field) == sum(getattr(p, field) for p in parts), field
    assert day.peak_power_kw == max(p.peak_power_kw for p in parts)
    assert (day.orders, day.energy_kwh, day.total_yuan) == (4, Decimal("32.0000"), Decimal("36.00"))

    # One order's update rebuilds its station's row only, to the same figures as a full rebuild.
    orders[0].refunded_amount = Decimal("2.00")
    orders[0].save()
    services.stats_order_update(order_id=orders[0].pk)
    updated = StationDay.objects.get(station=connector.pile.station, day=DAY)
    services.stats_day_rebuild(day=DAY)
    rebuilt = StationDay.objects.get(station=connector.pile.station, day=DAY)
    assert updated.refund_yuan == rebuilt.refund_yuan == Decimal("3.50")
    assert StationDay.objects.filter(day=DAY).count() == 1
