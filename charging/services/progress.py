"""While charging: live readings, the driver's running figures, samples, the balance guard."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Max, Q

from billing.tariffs import pricing
from evplatform import money

from .. import port, samples
from ..models import (
    ACTIVE_STATES,
    ChargingOrder,
    ChargingPolicy,
    MeterSample,
    StopReason,
)
from .common import IDLE_STATUSES, Actor, S, _lock, _schema, order_transition
from .stops import _connector_idle, _stop_confirmed, order_stop

logger = logging.getLogger(__name__)


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
    (sampled to the database), pushed to the driver, and the balance guard may stop it.
    Returns the order they applied to, or None (no active order; the error of a reading
    the database refuses propagates)."""
    return order_progress_batch(events=(event,))[0]


def order_progress_batch(*, events: Sequence[port.Progress]) -> list[ChargingOrder | None]:
    """Apply many connectors' readings (``port.ProgressBatch``), each as
    :func:`order_progress` applies one, in the order given, in a fixed number of
    statements whatever their number: one read of the orders they name (by trade number,
    else the connector's active order for a charging reading without one), one of the
    orders' latest samples, one bulk insert of the samples kept, one update of the orders'
    progress (the last reading of each) and first SoC; the stop confirmations of idle
    readings in one read. Only what happens once a session (a start confirmed, a balance
    stop) costs more. Pushes to the drivers follow the database work.

    Returns, for each reading, the order it applied to (None: none). A batch the database
    refuses (a reading past a column's range, say) is applied again reading by reading,
    each in its own savepoint: the bad one is logged and dropped, the others kept. One
    reading alone: its error propagates.
    """
    from .. import realtime

    events = list(events)
    if not events:
        return []
    try:
        with transaction.atomic():
            applied, pushed = _progress_apply(events)
    except Exception:
        if len(events) == 1:
            raise
        logger.warning("a batch of %d readings failed; applying them one by one",
                       len(events), exc_info=True)
        applied, pushed = [], {}
        for event in events:
            try:
                with transaction.atomic():
                    one, pushes = _progress_apply([event])
            except Exception:
                logger.exception("reading of %s connector %s at %s dropped", event.pile_code,
                                 event.connector_no, event.at)
                one, pushes = [None], {}
            applied += one
            pushed |= pushes
    realtime.order_push_many(list(pushed.values()))
    return applied


def _progress_apply(events: list[port.Progress]
                    ) -> tuple[list[ChargingOrder | None], dict[int, ChargingOrder]]:
    """The database work of :func:`order_progress_batch`: (order per reading, the orders
    to push by id)."""
    _connectors_idle(events)
    # A zero trade number: the pile says no session runs there (YKC 0x13).
    trades = {e.trade_no for e in events if e.trade_no and e.trade_no.strip("0")}
    connectors = {(e.pile_code, e.connector_no) for e in events
                  if e.trade_no is None and e.status == "charging"}
    if not trades and not connectors:
        return [None] * len(events), {}
    wanted = Q(trade_no__in=trades)
    if connectors:
        wanted |= Q(state__in=ACTIVE_STATES, pile__code__in={p for p, _ in connectors})
    by_trade: dict[str, ChargingOrder] = {}
    active_on: dict[tuple[str, int], ChargingOrder] = {}
    for order in (ChargingOrder.objects.filter(wanted)
                  .annotate(at_pile=F("pile__code"), at_connector=F("connector__number"))
                  .order_by("created_at")):
        if order.trade_no in trades:
            by_trade[order.trade_no] = order
        if order.state in ACTIVE_STATES and (order.at_pile, order.at_connector) in connectors:
            active_on[(order.at_pile, order.at_connector)] = order  # the latest wins
    orders: dict[int, ChargingOrder] = {}  # one object per order, whichever way it was found
    chosen: list[int | None] = []
    for event in events:
        order = None
        if event.trade_no is not None:
            order = by_trade.get(event.trade_no)  # none for a zero trade number
        elif event.status == "charging":  # a protocol without trade numbers in its readings
            order = active_on.get((event.pile_code, event.connector_no))
        if order is None or not order.is_active:
            chosen.append(None)
            continue
        chosen.append(orders.setdefault(order.pk, order).pk)
    if not orders:
        return [None] * len(events), {}
    policy = ChargingPolicy.current()
    last_sample = dict(MeterSample.objects.filter(order_id__in=orders).values("order_id")
                       .annotate(last=Max("at")).values_list("order_id", "last"))
    rows: list[MeterSample] = []
    updates: dict[int, tuple[dict, datetime, int | None]] = {}
    amounts: dict[int, Decimal] = {}
    for event, order_id in zip(events, chosen, strict=True):
        if order_id is None:
            continue
        order = orders[order_id]
        if order.state == S.STARTING and event.status == "charging":
            with transaction.atomic():
                order = _lock(order.pk)
                if order.state == S.STARTING:
                    order.started_at = event.at
                    order_transition(order, S.CHARGING, actor=Actor.PILE,
                                     reason="charging reported", fields=("started_at",))
            orders[order_id] = order
        energy = event.energy_kwh if event.energy_kwh is not None else Decimal(
            order.progress.get("energy_kwh", "0"))
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
        order.progress = {
            k: (str(v) if isinstance(v, Decimal) else v) for k, v in live.__dict__.items()
        } | {"at": event.at.isoformat(), "status": event.status}
        amounts[order_id] = amount
        last = last_sample.get(order_id)
        if last is None or (event.at - last).total_seconds() >= policy.sample_interval_s:
            rows.append(samples.order_sample(order, event, energy_kwh=live.energy_kwh))
            last_sample[order_id] = event.at
        soc = None
        if order.soc_start is None and event.soc_percent is not None:
            soc = order.soc_start = event.soc_percent
        previous = updates.get(order_id)
        if soc is None and previous is not None:
            soc = previous[2]
        updates[order_id] = (order.progress, event.at, soc)
    if rows:
        MeterSample.objects.bulk_create(rows)
    _orders_progress_write(updates)
    for order_id, amount in amounts.items():
        order = orders[order_id]
        # Balance guard: stop before the amount would pass the funds held for this order.
        if (
            order.state == S.CHARGING
            and order.stop_requested_at is None
            and amount >= order.hold_amount - policy.balance_guard_margin
        ):
            order_stop(order_id=order.pk, actor=Actor.SYSTEM, reason=StopReason.BALANCE)
    return [None if i is None else orders[i] for i in chosen], dict(orders)


def _orders_progress_write(updates: dict[int, tuple[dict, datetime, int | None]]) -> None:
    """One statement: each order's ``progress`` and ``last_progress_at``, and its
    ``soc_start`` where it had none (order id → (progress, at, SoC or None))."""
    if not updates:
        return
    table = connection.ops.quote_name(ChargingOrder._meta.db_table)
    values = ", ".join(["(%s::bigint, %s::jsonb, %s::timestamptz, %s::integer)"] * len(updates))
    params: list = []
    for order_id, (progress, at, soc) in sorted(updates.items()):  # rows locked in id order
        params += [order_id, json.dumps(progress), at, soc]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS o SET progress = v.progress, last_progress_at = v.at, "
            f"soc_start = COALESCE(o.soc_start, v.soc) "
            f"FROM (VALUES {values}) AS v (id, progress, at, soc) WHERE o.id = v.id",
            params)


def _connectors_idle(events: list[port.Progress]) -> None:
    """Readings that show no session on a connector confirm a stop that waits there (the
    batch form of ``stops._connector_idle``: one read for all the idle readings)."""
    idle = [e for e in events if e.status in IDLE_STATUSES]
    if not idle:
        return
    if len(idle) == 1:
        _connector_idle(idle[0])
        return
    trades = {e.trade_no for e in idle if e.trade_no and e.trade_no.strip("0")}
    piles = {e.pile_code for e in idle if not (e.trade_no and e.trade_no.strip("0"))}
    waiting = list(
        ChargingOrder.objects.filter(Q(trade_no__in=trades) | Q(pile__code__in=piles))
        .filter(state__in=(S.STOPPING, S.ABNORMAL), stop_requested_at__isnull=False,
                stop_confirmed_at__isnull=True)
        .values_list("pk", "trade_no", "pile__code", "connector__number", "stop_requested_at"))
    confirmed: set[int] = set()
    for event in idle:
        by_trade = bool(event.trade_no and event.trade_no.strip("0"))
        for order_id, trade_no, pile_code, connector_no, requested in waiting:
            if order_id in confirmed or requested > event.at:
                continue
            if (trade_no == event.trade_no) if by_trade else (
                    (pile_code, connector_no) == (event.pile_code, event.connector_no)):
                _stop_confirmed(order_id, "idle", event.at)
                confirmed.add(order_id)


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
