"""The money side of an order, in one place: holds on the wallet, capture at settlement,
pay-per-order prepayments. Every call is idempotent by a key made from the order number,
so a retried settlement never moves money twice."""

from __future__ import annotations

from decimal import Decimal

from .models import ChargingOrder, PaymentMode, Reservation

ZERO = Decimal("0.00")


def _hold_key(order: ChargingOrder) -> str:
    return f"order:{order.number}:hold"


def hold_for_order(order: ChargingOrder) -> Decimal | None:
    """Hold the member's available funds for the order; None when below the operator's
    minimum to start. Returns the amount held (what the pile is told as balance)."""
    from billing import selectors as billing_selectors, services as billing_services  # noqa: I001
    from settlement import selectors as ledger_selectors, services as ledger  # noqa: I001
    balance = ledger_selectors.wallet_balance(order.member)
    minimum = billing_selectors.money_policy().min_balance_to_start
    if balance.available <= 0 or balance.available < minimum:
        return None
    ledger.wallet_hold(member=order.member, amount=balance.available, key=_hold_key(order))
    return balance.available


def release_for_order(order: ChargingOrder) -> None:
    from billing import selectors as billing_selectors, services as billing_services  # noqa: I001
    from settlement import selectors as ledger_selectors, services as ledger  # noqa: I001
    if order.mode == PaymentMode.PREPAY:
        billing_services.prepay_settle(order_ref=order.number, amount_used=ZERO, key=f"order:{order.number}:prepay")
    elif order.member_id and order.hold_amount:
        ledger.wallet_hold_release(key=_hold_key(order))


def capture_for_order(order: ChargingOrder, amount: Decimal) -> tuple[Decimal, Decimal]:
    """Charge ``amount`` for the order; returns (paid, refunded)."""
    from billing import selectors as billing_selectors, services as billing_services  # noqa: I001
    from settlement import selectors as ledger_selectors, services as ledger  # noqa: I001
    key = f"order:{order.number}:charge"
    if order.mode == PaymentMode.PREPAY:
        billing_services.prepay_settle(order_ref=order.number, amount_used=amount, key=key)
        return amount, (order.prepay_amount or ZERO) - amount
    ledger.order_charge(
        member=order.member, amount=amount, key=key, hold_key=_hold_key(order), memo=f"charging {order.number}"
    )
    return amount, ZERO


def prepay_paid(ref: str) -> Decimal | None:
    from billing import selectors as billing_selectors, services as billing_services  # noqa: I001
    from settlement import selectors as ledger_selectors, services as ledger  # noqa: I001
    return billing_selectors.prepay_paid(ref)


def prepay_attach(order: ChargingOrder, ref: str) -> None:
    from billing import selectors as billing_selectors, services as billing_services  # noqa: I001
    from settlement import selectors as ledger_selectors, services as ledger  # noqa: I001
    billing_services.prepay_attach(order_ref=order.number, payment_ref=ref)


def charge_reservation(reservation: Reservation) -> bool:
    from billing import selectors as billing_selectors, services as billing_services  # noqa: I001
    from settlement import selectors as ledger_selectors, services as ledger  # noqa: I001
    balance = ledger_selectors.wallet_balance(reservation.member)
    if balance.available < reservation.fee:
        return False
    ledger.order_charge(
        member=reservation.member,
        amount=reservation.fee,
        key=f"reservation:{reservation.pk}",
        hold_key=None,
        memo=f"reservation {reservation.pk}",
    )
    return True
