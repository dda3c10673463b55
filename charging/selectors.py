"""Reads of orders and reservations."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Member

from .models import ACTIVE_STATES, ChargingOrder, Reservation


def order_list_for_member(member: Member) -> QuerySet[ChargingOrder]:
    return ChargingOrder.objects.filter(member=member).select_related(
        "station", "pile", "connector"
    )


def order_current_for_member(member: Member) -> ChargingOrder | None:
    return order_list_for_member(member).filter(state__in=ACTIVE_STATES).first()


def reservation_current_for_member(member: Member) -> Reservation | None:
    return (
        Reservation.objects.filter(member=member, state=Reservation.State.ACTIVE)
        .select_related("connector__pile__station")
        .first()
    )
