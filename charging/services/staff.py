"""Staff actions on an order, each with a reason on the order's timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from evplatform import money
from evplatform.queue import task_queue_on_commit

from .. import funds
from ..models import (
    ChargingOrder,
    OrderTransition,
    PaymentMode,
)
from . import occupancy
from .common import Actor, OrderRefused, S, _lock, order_transition
from .progress import estimate_amount


def order_settle_by_staff(*, order_id: int, user, reason: str) -> ChargingOrder:
    """Settle an abnormal order by hand (no record will come): charge what the last
    readings show, or nothing. Requires a reason."""
    if not reason.strip():
        raise OrderRefused("reason_required", _("Give a reason."), 400)
    with transaction.atomic():
        order = _lock(order_id)
        if order.state != S.ABNORMAL:
            raise OrderRefused("order_not_abnormal", _("Only abnormal orders can be settled by hand."))
        energy = Decimal(order.progress.get("energy_kwh", "0"))
        at = datetime.fromisoformat(order.progress["at"]) if order.progress.get("at") else timezone.now()
        order.energy_kwh = energy
        order.stopped_at = at
        order.total_amount = estimate_amount(order, energy, at) if order.tariff_snapshot else Decimal("0.00")
        if order.member_id:
            order.paid_amount, order.refunded_amount = funds.capture_for_order(order, order.total_amount)
        order.settled_at = timezone.now()
        order_transition(
            order,
            S.SETTLED,
            actor=Actor.STAFF,
            actor_id=user.pk,
            reason=reason,
            fields=("energy_kwh", "stopped_at", "total_amount", "paid_amount", "refunded_amount", "settled_at"),
        )
        occupancy.occupancy_settle(order=order)
        audit.record(user, "order.settle_by_hand", order, detail=reason, changes={
            "state": [S.ABNORMAL, S.SETTLED], "total_amount": [None, str(order.total_amount)]})
    return order


def order_refund_partial(*, order_id: int, amount: Decimal, user, reason: str) -> ChargingOrder:
    """Give back ``amount`` yuan of a settled wallet order to the member's wallet (staff, with a
    reason): a partial reversal of the order's ledger posting, noted on the order's timeline.

    Raises OrderRefused: reason_required, order_not_settled, refund_unsupported (not paid
    from the wallet), refund_exceeds (more than what is left to refund).
    """
    from billing.invoices.services import invoice_order_refunded
    from marketing import hooks as marketing_hooks
    from settlement import services as ledger
    from settlement.models import Posting

    if not reason.strip():
        raise OrderRefused("reason_required", _("Give a reason."), 400)
    with transaction.atomic():
        order = _lock(order_id)
        if order.state != S.SETTLED:
            raise OrderRefused("order_not_settled", _("Only settled orders can be refunded."))
        if order.mode != PaymentMode.WALLET or order.member_id is None:
            raise OrderRefused(
                "refund_unsupported", _("Only orders paid from the wallet can be refunded here.")
            )
        amount = money.yuan(amount)
        if amount <= 0 or amount > order.paid_amount - order.refunded_amount:
            raise OrderRefused("refund_exceeds", _("More than what is left to refund."), 400)
        # The charge is given back first, then the occupancy fee (its own posting).
        fee = occupancy.occupancy_charged(order)
        charge_left = order.paid_amount - fee - min(order.refunded_amount, order.paid_amount - fee)
        from_charge = min(amount, charge_left)
        # Serialised by the order's row lock: each refund gets the next key.
        key = f"order:{order.number}:refund:{order.refunded_amount}+{amount}"
        if from_charge > 0:
            ledger.posting_reverse(
                posting=Posting.objects.get(key=f"order:{order.number}:charge"),
                key=key, amount=from_charge, memo=reason[:200],
            )
        if amount - from_charge > 0:
            ledger.posting_reverse(
                posting=Posting.objects.get(key=f"order:{order.number}:occupancy"),
                key=f"{key}:occupancy", amount=amount - from_charge, memo=reason[:200],
            )
        before = order.refunded_amount
        order.refunded_amount += amount
        order.save(update_fields=["refunded_amount"])
        audit.record(user, "order.refund", order, detail=reason, changes={
            "refunded_amount": [str(before), str(order.refunded_amount)]})
        task_queue_on_commit("analytics.order_update", order.pk)
        funds.refund_split(order)
        marketing_hooks.order_refunded(order=order)
        # An invoice holding the order is red-reversed and re-issued for what remains.
        invoice_order_refunded(order_number=order.number)
        OrderTransition.objects.create(
            order=order,
            from_state=order.state,
            to_state=order.state,
            actor=Actor.STAFF,
            actor_id=str(user.pk),
            reason=f"refund ¥{amount}: {reason}"[:200],
        )
    return order


def order_review_approve(*, order_id: int, user, reason: str) -> ChargingOrder:
    """Approve an order under review: charge the member the bill as priced (the hold on the
    wallet, or the prepayment, is settled by it) and settle. An order nobody started here
    (no member) is closed with nothing charged. Requires a reason.

    Raises OrderRefused: reason_required, order_not_in_review.
    """
    return _review_decide(order_id=order_id, user=user, reason=reason, charge=True)


def order_review_reject(*, order_id: int, user, reason: str) -> ChargingOrder:
    """Reject an order under review: nothing is charged (the wallet hold is released, a
    prepayment refunded in full) and the order is settled at ¥0.00 with the reason on its
    timeline; the pile's figures and our bill stay on the order. Requires a reason.

    Raises OrderRefused: reason_required, order_not_in_review.
    """
    return _review_decide(order_id=order_id, user=user, reason=reason, charge=False)


def _review_decide(*, order_id: int, user, reason: str, charge: bool) -> ChargingOrder:
    if not reason.strip():
        raise OrderRefused("reason_required", _("Give a reason."), 400)
    with transaction.atomic():
        order = _lock(order_id)
        if order.state != S.REVIEW:
            raise OrderRefused("order_not_in_review", _("Only orders under review can be approved "
                                                        "or rejected."))
        if not charge:
            order.discount_amount = Decimal("0.00")
            order.total_amount = Decimal("0.00")
        if order.member_id is not None:
            if charge or order.mode == PaymentMode.PREPAY:
                order.paid_amount, order.refunded_amount = funds.capture_for_order(
                    order, order.total_amount)
            else:
                funds.release_for_order(order)
        order.settled_at = timezone.now()
        word = _("approved") if charge else _("rejected")
        order_transition(
            order, S.SETTLED, actor=Actor.STAFF, actor_id=user.pk,
            reason=f"{word}: {reason}"[:200],
            fields=("discount_amount", "total_amount", "paid_amount", "refunded_amount",
                    "settled_at"),
        )
        # A rejected order is not charged for its occupancy either.
        occupancy.occupancy_settle(order=order, waive=not charge)
        if order.member_id is not None:
            task_queue_on_commit("charging.order_notify", order.pk)
    return order
