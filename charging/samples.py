"""Meter samples: the one place readings are kept in PostgreSQL (``MeterSample``).

Two moments keep a sample: the gateways sample each connector at their interval and on
every status change (:func:`samples_store`, batched), and an order in progress keeps one
at the operator's ``ChargingPolicy.sample_interval_s`` when the gateway kept none that
recently (:func:`sample_for_order`). Each row is linked to the order it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings

from . import port
from .models import ChargingOrder, MeterSample


def _row(event: port.Progress, order_id: int | None) -> MeterSample:
    return MeterSample(
        order_id=order_id,
        pile_code=event.pile_code,
        connector_no=event.connector_no,
        at=event.at,
        status=str(event.status),
        trade_no=event.trade_no or "",
        plugged=event.plugged,
        energy_kwh=event.energy_kwh if event.energy_kwh is not None else 0,
        amount_yuan=event.amount_yuan,
        power_kw=event.power_kw,
        voltage_v=event.voltage_v,
        current_a=event.current_a,
        soc_percent=event.soc_percent,
        elapsed_min=event.elapsed_min,
        remaining_min=event.remaining_min,
        fault_code=event.fault_code or "",
    )


def samples_store(readings: Sequence[port.Progress]) -> int:
    """Keep a gateway's sampled readings (one bulk insert), each linked to the order whose
    trade number it carries. Returns the number of rows written."""
    trades = {r.trade_no for r in readings if r.trade_no}
    orders = dict(ChargingOrder.objects.filter(trade_no__in=trades).values_list("trade_no", "pk"))
    rows = [_row(r, orders.get(r.trade_no) if r.trade_no else None) for r in readings]
    MeterSample.objects.bulk_create(rows)
    return len(rows)


def sample_for_order(order: ChargingOrder, event: port.Progress, *, energy_kwh,
                     interval_s: int) -> bool:
    """Keep ``event`` as a sample of ``order`` (energy ``energy_kwh``, the order's running
    kWh) unless one was kept less than ``interval_s`` seconds before. True when kept."""
    last = order.samples.order_by("-at").values_list("at", flat=True).first()
    if last is not None and (event.at - last).total_seconds() < interval_s:
        return False
    order_sample(order, event, energy_kwh=energy_kwh).save()
    return True


def order_sample(order: ChargingOrder, event: port.Progress, *, energy_kwh) -> MeterSample:
    """``event`` as an unsaved sample of ``order`` (energy ``energy_kwh``, the order's
    running kWh; the order's trade number), for a caller that inserts many at once."""
    row = _row(event, order.pk)
    row.energy_kwh = energy_kwh
    row.trade_no = order.trade_no
    return row


def samples_prune(*, now: datetime) -> int:
    """Delete samples older than ``METER_SAMPLE_DAYS`` that belong to no order (an order's
    samples are the evidence of its bill and stay). Returns how many were deleted."""
    cut = now - timedelta(days=settings.METER_SAMPLE_DAYS)
    return MeterSample.objects.filter(order__isnull=True, at__lt=cut).delete()[0]
