"""The port through which the charging domain offers its settled orders for invoicing.

``charging`` sits above ``billing`` (it may import us, not the reverse), so it registers an
:class:`OrderSource` at start-up (``charging.apps``) and tells us of refunds by calling
``billing.invoices.services.invoice_order_refunded``. Amounts in yuan (2 dp), times aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = ["InvoiceableOrder", "OrderSource", "order_source", "order_source_set"]


@dataclass(frozen=True)
class InvoiceableOrder:
    """A settled order as invoicing sees it. ``net`` = paid − refunded (what the member paid
    for consumption, net of discounts and refunds)."""

    number: str
    member_id: int
    settled: bool
    settled_at: datetime | None
    station_name: str
    energy_kwh: Decimal
    electricity: Decimal  # electricity fee billed
    service: Decimal  # service fee plus occupancy fee billed
    discount: Decimal
    paid: Decimal
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return self.paid - self.refunded


class OrderSource(Protocol):
    def settled_orders(
        self, *, member_id: int, numbers: Sequence[str] | None = None
    ) -> list[InvoiceableOrder]:
        """The member's orders (``numbers`` given: those of them, in any state; else all
        settled ones), newest first. Another member's orders are never returned."""
        ...


_source: OrderSource | None = None


def order_source_set(source: OrderSource) -> None:
    global _source
    _source = source


def order_source() -> OrderSource:
    if _source is None:  # pragma: no cover - charging registers it when Django starts
        raise RuntimeError("no order source registered (is the charging app installed?)")
    return _source
