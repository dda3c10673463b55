"""Invoicing reads."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Member

from .models import Invoice, InvoiceOrder, InvoiceTitle
from .orders import InvoiceableOrder, order_source

__all__ = ["member_invoices", "member_titles", "invoiceable_orders"]


def member_invoices(member: Member) -> QuerySet[Invoice]:
    return Invoice.objects.filter(member=member).prefetch_related("lines", "orders")


def member_titles(member: Member) -> QuerySet[InvoiceTitle]:
    return InvoiceTitle.objects.filter(member=member)


def invoiceable_orders(member: Member) -> list[InvoiceableOrder]:
    """The member's settled orders with something paid and on no live invoice, newest first."""
    orders = [o for o in order_source().settled_orders(member_id=member.pk) if o.net > 0]
    taken = set(
        InvoiceOrder.objects.filter(
            active=True, order_number__in=[o.number for o in orders]
        ).values_list("order_number", flat=True)
    )
    return [o for o in orders if o.number not in taken]
