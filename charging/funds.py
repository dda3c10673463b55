"""The money side of an order, in one place: a hold on the wallet at start, capture at
settlement, or a pay-per-order prepayment. Every call is idempotent by a key made from
the order number, so a retried settlement never moves money twice."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from billing.payments import selectors as billing_selectors
from billing.payments import services as billing_services
from settlement import selectors as ledger_selectors
from settlement import services as ledger
from settlement import splits

from .models import ChargingOrder, OccupancyState, PaymentMode, Reservation

ZERO = Decimal("0.00")


def _hold_key(order: ChargingOrder) -> str:
    return f"order:{order.number}:hold"


def hold_for_order(order: ChargingOrder) -> Decimal | None:
    """Hold the member's whole available balance for the order (what the pile is told it may
    spend); None when it is below the operator's minimum to start."""
    balance = ledger_selectors.wallet_balance(order.member)
    minimum = ledger.money_policy().min_start_balance
    if balance.available <= 0 or balance.available < minimum:
        return None
    ledger.wallet_hold(member=order.member, amount=balance.available, key=_hold_key(order))
    return balance.available


def release_for_order(order: ChargingOrder) -> None:
    """Give back what an order that never charged had reserved (funds, a chosen coupon)."""
    from marketing import hooks as marketing_hooks

    marketing_hooks.order_released(order=order)
    if order.mode == PaymentMode.PREPAY:
        billing_services.prepay_settle(
            order_ref=order.number, amount_used=ZERO, key=f"order:{order.number}:charge"
        )
    elif order.member_id and order.hold_amount:
        ledger.wallet_hold_release(key=_hold_key(order))


def capture_for_order(order: ChargingOrder, amount: Decimal) -> tuple[Decimal, Decimal]:
    """Charge ``amount`` yuan for the order (beyond the funds: the member's arrears).
    Returns (paid, refunded): for pay-per-order, the unused prepayment is refunded."""
    key = f"order:{order.number}:charge"
    if order.mode == PaymentMode.PARTNER:
        ledger.partner_order_charge(
            partner=order.partner, amount=amount, key=key, ref=order.number,
            memo=_memo(gettext_noop("Partner order %(ref)s"), f"{order.number} {order.partner_seq}"),
        )
        _split(order, amount)
        return amount, ZERO
    if order.mode == PaymentMode.PREPAY:
        settled = billing_services.prepay_settle(order_ref=order.number, amount_used=amount, key=key)
        refunded = settled.refund.amount if settled.refund is not None else ZERO
        split = _split(order, amount)
        if split is not None and split.owners_total + split.commission > 0:
            # the owners' shares where the rule asks for 分账, and in service-provider mode
            # the platform's commission (billing decides what the payment allows)
            billing_services.profit_share_open(
                order_ref=order.number,
                parts=dict(split.lines.filter(kind="share").values_list("owner_id", "amount")),
                commission=split.commission,
            )
        return amount, refunded
    ledger.order_charge(
        member=order.member,
        amount=amount,
        key=key,
        hold_key=_hold_key(order) if order.hold_amount else None,
        memo=_memo(gettext_noop("Charging order %(ref)s"), order.number),
        ref=order.number,
    )
    _split(order, amount)
    return amount, ZERO


def _split(order: ChargingOrder, amount: Decimal):
    """The station owners' and the platform's shares, posted with the charge."""
    by_period: dict[str, Decimal] = {}
    for line in (order.bill or {}).get("lines", []):
        for period in line.get("periods") or []:
            share = Decimal(line["energy_kwh"]) / len(line["periods"])
            by_period[period] = by_period.get(period, ZERO) + share
    return splits.order_split_settle(
        order_ref=order.number, station_id=order.station_id, pile_id=order.pile_id,
        started_at=order.started_at or order.created_at, paid=amount,
        electricity=order.electricity_amount, service=order.service_amount,
        discount=order.discount_amount, energy_kwh=order.energy_kwh,
        energy_by_period={k: str(v) for k, v in by_period.items()},
    )


def refund_split(order: ChargingOrder) -> None:
    """After a refund of the order (``order.refunded_amount`` is the new total): reverse
    the same fraction of its split."""
    # The split covers the charge only (the occupancy fee, its own posting, stays operator
    # revenue), and a refund gives the charge back first.
    fee = order.occupancy_amount if order.occupancy_state == OccupancyState.CHARGED else ZERO
    paid = order.paid_amount - fee
    splits.order_split_refund(
        order_ref=order.number, paid=paid, refunded=min(order.refunded_amount, paid)
    )
    if order.mode == PaymentMode.PREPAY:
        billing_services.profit_share_order_refunded(
            order_ref=order.number, paid=paid, refunded=min(order.refunded_amount, paid)
        )


def _memo(template: str, ref) -> str:
    """A ledger memo in the operator's language (memos are stored text, read by staff)."""
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(template) % {"ref": ref}


def prepay_paid(ref: str, member) -> Decimal | None:
    """The paid, unsettled prepayment ``ref`` of ``member`` (yuan), else None."""
    payment = billing_selectors.prepay_get(ref)
    if payment is None or payment.member_id != member.pk:
        return None
    return billing_selectors.prepay_paid(ref)


def charge_reservation(reservation: Reservation) -> bool:
    """Take the reservation fee from the wallet; False when the balance is too low."""
    if ledger_selectors.wallet_balance(reservation.member).available < reservation.fee:
        return False
    ledger.order_charge(
        member=reservation.member,
        amount=reservation.fee,
        key=f"reservation:{reservation.pk}:fee",
        memo=_memo(gettext_noop("Reservation fee %(ref)s"), reservation.pk),
        ref=f"reservation:{reservation.pk}",
    )
    return True
