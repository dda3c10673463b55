"""Reads of orders and reservations."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Member
from stations.models import Connector

from .models import ACTIVE_STATES, ChargingOrder, Reservation


def connector_by_code(code: str) -> Connector | None:
    """A connector by its code (pile code + 2-digit number) or its QR value."""
    qs = Connector.objects.select_related("pile__station")
    if len(code) == 16 and code.isdigit():
        found = qs.filter(pile__code=code[:14], number=int(code[14:])).first()
        if found:
            return found
    return qs.filter(qr_code=code).first()


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
