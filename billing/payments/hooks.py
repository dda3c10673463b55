"""Seams for the domains above billing (marketing) to act on a paid WeChat payment.

Billing sits below marketing in the layer order (ARCHITECTURE.md), so it cannot call
marketing's services the way charging does; marketing registers its handlers here at start
(``MarketingConfig.ready``). Both kinds run inside the transaction that marks the payment
paid, under the payment's row lock, once per payment (a duplicate notification or a query
racing it finds the payment already paid and calls nothing).

- A **purchase handler** is named by the prefix of ``Payment.order_ref`` (``svip:12`` →
  ``"svip"``) and is given the payment and the ledger key ``wx:txn:<transaction_id>``; it
  must post the money received under that key (debit WeChat clearing, ``payment.amount``
  yuan). A purchase whose prefix nobody handles is credited to the member's wallet cash:
  the money is never lost.
- A **top-up listener** is told after a top-up was credited (reward coupons by tier,
  scratch cards); it must not raise for a business refusal (a sold-out reward is no reward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Payment

PurchaseHandler = Callable[["Payment", str], None]
TopUpListener = Callable[["Payment"], None]

_purchase_handlers: dict[str, PurchaseHandler] = {}
_top_up_listeners: list[TopUpListener] = []


def purchase_handler_register(prefix: str, handler: PurchaseHandler) -> None:
    """Handle paid purchases whose ``order_ref`` starts with ``<prefix>:`` (idempotent)."""
    _purchase_handlers[prefix] = handler


def purchase_handler(order_ref: str) -> PurchaseHandler | None:
    return _purchase_handlers.get(order_ref.partition(":")[0])


def top_up_listener_register(listener: TopUpListener) -> None:
    """Call ``listener(payment)`` after each credited top-up (registered once)."""
    if listener not in _top_up_listeners:
        _top_up_listeners.append(listener)


def top_up_listeners() -> tuple[TopUpListener, ...]:
    return tuple(_top_up_listeners)
