"""Reservations: a member holds a free connector for a while (预约)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.queue import task_queue_on_commit
from stations.models import Connector

from .. import funds
from ..models import (
    ACTIVE_STATES,
    ChargingOrder,
    ChargingPolicy,
    QueueEntry,
    Reservation,
)
from .common import OrderRefused


def reservation_create(*, member: Member, connector: Connector, now: datetime | None = None) -> Reservation:
    """Hold a free connector for the operator's reservation minutes. Raises OrderRefused:
    connector_busy, connector_reserved, reservation_exists, order_in_progress,
    insufficient_balance (when there is a fee)."""
    now = now or timezone.now()
    policy = ChargingPolicy.current()
    with transaction.atomic():
        Member.objects.select_for_update().get(pk=member.pk)
        connector = (Connector.objects.select_for_update(of=("self",))
                     .select_related("pile__station").get(pk=connector.pk))
        if Reservation.objects.filter(member=member, state=Reservation.State.ACTIVE).exists():
            raise OrderRefused("reservation_exists", _("You already have a reservation."))
        if ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists():
            raise OrderRefused("order_in_progress", _("You already have a charge in progress."))
        if QueueEntry.objects.filter(member=member, state__in=QueueEntry.OPEN).exists():
            raise OrderRefused("queue_exists", _("You are already in a queue."))
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
        # A queue offer given up: the driver passes, the next one is offered the connector.
        entry = QueueEntry.objects.filter(reservation=reservation, state=QueueEntry.State.OFFERED).first()
        if entry is not None:
            entry.state = QueueEntry.State.PASSED
            entry.ended_at = reservation.ended_at
            entry.end_reason = "declined"
            entry.save(update_fields=["state", "ended_at", "end_reason"])
            task_queue_on_commit("charging.station_schedule", entry.station_id, "offer declined")
    return reservation
