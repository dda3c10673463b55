"""Charging orders: start, progress, stop, the pile's record, settlement, recovery.

Every write here runs in one transaction under a row lock on the order (taken through
``_lock``), and every transition goes through ``order_transition``. Money moves only
through ``charging.funds`` (the wallet / pay-per-order adapter), keyed by the order
number so that a retried settlement posts nothing twice.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from billing.tariffs import pricing
from evplatform import money
from evplatform.errors import DomainError
from evplatform.queue import task_queue_on_commit
from stations.models import Connector, Pile, Station

from . import funds, port, samples
from .models import (
    ACTIVE_STATES,
    ChargingOrder,
    ChargingPolicy,
    OrderState,
    OrderTransition,
    PaymentMode,
    RecordPeriod,
    Reservation,
    StopReason,
    TransactionRecord,
    TransactionRecordConflict,
)
from .state import IllegalTransition, can_move

logger = logging.getLogger(__name__)
S = OrderState
Actor = OrderTransition.Actor

# Commands to piles (seconds). A command is sent only while its order still wants it and
# only before its deadline: a task redelivered late by the broker is dropped, never sent.
COMMAND_TTL_S = 60
# A stop the pile has not confirmed (0x35 accepted, or the connector reported idle) is
# sent again after this long, until it is confirmed or the pile is found unreachable.
STOP_RETRY_S = 15
# Energy a pile delivers more than this long after a stop request is not billed (the
# order is flagged for review instead).
STOP_GRACE_S = 30
# A pile is unreachable when its gateway cannot reach it and no frame came from it for
# this long.
UNREACHABLE_S = 90
# Connector states in which no session runs (the pile stopped).
IDLE_STATUSES = ("idle", "plugged", "finishing", "fault")
# Stop requests that came from the platform's side: energy after them is not billed.
REQUESTED_STOPS = (StopReason.DRIVER, StopReason.BALANCE, StopReason.PLATFORM)


class OrderRefused(DomainError):
    """A request the charging rules refuse (``code``, ``detail``, HTTP ``status``, 409 unless
    given)."""

    status = 409


# --- helpers ---------------------------------------------------------------------------


def _lock(order_id: int) -> ChargingOrder:
    """The order, row-locked for the rest of the transaction."""
    return ChargingOrder.objects.select_for_update().get(pk=order_id)


def order_transition(
    order: ChargingOrder,
    to_state: str,
    *,
    actor: str,
    actor_id: str = "",
    reason: str = "",
    fields: tuple[str, ...] = (),
) -> None:
    """Move a (locked) order to ``to_state``, recording who, why and when; saves ``fields``
    with it. Raises IllegalTransition."""
    if not can_move(order.state, to_state):
        raise IllegalTransition(order.number, order.state, to_state)
    OrderTransition.objects.create(
        order=order,
        from_state=order.state,
        to_state=to_state,
        actor=actor,
        actor_id=str(actor_id),
        reason=reason[:200],
    )
    order.state = to_state
    order.save(update_fields=["state", *fields])


def _new_order_number(now: datetime) -> str:
    return "CD" + now.strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**6):06d}"


def _new_trade_no(pile: Pile, connector_no: int, now: datetime) -> str:
    """YKC 交易流水号: pile code (14) + connector (2) + yymmddHHMMSS (12) + counter (4)."""
    local = timezone.localtime(now)
    return f"{pile.code}{connector_no:02d}{local:%y%m%d%H%M%S}{secrets.randbelow(10**4):04d}"


def _schema() -> str:
    return connection.schema_name


def _queue_command(name: str, order_id: int, *extra, countdown: int = 0) -> None:
    """Queue the pile command task ``name`` for an order after commit, with its deadline
    (epoch s) as second argument: the broker drops it when it arrives later and the task
    checks it again just before sending."""
    deadline = time.time() + countdown + COMMAND_TTL_S
    task_queue_on_commit(
        name, order_id, deadline, *extra, countdown=countdown or None,
        expires=countdown + COMMAND_TTL_S,
    )


# --- start -----------------------------------------------------------------------------


def _check_member(member: Member) -> None:
    if not member.is_active:
        raise OrderRefused("member_disabled", _("This account is disabled."), 403)


def _check_connector(connector: Connector, member: Member) -> None:
    pile = connector.pile
    station = pile.station
    if station.status != Station.Status.OPERATING:
        raise OrderRefused("station_closed", _("This station is not open."))
    if not pile.enabled:
        raise OrderRefused("pile_disabled", _("This pile is out of service."))
    if not pile.online:
        raise OrderRefused("pile_offline", _("This pile is offline."))
    status = connector.status
    if status == Connector.Status.FAULT:
        raise OrderRefused("connector_fault", _("This connector has a fault."))
    if status == Connector.Status.IDLE:
        raise OrderRefused("connector_not_plugged", _("Plug the connector into the car first."))
    reserved_for = (
        Reservation.objects.filter(connector=connector, state=Reservation.State.ACTIVE)
        .values_list("member_id", flat=True)
        .first()
    )
    # Only the member holding the reservation may start on a reserved connector.
    if (reserved_for is not None or status == Connector.Status.RESERVED) and reserved_for != member.pk:
        raise OrderRefused("connector_reserved", _("This connector is reserved."))
    if status not in (Connector.Status.PLUGGED, Connector.Status.RESERVED):
        raise OrderRefused("connector_busy", _("This connector is in use."))
    if ChargingOrder.objects.filter(connector=connector, state__in=ACTIVE_STATES).exists():
        raise OrderRefused("connector_busy", _("This connector is in use."))


def order_start(
    *,
    member: Member,
    connector: Connector,
    mode: str = PaymentMode.WALLET,
    prepay_ref: str | None = None,
    now: datetime | None = None,
    idempotency_key: str = "",
) -> ChargingOrder:
    """The driver starts from the app: :func:`order_create` with the wallet or a prepayment,
    then the remote start is sent to the pile.

    Raises OrderRefused: mode_unsupported, and every refusal of :func:`order_create`.
    """
    _check_member(member)
    if mode not in (PaymentMode.WALLET, PaymentMode.PREPAY):
        raise OrderRefused("mode_unsupported", _("Unsupported payment mode."), 400)
    return order_create(member=member, connector=connector, mode=mode, prepay_ref=prepay_ref,
                        idempotency_key=idempotency_key, now=now)


def order_create(
    *,
    member: Member,
    connector: Connector,
    mode: str,
    prepay_ref: str | None = None,
    at_pile: bool = False,
    card_no: str = "",
    vin: str = "",
    idempotency_key: str = "",
    now: datetime | None = None,
) -> ChargingOrder:
    """The one path that creates an order, whoever asks: the app (:func:`order_start`), a
    card or VIN at the pile (``at_pile``, ``mode`` card: ``charging.cards``) and partner
    platforms. Checks the rules, locks the tariff, reserves the funds (a wallet hold, or
    the paid prepayment ``prepay_ref``), creates the order ``starting`` and queues the
    start timeout; an app start also queues the remote start (a pile that asked starts by
    itself once answered).

    ``idempotency_key`` (the client's Idempotency-Key, ≤ 64 chars): a repeat with the same
    key returns the order the first request made, whatever its state now.

    Raises OrderRefused with codes: member_disabled, order_in_progress, station_closed,
    pile_disabled, pile_offline, connector_fault, connector_not_plugged,
    connector_reserved, connector_busy, tariff_missing, insufficient_balance,
    prepay_unpaid, idempotency_key_reused (the key started another connector's order).
    """
    from billing.tariffs import selectors as tariff_selectors
    from billing.tariffs import services as tariff_services

    now = now or timezone.now()
    _check_member(member)
    policy = ChargingPolicy.current()
    with transaction.atomic():
        # Lock the member row: two starts of one member serialise here.
        Member.objects.select_for_update().get(pk=member.pk)
        if idempotency_key:
            earlier = ChargingOrder.objects.filter(
                member=member, idempotency_key=idempotency_key
            ).first()
            if earlier is not None:
                if earlier.connector_id != connector.pk or earlier.mode != mode:
                    raise OrderRefused(
                        "idempotency_key_reused",
                        _("This Idempotency-Key was used for another request."),
                        422,
                    )
                return earlier
        connector = Connector.objects.select_for_update().select_related("pile__station").get(
            pk=connector.pk
        )
        if ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists():
            raise OrderRefused("order_in_progress", _("You already have a charge in progress."))
        _check_connector(connector, member)
        locked = tariff_selectors.snapshot_for_connector(connector, now)
        if locked is None:
            raise OrderRefused("tariff_missing", _("This pile has no tariff yet."))
        version, snapshot = locked

        number = _new_order_number(now)
        if mode == PaymentMode.PREPAY:
            # A prepayment is made for an order number handed out before the order exists.
            paid = funds.prepay_paid(prepay_ref or "", member)
            if paid is None:
                raise OrderRefused("prepay_unpaid", _("The prepayment is not paid yet."), 402)
            number = prepay_ref
        order = ChargingOrder(
            number=number,
            member=member,
            connector=connector,
            pile=connector.pile,
            station=connector.pile.station,
            trade_no=_new_trade_no(connector.pile, connector.number, now),
            mode=mode,
            state=S.CREATED,
            tariff_version_id=version.pk,
            tariff_snapshot=snapshot.to_dict(),
            card_no=card_no,
            vin=vin,
            pile_initiated=at_pile,
            start_deadline=now + timedelta(seconds=policy.start_timeout_s),
            idempotency_key=idempotency_key,
        )
        if mode == PaymentMode.PREPAY:
            order.prepay_amount = paid
        try:
            with transaction.atomic():
                order.save()
        except IntegrityError as exc:  # the partial unique constraints: a race lost
            raise OrderRefused("connector_busy", _("This connector is in use.")) from exc
        if mode == PaymentMode.PREPAY:
            order.hold_amount = order.prepay_amount
        else:
            held = funds.hold_for_order(order)
            if held is None:
                raise OrderRefused(
                    "insufficient_balance", _("Your balance is too low to start charging."), 402
                )
            order.hold_amount = held
        if at_pile:
            actor, actor_id = Actor.PILE, ""
            reason = f"{'vin' if vin else 'card'} start at the pile"
        else:
            actor, actor_id, reason = Actor.MEMBER, member.pk, ""
        order_transition(
            order, S.STARTING, actor=actor, actor_id=actor_id, reason=reason,
            fields=("hold_amount",),
        )
        Reservation.objects.filter(
            member=member, connector=connector, state=Reservation.State.ACTIVE
        ).update(state=Reservation.State.USED, ended_at=now, order=order)
        tariff_services.tariff_version_lock(version=version)
        if not at_pile:
            _queue_command("charging.order_send_start", order.pk)
        task_queue_on_commit("charging.order_check_start", order.pk, countdown=policy.start_timeout_s + 1)
    return order


def order_prepay_create(*, member: Member, connector: Connector, amount: Decimal):
    """Pay per order, step one: a prepayment of ``amount`` yuan for a new order number.
    Returns (order number, ``wx.requestPayment`` parameters); after paying, start the order
    with ``mode=prepay`` and ``prepay_ref`` = that number. Raises OrderRefused for the
    connector's refusals, and billing's BillingError for the amount."""
    from billing.payments import services as billing_services

    _check_member(member)
    _check_connector(connector, member)
    number = _new_order_number(timezone.now())
    start = billing_services.prepay_create(member=member, amount=amount, order_ref=number)
    return number, start.pay_params


def order_start_command(order: ChargingOrder) -> port.RemoteStart:
    return port.RemoteStart(
        pile_code=order.pile.code,
        connector_no=order.connector.number,
        trade_no=order.trade_no,
        balance_yuan=order.hold_amount,
        logical_card_no=f"{order.member_id or 0:016d}",
    )


def order_fail(
    *, order_id: int, reason: str, pile_code: int | None = None, actor: str = Actor.SYSTEM
) -> ChargingOrder:
    """Fail an order that never started; its funds are released. No-op unless starting."""
    with transaction.atomic():
        order = _lock(order_id)
        if order.state not in (S.CREATED, S.STARTING):
            return order
        order.stop_reason = StopReason.START_FAILED
        order.pile_stop_code = pile_code
        order_transition(
            order, S.FAILED, actor=actor, reason=reason, fields=("stop_reason", "pile_stop_code")
        )
        funds.release_for_order(order)
    return order


def order_start_result(event: port.StartResult) -> None:
    """The pile accepted (→ charging) or refused (→ failed, funds released) a start."""
    order = ChargingOrder.objects.filter(trade_no=event.trade_no).first()
    if order is None:
        logger.warning("start result for unknown trade %s", event.trade_no)
        return
    if not event.accepted:
        order_fail(
            order_id=order.pk,
            reason=f"pile refused start (code {event.protocol_code})",
            pile_code=event.protocol_code,
            actor=Actor.PILE,
        )
        return
    with transaction.atomic():
        order = _lock(order.pk)
        if order.state == S.STARTING:
            order.started_at = event.at or timezone.now()
            order_transition(order, S.CHARGING, actor=Actor.PILE, fields=("started_at",))


def order_check_start(*, order_id: int, now: datetime | None = None) -> ChargingOrder:
    """Start timeout: an order still starting past its deadline fails and is stopped at the
    pile in case it starts late."""
    now = now or timezone.now()
    order = ChargingOrder.objects.get(pk=order_id)
    if order.state != S.STARTING or (order.start_deadline and order.start_deadline > now):
        return order
    order = order_fail(order_id=order_id, reason="start timed out")
    _queue_command("charging.order_send_stop", order.pk)
    return order


def order_start_send(*, order_id: int, deadline: float | None = None) -> str:
    """Send the remote start of a ``starting`` order (the Celery task's body). Sent only
    before ``deadline`` (epoch s) and the order's start deadline; a pile that cannot be
    reached fails the order at once. Returns what happened: sent, expired, the order's
    state, or the bus error."""
    from . import bus

    if deadline is not None and time.time() > deadline:
        return "expired"
    order = ChargingOrder.objects.select_related("pile", "connector").get(pk=order_id)
    if order.state != S.STARTING:
        return order.state
    if order.start_deadline and order.start_deadline <= timezone.now():
        return "expired"
    result = bus.send(_schema(), order_start_command(order), timeout=_command_timeout(deadline))
    if not result.ok:
        order_fail(order_id=order_id, reason=f"remote start: {result.error}")
    return "sent" if result.ok else result.error


def _command_timeout(deadline: float | None) -> float:
    from django.conf import settings

    timeout = float(settings.YKC_COMMAND_TIMEOUT_S)
    if deadline is not None:
        timeout = max(1.0, min(timeout, deadline - time.time()))
    return timeout


# --- while charging --------------------------------------------------------------------


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
    from . import realtime

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


def order_stop(
    *, order_id: int, actor: str, actor_id: str = "", reason: str = StopReason.DRIVER
) -> ChargingOrder:
    """Ask the pile to stop: the order turns ``stopping`` and the remote stop is sent (and
    sent again until the pile confirms it, see ``order_stop_send``). Asking again while
    stopping sends the stop again at once. Raises OrderRefused ``order_not_stoppable`` when
    not charging."""

    with transaction.atomic():
        order = _lock(order_id)
        if order.state == S.STOPPING:
            OrderTransition.objects.create(
                order=order, from_state=S.STOPPING, to_state=S.STOPPING, actor=actor,
                actor_id=str(actor_id), reason="stop requested again: re-sent",
            )
            _queue_command("charging.order_send_stop", order.pk)
            return order
        if order.state not in (S.STARTING, S.CHARGING):
            raise OrderRefused("order_not_stoppable", _("This order is not charging."))
        order.stop_requested_at = timezone.now()
        order.stop_reason = reason
        order_transition(
            order,
            S.STOPPING,
            actor=actor,
            actor_id=actor_id,
            reason=reason,
            fields=("stop_requested_at", "stop_reason"),
        )
        _queue_command("charging.order_send_stop", order.pk)
    return order


def stop_unwanted(order: ChargingOrder, staff: bool = False) -> str:
    """Why a remote stop must not be sent for ``order`` now ("" when it must): checked just
    before every send, because YKC's stop names no session and would end whatever runs on
    the connector. Wanted for an order ``stopping``, for an ``abnormal`` one whose stop never
    reached the pile, and for a start that timed out (the pile may start late), and only
    while no other session is on the connector (neither an active order here nor another
    trade number in the pile's latest readings)."""
    from stations import live

    if order.state == S.STOPPING:
        pass
    elif order.state == S.ABNORMAL and order.stop_requested_at and not order.stop_confirmed_at:
        pass
    elif order.state == S.FAILED and order.stop_reason == StopReason.START_FAILED:
        pass
    elif staff and not order.is_active:
        pass  # staff re-send for an ended order: only while the pile reports its session
    else:
        return "not_stopping"
    if (
        ChargingOrder.objects.filter(connector_id=order.connector_id, state__in=ACTIVE_STATES)
        .exclude(pk=order.pk)
        .exists()
    ):
        return "superseded"
    try:
        reading = live.connectors_get(_schema(), [(order.pile.code, order.connector.number)])
    except Exception:  # live state is a hint; the gateway checks the session again
        reading = {}
    values = next(iter(reading.values()), {})
    trade = values.get("trade_no", "")
    if trade.strip("0") and trade != order.trade_no:
        return "superseded"
    if staff and not order.is_active and not (
        trade == order.trade_no and values.get("status") == "charging"
    ):
        return "not_charging"
    return ""


def order_stop_send(*, order_id: int, deadline: float | None = None, staff: bool = False) -> str:
    """Send the remote stop of an order (the Celery task's body), only before ``deadline``
    (epoch s) and only while ``stop_unwanted`` finds nothing against it. Notes the attempt
    on the order; a stop not yet confirmed is checked again in ``STOP_RETRY_S``. Returns
    what happened: sent, expired, a reason from ``stop_unwanted``, or the bus error."""
    from . import bus

    if deadline is not None and time.time() > deadline:
        logger.info("stop of order %s dropped: past its deadline", order_id)
        return "expired"
    order = ChargingOrder.objects.select_related("pile", "connector").get(pk=order_id)
    why_not = stop_unwanted(order, staff=staff)
    if why_not:
        logger.info("stop of order %s not sent: %s", order.number, why_not)
        return why_not
    command = port.RemoteStop(
        pile_code=order.pile.code, connector_no=order.connector.number, trade_no=order.trade_no
    )
    result = bus.send(_schema(), command, timeout=_command_timeout(deadline))
    outcome = "sent" if result.ok else result.error
    if not result.ok and result.error == "refused":
        if result.detail.get("refusal") == port.StopRefusal.NOT_CHARGING:
            outcome = "not_charging"
    now = timezone.now()
    with transaction.atomic():
        order = _lock(order_id)
        order.stop_attempts += 1
        order.stop_sent_at = now
        order.stop_result = outcome[:20]
        fields = ["stop_attempts", "stop_sent_at", "stop_result"]
        if outcome in ("sent", "not_charging") and not order.stop_confirmed_at:
            order.stop_confirmed_at = now
            fields.append("stop_confirmed_at")
        order.save(update_fields=fields)
        if order.state == S.STOPPING and not order.stop_confirmed_at:
            task_queue_on_commit("charging.order_check_stop", order.pk, countdown=STOP_RETRY_S)
    return outcome


def order_check_stop(*, order_id: int, now: datetime | None = None) -> str:
    """Send the stop again when it is still wanted, not confirmed and its last attempt is
    ``STOP_RETRY_S`` old (or there was none). Returns "resent" or why not."""

    now = now or timezone.now()
    order = ChargingOrder.objects.get(pk=order_id)
    if order.state not in (S.STOPPING, S.ABNORMAL) or order.stop_confirmed_at:
        return "done"
    if order.state == S.ABNORMAL and not order.stop_requested_at:
        return "done"
    if order.stop_sent_at and (now - order.stop_sent_at).total_seconds() < STOP_RETRY_S - 1:
        return "pending"
    with transaction.atomic():
        _queue_command("charging.order_send_stop", order.pk)
    return "resent"


def orders_pile_still_charging() -> list[int]:
    """Ids of orders that are no longer active while their pile's latest readings still
    show their session charging (a stop that never arrived): for staff to re-send it."""
    from stations import live

    schema = _schema()
    client = live.client()
    prefix = live.connector_key(schema, "", 0)[: -len(":0")]
    trades = {}
    pipe = client.pipeline(transaction=False)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    for key in keys:
        pipe.hmget(key, "status", "trade_no")
    for status, trade in pipe.execute():
        if status == "charging" and trade and trade.strip("0"):
            trades[trade] = True
    if not trades:
        return []
    return list(
        ChargingOrder.objects.filter(trade_no__in=list(trades))
        .exclude(state__in=ACTIVE_STATES)
        .values_list("pk", flat=True)
    )


def order_stop_resend(*, order_id: int, user) -> None:
    """Staff: send the stop again for an order whose pile still reports its session
    charging (checked again just before sending; noted on the order's timeline)."""

    with transaction.atomic():
        order = _lock(order_id)
        OrderTransition.objects.create(
            order=order, from_state=order.state, to_state=order.state, actor=Actor.STAFF,
            actor_id=str(user.pk), reason="stop re-sent by staff (pile still charging)",
        )
        _queue_command("charging.order_send_stop", order.pk, True)


def _stop_confirmed(order_id: int, why: str, at: datetime) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        if order.stop_confirmed_at is None and order.stop_requested_at is not None:
            order.stop_confirmed_at = at
            order.stop_result = why[:20]
            order.save(update_fields=["stop_confirmed_at", "stop_result"])


def order_stop_result(event: port.StopResult) -> None:
    """The pile's answer to a stop: accepted, or refused because the connector is not
    charging, confirms the stop (the record follows); another refusal leaves the order
    stopping and the stop is sent again."""
    order = (
        ChargingOrder.objects.filter(
            pile__code=event.pile_code,
            connector__number=event.connector_no,
            state__in=(S.STOPPING, S.ABNORMAL),
            stop_requested_at__isnull=False,
        )
        .order_by("-created_at")
        .first()
    )
    if order is None:
        return
    if event.accepted or event.refusal is port.StopRefusal.NOT_CHARGING:
        _stop_confirmed(order.pk, "sent" if event.accepted else "not_charging", event.at or timezone.now())
    else:
        logger.warning(
            "pile %s refused to stop order %s (code %s); it is sent again",
            event.pile_code, order.number, event.protocol_code,
        )


def _connector_idle(event: port.Progress) -> None:
    """Readings that show no session on a connector confirm a stop that waits there."""
    if event.status not in IDLE_STATUSES:
        return
    if event.trade_no and event.trade_no.strip("0"):
        candidates = ChargingOrder.objects.filter(trade_no=event.trade_no)
    else:
        candidates = ChargingOrder.objects.filter(
            pile__code=event.pile_code, connector__number=event.connector_no
        )
    for order_id in candidates.filter(
        state__in=(S.STOPPING, S.ABNORMAL),
        stop_requested_at__isnull=False,
        stop_requested_at__lte=event.at,
        stop_confirmed_at__isnull=True,
    ).values_list("pk", flat=True):
        _stop_confirmed(order_id, "idle", event.at)


# --- the pile's record and settlement ------------------------------------------------


def record_store(event: port.TransactionRecord) -> port.RecordAck:
    """Store a transaction record durably, once per trade number, and queue its settlement.

    Returns RecordAck(stored=True) once committed (the gateway acknowledges the pile only
    then); a repeat is counted and acknowledged again.
    """
    with transaction.atomic():
        record, created = TransactionRecord.objects.get_or_create(
            trade_no=event.trade_no,
            defaults={
                "pile_code": event.pile_code,
                "connector_no": event.connector_no,
                "started_at": event.started_at,
                "stopped_at": event.stopped_at,
                "meter_start_kwh": event.meter_start_kwh,
                "meter_stop_kwh": event.meter_stop_kwh,
                "energy_kwh": event.energy_kwh,
                "pile_amount_yuan": event.pile_amount_yuan,
                "stop_reason": StopReason(event.stop_reason.value),
                "protocol_stop_code": event.protocol_stop_code,
                "vin": event.vin,
                "card_no": event.card_no,
                "raw_hex": event.raw_hex,
            },
        )
        if created:
            periods = sorted(set(event.energy_by_period) | set(event.amount_by_period))
            RecordPeriod.objects.bulk_create([
                RecordPeriod(record=record, period=name,
                             energy_kwh=event.energy_by_period.get(name, Decimal("0")),
                             amount_yuan=event.amount_by_period.get(name))
                for name in periods
            ])
        else:
            TransactionRecord.objects.filter(pk=record.pk).update(duplicates=F("duplicates") + 1)
            differs = _record_differs(record, event)
            if differs:
                _record_conflict(record, event, differs)
        task_queue_on_commit("charging.record_settle", record.pk)
    return port.RecordAck(stored=True, duplicate=not created)


_RECORD_FIELDS = (
    "pile_code", "connector_no", "started_at", "stopped_at", "meter_start_kwh",
    "meter_stop_kwh", "energy_kwh", "pile_amount_yuan", "stop_reason", "protocol_stop_code",
    "vin", "card_no",
)


def _record_differs(record: TransactionRecord, event: port.TransactionRecord) -> list[str]:
    """Names of the fields in which a repeat of a stored record differs from it."""
    differs = [name for name in _RECORD_FIELDS if getattr(record, name) != getattr(event, name)]
    if record.energy_by_period() != {k: v for k, v in event.energy_by_period.items() if v}:
        differs.append("energy_by_period")
    return sorted(differs)


def _record_copy(event: port.TransactionRecord) -> dict:
    """The event's content as JSON (a conflicting copy, kept for staff; never billed)."""
    def text(value):
        return value.isoformat() if isinstance(value, datetime) else (
            str(value) if isinstance(value, Decimal) else value)

    copy = {name: text(getattr(event, name)) for name in _RECORD_FIELDS}
    copy["energy_by_period"] = {k: str(v) for k, v in event.energy_by_period.items()}
    return copy


def _record_conflict(record: TransactionRecord, event: port.TransactionRecord,
                     differs: list[str]) -> None:
    """A repeat of a stored record with other content: the first stays the one that bills,
    the copy is kept and the order flagged for review (abnormal, with the reason)."""
    TransactionRecordConflict.objects.create(record=record, data=_record_copy(event),
                                             raw_hex=event.raw_hex)
    logger.warning("record %s repeated with other content (%s): first one kept",
                   record.trade_no, ", ".join(differs))
    reason = f"conflicting copy of the pile's record ({', '.join(differs)})"[:200]
    ChargingOrder.objects.filter(trade_no=record.trade_no, review_reason="").update(
        review_reason=reason
    )
    ChargingOrder.objects.filter(trade_no=record.trade_no).update(abnormal=True)


def _record_order(record: TransactionRecord) -> ChargingOrder:
    """The order a record belongs to; a record nobody started here becomes a flagged,
    pile-initiated order."""
    order = ChargingOrder.objects.filter(trade_no=record.trade_no).first()
    if order is not None:
        return order
    pile = Pile.objects.select_related("station").get(code=record.pile_code)
    connector = pile.connectors.get(number=record.connector_no)
    started = record.started_at
    from billing.tariffs import selectors as tariff_selectors

    locked = tariff_selectors.snapshot_for_connector(connector, started)
    order = ChargingOrder.objects.create(
        number=_new_order_number(started),
        member=None,
        connector=connector,
        pile=pile,
        station=pile.station,
        trade_no=record.trade_no,
        mode=PaymentMode.CARD,
        state=S.CHARGING,
        tariff_version_id=locked[0].pk if locked else None,
        tariff_snapshot=locked[1].to_dict() if locked else None,
        started_at=started,
        card_no=record.card_no,
        vin=record.vin,
        pile_initiated=True,
        abnormal=True,
    )
    OrderTransition.objects.create(
        order=order,
        from_state=S.CREATED,
        to_state=S.CHARGING,
        actor=Actor.PILE,
        reason="record for an unknown trade number",
    )
    return order


def record_settle(*, record_id: int) -> ChargingOrder:
    """Price an order from its record and snapshot, charge the member, settle. Exactly
    once: a settled order is left alone; the ledger posting is keyed by the order."""
    from marketing import hooks as marketing_hooks

    with transaction.atomic():
        record = TransactionRecord.objects.select_for_update().get(pk=record_id)
        order = _lock(_record_order(record).pk)
        if record.order_id is None:
            record.order = order
            record.save(update_fields=["order"])
        if order.state in (S.SETTLED,):
            return order
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
        bill, note = _price_to_stop(order, record)
        if note:
            order.abnormal = True
            order.review_reason = "; ".join(r for r in (order.review_reason, note) if r)[:200]
        order.bill = bill.to_dict() if bill else None
        if bill is not None:
            order.electricity_amount = bill.electricity_yuan
            order.service_amount = bill.service_yuan
            order.occupancy_amount = bill.occupancy_yuan
            gross = bill.total_yuan
            order.amount_mismatch = pricing.compare_with_pile(bill, order.pile_amount).mismatch
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
        if order.member_id is None:
            return order  # nobody to charge here: staff review (abnormal, pile-initiated)
        order.paid_amount, order.refunded_amount = funds.capture_for_order(order, order.total_amount)
        order.settled_at = timezone.now()
        order_transition(
            order, S.SETTLED, actor=Actor.SYSTEM, fields=("paid_amount", "refunded_amount", "settled_at")
        )
        task_queue_on_commit("charging.order_notify", order.pk)
    from . import realtime

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


def _price_to_stop(order: ChargingOrder, record: TransactionRecord) -> tuple[pricing.Bill | None, str]:
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
        return _price(order, record), ""
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


def _price(order: ChargingOrder, record: TransactionRecord) -> pricing.Bill | None:
    if not order.tariff_snapshot:
        return None
    snapshot = pricing.TariffSnapshot.from_dict(order.tariff_snapshot)
    by_period = record.energy_by_period()
    idle_minutes = 0
    if by_period:
        return pricing.price_pile_energy(
            snapshot, {pricing.Period(k): v for k, v in by_period.items()}, idle_minutes=idle_minutes
        )
    readings = [(order.started_at, Decimal("0"))]
    readings += [
        (s.at, s.energy_kwh)
        for s in order.samples.filter(at__gt=order.started_at, at__lt=order.stopped_at)
    ]
    readings.append((order.stopped_at, order.energy_kwh))
    return pricing.price_meter_readings(snapshot, readings, idle_minutes=idle_minutes)


def order_settle_by_staff(*, order_id: int, user, reason: str) -> ChargingOrder:
    """Settle an abnormal order by hand (no record will come): charge what the last
    readings show, or nothing. Requires a reason."""
    if not reason.strip():
        raise OrderRefused("reason_required", _("Give a reason."), 400)
    with transaction.atomic():
        order = _lock(order_id)
        if order.state != S.ABNORMAL:
            raise OrderRefused("order_not_abnormal", _("Only abnormal orders can be settled by hand."))
        energy = Decimal(order.progress.get("energy_kwh", "0"))
        at = datetime.fromisoformat(order.progress["at"]) if order.progress.get("at") else timezone.now()
        order.energy_kwh = energy
        order.stopped_at = at
        order.total_amount = estimate_amount(order, energy, at) if order.tariff_snapshot else Decimal("0.00")
        if order.member_id:
            order.paid_amount, order.refunded_amount = funds.capture_for_order(order, order.total_amount)
        order.settled_at = timezone.now()
        order_transition(
            order,
            S.SETTLED,
            actor=Actor.STAFF,
            actor_id=user.pk,
            reason=reason,
            fields=("energy_kwh", "stopped_at", "total_amount", "paid_amount", "refunded_amount", "settled_at"),
        )
    return order


def order_refund_partial(*, order_id: int, amount: Decimal, user, reason: str) -> ChargingOrder:
    """Give back ``amount`` yuan of a settled wallet order to the member's wallet (staff, with a
    reason): a partial reversal of the order's ledger posting, noted on the order's timeline.

    Raises OrderRefused: reason_required, order_not_settled, refund_unsupported (not paid
    from the wallet), refund_exceeds (more than what is left to refund).
    """
    from settlement import services as ledger
    from settlement.models import Posting

    if not reason.strip():
        raise OrderRefused("reason_required", _("Give a reason."), 400)
    with transaction.atomic():
        order = _lock(order_id)
        if order.state != S.SETTLED:
            raise OrderRefused("order_not_settled", _("Only settled orders can be refunded."))
        if order.mode != PaymentMode.WALLET or order.member_id is None:
            raise OrderRefused(
                "refund_unsupported", _("Only orders paid from the wallet can be refunded here.")
            )
        amount = money.yuan(amount)
        if amount <= 0 or amount > order.paid_amount - order.refunded_amount:
            raise OrderRefused("refund_exceeds", _("More than what is left to refund."), 400)
        posting = Posting.objects.get(key=f"order:{order.number}:charge")
        # Serialised by the order's row lock: each refund gets the next key.
        ledger.posting_reverse(
            posting=posting,
            key=f"order:{order.number}:refund:{order.refunded_amount}+{amount}",
            amount=amount,
            memo=reason[:200],
        )
        order.refunded_amount += amount
        order.save(update_fields=["refunded_amount"])
        OrderTransition.objects.create(
            order=order,
            from_state=order.state,
            to_state=order.state,
            actor=Actor.STAFF,
            actor_id=str(user.pk),
            reason=f"refund ¥{amount}: {reason}"[:200],
        )
    return order


# --- recovery ---------------------------------------------------------------------------


def _pile_unreachable(order: ChargingOrder, now: datetime) -> bool:
    """The pile cannot be reached: the last stop attempt found no route or no answer (or
    none was made) and no frame came from the pile for ``UNREACHABLE_S``."""
    from stations import live

    if order.stop_result not in ("", "pile_offline", "timeout", "busy", "failed"):
        return False  # the pile answered
    try:
        seen = live.pile_last_seen(_schema(), order.pile.code)
    except Exception:  # Redis lost: fall back on the database's flag
        return not order.pile.online
    return seen is None or (now - seen).total_seconds() >= UNREACHABLE_S


def orders_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Find what was lost in between and finish it: starts past their deadline fail,
    silent charges are asked for readings (YKC 0x12) then marked abnormal, unconfirmed stops
    are sent again (also for abnormal orders whose stop never reached the pile), a stop
    becomes abnormal only when the pile is unreachable past the record deadline (or when
    the pile stopped and no record came for three deadlines), stored records not yet
    settled are settled, reservations past their time expire. Returns counts per kind."""

    now = now or timezone.now()
    policy = ChargingPolicy.current()
    counts = {
        "start_timeout": 0, "asked": 0, "abnormal": 0, "stops_resent": 0, "records": 0,
        "reservations": 0,
    }
    for order_id in ChargingOrder.objects.filter(
        state=S.STARTING, start_deadline__lt=now
    ).values_list("pk", flat=True):
        order_check_start(order_id=order_id, now=now)
        counts["start_timeout"] += 1
    silent_since = now - timedelta(seconds=policy.progress_timeout_s)
    lost_since = now - timedelta(seconds=3 * policy.progress_timeout_s)
    for order in ChargingOrder.objects.filter(state=S.CHARGING):
        last = order.last_progress_at or order.started_at or order.created_at
        if last < lost_since:
            _mark_abnormal(order.pk, "no readings from the pile")
            counts["abnormal"] += 1
        elif last < silent_since:
            task_queue_on_commit("charging.order_ask_readings", order.pk)
            counts["asked"] += 1
    deadline = now - timedelta(seconds=policy.stop_timeout_s)
    retry_before = now - timedelta(seconds=STOP_RETRY_S)
    for order in ChargingOrder.objects.filter(state=S.STOPPING).select_related("pile"):
        requested = order.stop_requested_at or order.created_at
        if order.stop_confirmed_at is None:
            if requested < deadline and _pile_unreachable(order, now):
                _mark_abnormal(order.pk, "pile unreachable: the stop did not arrive")
                counts["abnormal"] += 1
            elif order.stop_sent_at is None or order.stop_sent_at < retry_before:
                with transaction.atomic():
                    _queue_command("charging.order_send_stop", order.pk)
                counts["stops_resent"] += 1
        elif order.stop_confirmed_at < now - timedelta(seconds=3 * policy.stop_timeout_s):
            _mark_abnormal(order.pk, "no transaction record after the pile stopped")
            counts["abnormal"] += 1
        elif requested < deadline:
            task_queue_on_commit("charging.order_ask_readings", order.pk)
            counts["asked"] += 1
    # Abnormal because the pile was unreachable: the stop goes out again (the pile may be
    # back and still charging), every few retry intervals.
    for order_id in ChargingOrder.objects.filter(
        state=S.ABNORMAL,
        stop_requested_at__isnull=False,
        stop_confirmed_at__isnull=True,
        record__isnull=True,
    ).filter(
        models.Q(stop_sent_at__isnull=True)
        | models.Q(stop_sent_at__lt=now - timedelta(seconds=4 * STOP_RETRY_S))
    ).values_list("pk", flat=True):
        with transaction.atomic():
            _queue_command("charging.order_send_stop", order_id)
        counts["stops_resent"] += 1
    for record_id in TransactionRecord.objects.filter(
        received_at__lt=now - timedelta(minutes=1)
    ).exclude(order__state=S.SETTLED).exclude(order__pile_initiated=True, order__member__isnull=True).values_list(
        "pk", flat=True
    ):
        record_settle(record_id=record_id)
        counts["records"] += 1
    counts["reservations"] = Reservation.objects.filter(
        state=Reservation.State.ACTIVE, expires_at__lt=now
    ).update(state=Reservation.State.EXPIRED, ended_at=now)
    return counts


def _mark_abnormal(order_id: int, reason: str) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        if order.state in (S.CHARGING, S.STOPPING, S.STARTING):
            order.abnormal = True
            order_transition(order, S.ABNORMAL, actor=Actor.SYSTEM, reason=reason, fields=("abnormal",))


# --- reservations ---------------------------------------------------------------------


def reservation_create(*, member: Member, connector: Connector, now: datetime | None = None) -> Reservation:
    """Hold a free connector for the operator's reservation minutes. Raises OrderRefused:
    connector_busy, connector_reserved, reservation_exists, order_in_progress,
    insufficient_balance (when there is a fee)."""
    now = now or timezone.now()
    policy = ChargingPolicy.current()
    with transaction.atomic():
        Member.objects.select_for_update().get(pk=member.pk)
        connector = Connector.objects.select_for_update().select_related("pile__station").get(pk=connector.pk)
        if Reservation.objects.filter(member=member, state=Reservation.State.ACTIVE).exists():
            raise OrderRefused("reservation_exists", _("You already have a reservation."))
        if ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists():
            raise OrderRefused("order_in_progress", _("You already have a charge in progress."))
        if Reservation.objects.filter(connector=connector, state=Reservation.State.ACTIVE).exists():
            raise OrderRefused("connector_reserved", _("This connector is reserved."))
        if connector.status not in (Connector.Status.IDLE, Connector.Status.PLUGGED) or not (
            connector.pile.online and connector.pile.enabled
        ):
            raise OrderRefused("connector_busy", _("This connector is not free."))
        reservation = Reservation.objects.create(
            member=member,
            connector=connector,
            fee=policy.reservation_fee,
            expires_at=now + timedelta(minutes=policy.reservation_minutes),
        )
        if policy.reservation_fee > 0 and not funds.charge_reservation(reservation):
            raise OrderRefused("insufficient_balance", _("Your balance is too low."), 402)
    return reservation


def reservation_cancel(*, reservation: Reservation, now: datetime | None = None) -> Reservation:
    """Cancel an active reservation (the fee, if any, is not refunded)."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if reservation.state != Reservation.State.ACTIVE:
            raise OrderRefused("reservation_not_active", _("This reservation has ended."))
        reservation.state = Reservation.State.CANCELLED
        reservation.ended_at = now or timezone.now()
        reservation.save(update_fields=["state", "ended_at"])
    return reservation
