"""Settlement: an order priced from its stored record and tariff snapshot, charged once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.tariffs import pricing
from evplatform import money
from evplatform.queue import task_queue_on_commit

from .. import funds
from ..models import (
    ChargingOrder,
    PaymentMode,
    StopReason,
    TransactionRecord,
)
from . import occupancy, record_checks
from .common import REQUESTED_STOPS, STOP_GRACE_S, Actor, S, order_transition
from .records import _record_order


def record_settle(*, record_id: int) -> ChargingOrder:
    """Price an order from its record and snapshot, charge the member, settle. Exactly
    once: a settled order (or one under review) is left alone; the ledger posting is keyed
    by the order.

    The record's per-period buckets are priced as our periods only when they can be
    (:func:`record_checks.bucket_doubt`); otherwise its total is billed by time of day and
    the bill says why. A record that must not be charged silently (impossible figures,
    buckets that don't add up, a pile amount of zero, an earlier conflicting copy, nobody
    to charge) leaves the order under review (``review``): priced, the member's hold kept,
    nothing captured until staff approve or reject it (:mod:`.staff`)."""
    from marketing import hooks as marketing_hooks

    with transaction.atomic():
        # Its periods read once (the checks and the pricing all ask for them).
        record = (TransactionRecord.objects.select_for_update().prefetch_related("periods")
                  .get(pk=record_id))
        # The order locked (its row only) with the rows the checks, the discount and the
        # ledger read: member, pile, connector.
        orders = (ChargingOrder.objects.select_for_update(of=("self",))
                  .select_related("member", "pile", "connector"))
        order = (orders.filter(trade_no=record.trade_no).first()
                 or orders.get(pk=_record_order(record).pk))
        if record.order_id is None:
            record.order = order
            record.save(update_fields=["order"])
        if order.state in (S.SETTLED, S.REVIEW):
            return order
        held_before = order.review_reason  # e.g. a conflicting copy of the record
        order.stopped_at = record.stopped_at
        order.started_at = order.started_at or record.started_at
        order.meter_start_kwh = record.meter_start_kwh
        order.meter_stop_kwh = record.meter_stop_kwh
        order.energy_kwh = record.energy_kwh
        order.pile_amount = record.pile_amount_yuan
        order.pile_stop_code = record.protocol_stop_code
        if not order.stop_reason or order.stop_reason == StopReason.UNKNOWN:
            order.stop_reason = record.stop_reason
        if order.progress.get("soc_percent") is not None:
            order.soc_end = order.progress["soc_percent"]
        doubt = record_checks.bucket_doubt(order, record)
        holds = record_checks.impossible(order, record)
        differs = record_checks.sum_differs(record)
        if differs:
            holds.append(differs)
        bill, note = _price_to_stop(order, record, by_time=bool(doubt))
        if bill is not None:
            zero = record_checks.pile_amount_zero(record, bill.charging_yuan)
            if zero:
                holds.append(zero)
        if order.member_id is None and order.mode != PaymentMode.PARTNER:
            holds.append(record_checks.unknown_trade())
        if holds:
            order.abnormal = True
            order.review_reason = "; ".join(
                r for r in (order.review_reason, *holds) if r)[:500]
        if note:
            order.abnormal = True
            order.review_reason = "; ".join(r for r in (order.review_reason, note) if r)[:500]
        order.bill = bill.to_dict() if bill else None
        if order.bill is not None and doubt:
            order.bill["by_time_because"] = doubt
        if bill is not None:
            order.electricity_amount = bill.electricity_yuan
            order.service_amount = bill.service_yuan
            order.occupancy_amount = bill.occupancy_yuan
            gross = bill.total_yuan
            order.amount_mismatch = order.pile_amount is not None and pricing.compare_with_pile(
                bill, order.pile_amount).mismatch
        else:
            gross = Decimal("0.00")
            order.abnormal = True
        order.discount_amount = min(gross, marketing_hooks.order_discount(order=order, gross=gross))
        order.total_amount = gross - order.discount_amount
        fields = (
            "stopped_at", "started_at", "meter_start_kwh", "meter_stop_kwh", "energy_kwh",
            "pile_amount", "pile_stop_code", "stop_reason", "soc_end", "bill",
            "electricity_amount", "service_amount", "occupancy_amount", "discount_amount",
            "total_amount", "amount_mismatch", "abnormal", "review_reason",
        )
        if order.state == S.FAILED:
            order.abnormal = True  # the pile started after all (late): bill what it delivered
        if order.state != S.FINISHED:
            order_transition(order, S.FINISHED, actor=Actor.PILE, reason="transaction record", fields=fields)
        else:
            order.save(update_fields=list(fields))
        if holds or held_before:
            order_transition(order, S.REVIEW, actor=Actor.SYSTEM,
                             reason=(order.review_reason or held_before)[:200])
            return order  # priced, not charged: staff approve or reject (services.staff)
        order.paid_amount, order.refunded_amount = funds.capture_for_order(order, order.total_amount)
        order.settled_at = timezone.now()
        order_transition(
            order, S.SETTLED, actor=Actor.SYSTEM, fields=("paid_amount", "refunded_amount", "settled_at")
        )
        marketing_hooks.order_settled(order=order)
        # The car already gone: its occupancy fee follows the charge (services.occupancy).
        occupancy.occupancy_settle(order=order)
        task_queue_on_commit("charging.order_notify", order.pk)
    from .. import realtime

    realtime.order_push(order)
    return order


def energy_at(order: ChargingOrder, at: datetime) -> Decimal:
    """The session's energy (kWh) at ``at``, interpolated linearly between the order's
    known readings: zero at the start, the meter samples, the record's total at the stop."""
    points = [(order.started_at, Decimal("0"))]
    points += [
        (s.at, s.energy_kwh)
        for s in order.samples.filter(at__gt=order.started_at, at__lt=order.stopped_at)
    ]
    points.append((order.stopped_at, order.energy_kwh))
    before = points[0]
    for point in points:
        if point[0] <= at:
            before = point
            continue
        span = (point[0] - before[0]).total_seconds()
        if span <= 0:
            return before[1]
        share = Decimal(str((at - before[0]).total_seconds() / span))
        return money.kwh(before[1] + (point[1] - before[1]) * share)
    return order.energy_kwh


def _price_to_stop(order: ChargingOrder, record: TransactionRecord, *,
                   by_time: bool = False) -> tuple[pricing.Bill | None, str]:
    """The bill, and a note for review when part of the energy is not billed: a stop the
    platform asked for (driver, balance guard, platform) that took effect more than
    ``STOP_GRACE_S`` later is billed only up to the request; the rest is flagged."""
    requested = order.stop_requested_at
    if (
        requested is None
        or order.stop_reason not in REQUESTED_STOPS
        or not order.tariff_snapshot
        or order.stopped_at is None
        or order.started_at is None
        or order.stopped_at <= requested + timedelta(seconds=STOP_GRACE_S)
        or requested <= order.started_at
    ):
        return _price(order, record, by_time=by_time), ""
    billed = energy_at(order, requested)
    readings = [(order.started_at, Decimal("0"))]
    readings += [
        (s.at, s.energy_kwh)
        for s in order.samples.filter(at__gt=order.started_at, at__lt=requested)
    ]
    readings.append((requested, billed))
    bill = pricing.price_meter_readings(
        pricing.TariffSnapshot.from_dict(order.tariff_snapshot), readings
    )
    late_s = int((order.stopped_at - requested).total_seconds())
    note = (
        f"stopped {late_s} s after the stop request: billed {billed} kWh up to the request, "
        f"{money.kwh(order.energy_kwh - billed)} kWh after it not billed"
    )
    return bill, note


def _price(order: ChargingOrder, record: TransactionRecord, *,
           by_time: bool = False) -> pricing.Bill | None:
    """The bill: the pile's buckets priced as our periods, or (``by_time``, or no buckets)
    the record's total split by time of day along the meter samples, else its start and end.
    None without a tariff snapshot or when no timeline can be made of the figures (a session
    ending before it started: such a record is held for review anyway)."""
    if not order.tariff_snapshot:
        return None
    snapshot = pricing.TariffSnapshot.from_dict(order.tariff_snapshot)
    by_period = record.energy_by_period()
    idle_minutes = 0
    if by_period and not by_time:
        return pricing.price_pile_energy(
            snapshot, {pricing.Period(k): v for k, v in by_period.items()}, idle_minutes=idle_minutes
        )
    if order.stopped_at < order.started_at or order.energy_kwh < 0:
        return None
    readings = [(order.started_at, Decimal("0"))]
    readings += [
        (s.at, s.energy_kwh)
        for s in order.samples.filter(at__gt=order.started_at, at__lt=order.stopped_at)
        if Decimal("0") <= s.energy_kwh <= order.energy_kwh
    ]
    readings.append((order.stopped_at, order.energy_kwh))
    try:
        return pricing.price_meter_readings(snapshot, readings, idle_minutes=idle_minutes)
    except pricing.PricingError:  # samples that go backwards: start and end only
        pass
    try:
        return pricing.price_meter_readings(
            snapshot, [readings[0], readings[-1]], idle_minutes=idle_minutes)
    except pricing.PricingError:  # energy in no time at all: no timeline to bill on
        return None
