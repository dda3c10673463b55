"""Starting an order: the one order-creation path (the app, a card or VIN at the pile,
partner platforms), the remote start and the pile's answer, the start timeout."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.queue import task_queue_on_commit
from settlement import splits
from stations.models import Connector, Station

from .. import funds, port
from ..models import (
    ACTIVE_STATES,
    ROAMING_ACTIVE,
    ChargingOrder,
    ChargingPolicy,
    PaymentMode,
    QueueEntry,
    Reservation,
    RoamingOrder,
    StopReason,
)
from . import power
from .common import (
    Actor,
    OrderRefused,
    S,
    _command_timeout,
    _lock,
    _new_order_number,
    _new_trade_no,
    _queue_command,
    _schema,
    order_transition,
)

logger = logging.getLogger(__name__)


def _check_member(member: Member) -> None:
    if not member.is_active:
        raise OrderRefused("member_disabled", _("This account is disabled."), 403)


def _check_connector(connector: Connector, member: Member | None) -> None:
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
    member_pk = member.pk if member is not None else None
    if (reserved_for is not None or status == Connector.Status.RESERVED) and reserved_for != member_pk:
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
    member: Member | None,
    connector: Connector,
    mode: str,
    prepay_ref: str | None = None,
    at_pile: bool = False,
    card_no: str = "",
    vin: str = "",
    idempotency_key: str = "",
    partner: str = "",
    partner_seq: str = "",
    partner_credit: Decimal | None = None,
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

    A partner platform's order (T/CEC ``query_start_charge``): ``member`` None, ``mode``
    partner, ``partner`` its OperatorID, ``partner_seq`` its StartChargeSeq (a repeat returns
    the first order, on another connector raises idempotency_key_reused), and
    ``partner_credit`` the yuan the pile may spend (no wallet hold: the order is billed to
    the partner's receivable at settlement).
    """
    from billing.tariffs import selectors as tariff_selectors
    from billing.tariffs import services as tariff_services

    now = now or timezone.now()
    by_partner = mode == PaymentMode.PARTNER
    if by_partner != (member is None) or (by_partner and not (partner and partner_seq)):
        raise ValueError("a partner order has a partner and its sequence and no member")
    if member is not None:
        _check_member(member)
    policy = ChargingPolicy.current()
    with transaction.atomic():
        if member is not None:
            # Lock the member row: two starts of one member serialise here.
            Member.objects.select_for_update().get(pk=member.pk)
        if by_partner:
            earlier = ChargingOrder.objects.filter(partner=partner, partner_seq=partner_seq).first()
            if earlier is not None:
                if earlier.connector_id != connector.pk:
                    raise OrderRefused(
                        "idempotency_key_reused",
                        _("This order number was used for another request."),
                        422,
                    )
                return earlier
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
        # A station with a power limit: its row first (as the queue's offers lock it), so
        # two starts there are admitted one at a time.
        list(Station.objects.select_for_update(of=("self",))
             .filter(piles__connectors=connector.pk, max_power_kw__isnull=False))
        connector = (Connector.objects.select_for_update(of=("self",))
                     .select_related("pile__station").get(pk=connector.pk))
        if member is not None and (
            ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists()
            # ...or one on an interconnection partner's pile (charging.roaming)
            or RoamingOrder.objects.filter(member=member, state__in=ROAMING_ACTIVE).exists()
        ):
            raise OrderRefused("order_in_progress", _("You already have a charge in progress."))
        _check_connector(connector, member)
        power.power_check_start(station=connector.pile.station, pile=connector.pile)
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
            partner=partner,
            partner_seq=partner_seq,
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
        elif by_partner:
            order.hold_amount = partner_credit or Decimal("0.00")
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
        elif by_partner:
            actor, actor_id, reason = Actor.SYSTEM, partner, f"partner order {partner_seq}"
        else:
            actor, actor_id, reason = Actor.MEMBER, member.pk, ""
        order_transition(
            order, S.STARTING, actor=actor, actor_id=actor_id, reason=reason,
            fields=("hold_amount",),
        )
        if member is not None:
            Reservation.objects.filter(
                member=member, connector=connector, state=Reservation.State.ACTIVE
            ).update(state=Reservation.State.USED, ended_at=now, order=order)
            # A driver in this station's queue is served, whether offered this connector or not.
            QueueEntry.objects.filter(
                member=member, station=order.station, state__in=QueueEntry.OPEN
            ).update(state=QueueEntry.State.SERVED, ended_at=now, end_reason=f"order {order.number}")
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
    # The station's split rule may ask for WeChat 分账 of pay-per-order payments.
    sharing = splits.profit_sharing_in_force(
        station_id=connector.pile.station_id, pile_id=connector.pile_id, at=timezone.now())
    start = billing_services.prepay_create(
        member=member, amount=amount, order_ref=number, profit_sharing=sharing)
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
    from .. import bus

    if deadline is not None and time.time() > deadline:
        return "expired"
    order = ChargingOrder.objects.select_related("pile", "connector", "station").get(pk=order_id)
    if order.state != S.STARTING:
        return order.state
    if order.start_deadline and order.start_deadline <= timezone.now():
        return "expired"
    if order.station.max_power_kw is not None:
        # Cap the piles (this one included) before it starts drawing power.
        plan = power.station_power_plan(station_id=order.station_id, reason=f"start {order.number}")
        if not power.pile_cap_acknowledged(plan, order.pile):
            order_fail(order_id=order_id, reason="the pile did not take its power cap")
            return "power_cap_refused"
    result = bus.send(_schema(), order_start_command(order), timeout=_command_timeout(deadline))
    if not result.ok:
        order_fail(order_id=order_id, reason=f"remote start: {result.error}")
    return "sent" if result.ok else result.error
