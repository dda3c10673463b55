"""Meter samples: one model for the gateways' connector samples and the orders' own."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from charging import handlers, port, samples, services
from charging.models import MeterSample


def _reading(connector, at, *, trade_no=None, kwh="1.0000", status="charging"):
    return port.Progress(
        pile_code=connector.pile.code, connector_no=connector.number,
        status=port.ConnectorStatus(status), at=at, trade_no=trade_no, plugged=True,
        energy_kwh=Decimal(kwh), amount_yuan=Decimal("1.50"), power_kw=Decimal("38.00"),
        voltage_v=Decimal("380.0"), current_a=Decimal("100.0"), soc_percent=40,
        elapsed_min=3, remaining_min=50, fault_code="0x0001")


def test_gateway_samples_are_stored_and_linked_to_their_order(funded_member, connector, tariff):
    order = services.order_start(member=funded_member, connector=connector)
    now = timezone.now()

    handlers.handle(port.ReadingsSampled((
        _reading(connector, now, trade_no=order.trade_no, kwh="2.5000"),
        _reading(connector, now, status="idle", kwh="0"),
    )))

    linked, idle = MeterSample.objects.order_by("id")
    assert (linked.order_id, linked.trade_no, linked.status, linked.energy_kwh) == (
        order.pk, order.trade_no, "charging", Decimal("2.5000"))
    assert (linked.voltage_v, linked.fault_code, linked.elapsed_min) == (
        Decimal("380.0"), "0x0001", 3)
    assert (idle.order_id, idle.trade_no, idle.status) == (None, "", "idle")
    assert list(order.samples.all()) == [linked]


def test_an_order_keeps_a_sample_per_interval_only(funded_member, connector, tariff):
    order = services.order_start(member=funded_member, connector=connector)
    now = timezone.now()
    kept = [samples.sample_for_order(order, _reading(connector, now + timedelta(seconds=s)),
                                     energy_kwh=Decimal("1"), interval_s=60)
            for s in (0, 30, 61)]
    assert kept == [True, False, True]
    assert order.samples.count() == 2


def test_prune_keeps_what_belongs_to_an_order(funded_member, connector, tariff, settings):
    settings.METER_SAMPLE_DAYS = 90
    order = services.order_start(member=funded_member, connector=connector)
    old = timezone.now() - timedelta(days=91)
    samples.samples_store([_reading(connector, old, trade_no=order.trade_no),
                           _reading(connector, old, status="idle"),
                           _reading(connector, timezone.now(), status="idle")])

    assert samples.samples_prune(now=timezone.now()) == 1
    assert sorted(MeterSample.objects.values_list("status", flat=True)) == ["charging", "idle"]
