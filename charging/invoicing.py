"""Charging's side of the invoicing port (:mod:`billing.invoices.orders`): settled orders as
invoicing sees them. Registered by ``charging.apps`` at start-up."""

from __future__ import annotations

from collections.abc import Sequence

from billing.invoices.orders import InvoiceableOrder

from .models import ChargingOrder, OrderState


class ChargingOrderSource:
    def settled_orders(
        self, *, member_id: int, numbers: Sequence[str] | None = None
    ) -> list[InvoiceableOrder]:
        orders = ChargingOrder.objects.filter(member_id=member_id).select_related("station")
        if numbers is None:
            orders = orders.filter(state=OrderState.SETTLED)
        else:
            orders = orders.filter(number__in=list(numbers))
        return [
            InvoiceableOrder(
                number=o.number, member_id=o.member_id, settled=o.state == OrderState.SETTLED,
                settled_at=o.settled_at, station_name=o.station.name, energy_kwh=o.energy_kwh,
                electricity=o.electricity_amount, service=o.service_amount + o.occupancy_amount,
                discount=o.discount_amount, paid=o.paid_amount, refunded=o.refunded_amount,
            )
            for o in orders.order_by("-settled_at", "-pk")
        ]
