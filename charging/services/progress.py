"""While charging: live readings, the driver's running figures, samples, the balance guard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.tariffs import pricing
from evplatform import money

from .. import port, samples
from ..models import (
    ACTIVE_STATES,
    ChargingOrder,
    ChargingPolicy,
    StopReason,
)
from .common import Actor, S, _lock, _schema, order_transition
from .stops import _connector_idle, order_stop


@dataclass(frozen=True)
class Live:
    """What the driver sees while charging (yuan, kWh, kW, V, A, %, minutes)."""

    energy_kwh: Decimal
    amount_yuan: Decimal
    power_kw: Decimal | None
    voltage_v: Decimal | None
    current_a: Decimal | None
    soc_percent: int | None
    elapsed_min: int
    remaining_min: int | None


def estimate_amount(order: ChargingOrder, energy_kwh: Decimal, at: datetime) -> Decimal:
    """The platform's running amount: energy so far priced from the order's snapshot,
    split by linear interpolation from the start (an estimate; the record decides)."""
    snapshot = pricing.TariffSnapshot.from_dict(order.tariff_snapshot)
    start = order.started_at or order.created_at
    if at <= start or energy_kwh <= 0:
        return Decimal("0.00")
    bill = pricing.price_meter_readings(snapshot, [(start, Decimal("0")), (at, energy_kwh)])
    return bill.total_yuan


def order_progress(event: port.Progress) -> ChargingOrder | None:
    """Apply live readings: the start is confirmed by charging status, readings are kept
    (sampled to the database), pushed to the driver, and the balance guard may stop it."""
    from .. import realtime

    order = None
    _connector_idle(event)
    if event.trade_no is not None and not event.trade_no.strip("0"):
        return None  # the pile says no session runs here (YKC 0x13 with a zero trade number)
    if event.trade_no:
        order = ChargingOrder.objects.filter(trade_no=event.trade_no).first()
    elif event.status == "charging":  # a protocol without trade numbers in its readings
        order = (
            ChargingOrder.objects.filter(
                pile__code=event.pile_code,
                connector__number=event.connector_no,
                state__in=ACTIVE_STATES,
            )
            .order_by("-created_at")
            .first()
        )
    if order is None or not order.is_active:
        return None
    if order.state == S.STARTING and event.status == "charging":
        with transaction.atomic():
            order = _lock(order.pk)
            if order.state == S.STARTING:
                order.started_at = event.at
                order_transition(
                    order, S.CHARGING, actor=Actor.PILE, reason="charging reported", fields=("started_at",)
                )
    energy = event.energy_kwh if event.energy_kwh is not None else Decimal(
        order.progress.get("energy_kwh", "0")
    )
    amount = estimate_amount(order, energy, event.at)
    start = order.started_at or order.created_at
    live = Live(
        energy_kwh=money.kwh(energy),
        amount_yuan=amount,
        power_kw=event.power_kw,
        voltage_v=event.voltage_v,
        current_a=event.current_a,
        soc_percent=event.soc_percent,
        elapsed_min=max(0, int((event.at - start).total_seconds() // 60)),
        remaining_min=event.remaining_min,
    )
    progress = {
        k: (str(v) if isinstance(v, Decimal) else v) for k, v in live.__dict__.items()
    } | {"at": event.at.isoformat(), "status": event.status}
    ChargingOrder.objects.filter(pk=order.pk).update(progress=progress, last_progress_at=event.at)
    order.progress = progress
    policy = ChargingPolicy.current()
    samples.sample_for_order(order, event, energy_kwh=live.energy_kwh,
                             interval_s=policy.sample_interval_s)
    if order.soc_start is None and event.soc_percent is not None:
        ChargingOrder.objects.filter(pk=order.pk, soc_start__isnull=True).update(
            soc_start=event.soc_percent
        )
    realtime.order_push(order)
    # Balance guard: stop before the amount would pass the funds held for this order.
    if (
        order.state == S.CHARGING
        and order.stop_requested_at is None
        and amount >= order.hold_amount - policy.balance_guard_margin
    ):
        order_stop(order_id=order.pk, actor=Actor.SYSTEM, reason=StopReason.BALANCE)
    return order


def order_ask_readings(*, order_id: int) -> str:
    """Ask the pile of a silent charge for fresh readings (``port.ReadRealtime``, YKC 0x12 →
    0x13); the answer arrives as ``Progress``. Returns ``asked`` or the bus's error code."""
    from .. import bus

    order = ChargingOrder.objects.select_related("pile", "connector").get(pk=order_id)
    result = bus.send(
        _schema(),
        port.ReadRealtime(pile_code=order.pile.code, connector_no=order.connector.number),
        timeout=10.0,
    )
    return "asked" if result.ok else result.error
