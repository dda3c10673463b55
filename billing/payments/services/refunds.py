"""Wallet refunds along the original payments: request, review, submit, query, apply."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.money import to_fen, yuan
from evplatform.queue import task_queue_on_commit
from settlement import services as ledger
from settlement.models import Posting

from .. import selectors
from ..models import Payment, PaymentRefund, WalletRefund
from ..wechatpay import PayError
from .common import (
    REFUND_TRANSIT,
    BillingError,
    NotificationMismatch,
    _flag,
    _locked,
    _payment_gateway,
    logger,
)


@transaction.atomic
def wallet_refund_request(
    *, member: Member, amount: Decimal | None = None, reason: str = "", accept_forfeit: bool = False
) -> WalletRefund:
    """The member asks for wallet cash back (default: all that can be refunded).

    The cash leaves the wallet at once (to refunds in transit); the free bonus balance is
    forfeited if the operator's policy says so, which the member must have accepted
    (``accept_forfeit``) after seeing :func:`billing.payments.selectors.wallet_refund_preview`.
    Automatic mode refunds now; review mode waits for staff.

    Raises BillingError ``nothing_to_refund``, ``amount_exceeds_refundable``,
    ``forfeit_not_accepted`` (409), ``refund_in_progress`` (409).
    """
    preview = selectors.wallet_refund_preview(member)
    amount = preview.refundable if amount is None else yuan(amount)
    if preview.refundable <= 0:
        raise BillingError("nothing_to_refund", _("There is no refundable balance."), 409)
    if amount <= 0 or amount > preview.refundable:
        raise BillingError(
            "amount_exceeds_refundable",
            _("At most %(max)s yuan can be refunded.") % {"max": preview.refundable},
        )
    if preview.bonus_forfeited > 0 and not accept_forfeit:
        raise BillingError(
            "forfeit_not_accepted",
            _("Refunding forfeits your bonus balance of %(bonus)s yuan; confirm to go on.")
            % {"bonus": preview.bonus_forfeited},
            409,
        )
    if WalletRefund.objects.filter(
        member=member, status__in=[WalletRefund.Status.REVIEW, WalletRefund.Status.PROCESSING]
    ).exists():
        raise BillingError("refund_in_progress", _("A refund is already in progress."), 409)
    refund = WalletRefund.objects.create(member=member, amount=amount, reason=reason[:200])
    try:
        ledger.wallet_cash_out(
            member=member, amount=amount, transit=REFUND_TRANSIT,
            kind=Posting.Kind.REFUND_REQUEST, key=f"wallet_refund:{refund.pk}", ref=str(refund),
        )
    except ledger.InsufficientFunds:
        raise BillingError("amount_exceeds_refundable", _("Not enough balance."), 409) from None
    if ledger.money_policy().forfeit_bonus_on_refund:
        forfeit = ledger.bonus_forfeit(
            member=member, key=f"wallet_refund:{refund.pk}:bonus", ref=str(refund)
        )
        if forfeit is not None:
            refund.bonus_forfeited = forfeit.entries.filter(amount__gt=0).get().amount
            refund.save(update_fields=["bonus_forfeited"])
    if ledger.money_policy().refund_mode == ledger.MoneyPolicy.RefundMode.AUTO:
        _wallet_refund_allocate(refund)
    return refund


def _wallet_refund_allocate(refund: WalletRefund) -> None:
    """Split the refund over the member's paid top-ups, oldest first (inside a transaction)."""
    candidates = list(selectors.refundable_payments(refund.member).values_list("pk", flat=True))
    left = refund.amount
    for payment in _locked(Payment, *candidates):
        if left <= 0:
            break
        part = min(payment.refundable, left)
        if part <= 0:
            continue
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + part)
        made = PaymentRefund.objects.create(
            payment=payment, wallet_refund=refund, amount=part,
            out_refund_no=f"WR{refund.pk}P{payment.pk}",
        )
        _enqueue_refund_submit(made.pk)
        left -= part
    if left > 0:
        raise BillingError(
            "amount_exceeds_refundable", _("Not enough of the original payments can be refunded."), 409
        )
    refund.status = WalletRefund.Status.PROCESSING
    refund.save(update_fields=["status"])


def _enqueue_refund_submit(refund_id: int) -> None:
    task_queue_on_commit("billing.payment_refund_submit", refund_id)


@transaction.atomic
def wallet_refund_review(
    *, refund: WalletRefund, approve: bool, reviewer: AbstractBaseUser | None, note: str = ""
) -> WalletRefund:
    """Staff decide on a refund waiting for review. Rejecting gives the cash (and any
    forfeited bonus) back to the wallet. Raises BillingError ``not_in_review``."""
    (refund,) = _locked(WalletRefund, refund.pk)
    if refund.status != WalletRefund.Status.REVIEW:
        raise BillingError("not_in_review", _("This refund is not waiting for review."), 409)
    refund.reviewed_by, refund.reviewed_at, refund.review_note = reviewer, timezone.now(), note[:200]
    refund.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    if approve:
        _wallet_refund_allocate(refund)
        return refund
    ledger.transit_return(
        member=refund.member, transit=REFUND_TRANSIT, amount=refund.amount,
        kind=Posting.Kind.REFUND_FAILED, key=f"wallet_refund:{refund.pk}:rejected", ref=str(refund),
    )
    forfeit = Posting.objects.filter(key=f"wallet_refund:{refund.pk}:bonus").first()
    if forfeit is not None:
        ledger.posting_reverse(posting=forfeit, key=f"wallet_refund:{refund.pk}:bonus:back")
    refund.status, refund.finished_at = WalletRefund.Status.REJECTED, timezone.now()
    refund.save(update_fields=["status", "finished_at"])
    return refund


def _refund_reason(refund: PaymentRefund) -> str:
    if refund.wallet_refund_id:
        return _("Balance refund")
    if refund.payment.purpose == Payment.Purpose.PURCHASE:
        return _("Purchase refund")
    return _("Unused prepayment")


@transaction.atomic
def purchase_refund(*, order_ref: str, amount: Decimal, out_refund_no: str) -> PaymentRefund:
    """Refund ``amount`` yuan of a paid purchase (:func:`..payments.purchase_create`) along
    its WeChat payment. The caller has already moved the money into refunds in transit in
    the ledger, in the same transaction; a refund WeChat refuses returns it to the member's
    wallet cash. Idempotent by ``out_refund_no`` (at most 32 characters). Raises
    BillingError ``purchase_not_paid`` (409), ``amount_exceeds_refundable``."""
    payment = Payment.objects.filter(
        purpose=Payment.Purpose.PURCHASE, order_ref=order_ref, status=Payment.Status.PAID
    ).first()
    if payment is None:
        raise BillingError("purchase_not_paid", _("This purchase has no paid payment."), 409)
    (payment,) = _locked(Payment, payment.pk)
    if made := PaymentRefund.objects.filter(out_refund_no=out_refund_no).first():
        return made
    amount = yuan(amount)
    if amount <= 0 or amount > payment.refundable:
        raise BillingError(
            "amount_exceeds_refundable",
            _("At most %(max)s yuan can be refunded.") % {"max": payment.refundable},
        )
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + amount)
    refund = PaymentRefund.objects.create(payment=payment, amount=amount, out_refund_no=out_refund_no)
    _enqueue_refund_submit(refund.pk)
    return refund


def payment_refund_submit(*, refund_id: int) -> PaymentRefund:
    """Send a refund to WeChat (same out_refund_no and body on every try, which WeChat
    answers with the same refund). An unclear answer leaves it for the query job."""
    refund = PaymentRefund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != PaymentRefund.Status.SUBMITTING:
        return refund
    try:
        data = _payment_gateway(refund.payment).refund(
            out_refund_no=refund.out_refund_no,
            out_trade_no=refund.payment.out_trade_no,
            refund_fen=to_fen(refund.amount),
            total_fen=to_fen(refund.payment.amount),
            reason=_refund_reason(refund),
        )
    except PayError as exc:
        PaymentRefund.objects.filter(pk=refund.pk).update(last_error=exc.text[:200])
        if exc.unclear:
            return refund
        logger.error("refund %s refused: %s", refund.out_refund_no, exc)
        return _refund_finish(refund, success=False, wechat_status=exc.code)
    return payment_refund_apply(data=data)


def payment_refund_sync(*, refund: PaymentRefund) -> PaymentRefund:
    """Query a refund that is being submitted or processed (lost answer or notification)."""
    if refund.status not in (PaymentRefund.Status.SUBMITTING, PaymentRefund.Status.PROCESSING):
        return refund
    try:
        data = _payment_gateway(refund.payment).refund_query(refund.out_refund_no)
    except PayError:
        return refund
    if data is None:
        return payment_refund_submit(refund_id=refund.pk)  # never reached WeChat: send it
    return payment_refund_apply(data=data)


def payment_refund_apply(*, data: dict[str, Any]) -> PaymentRefund:
    """Apply WeChat's refund state (reply, query or notification). Raises
    NotificationMismatch when the refund is unknown or its amount differs."""
    refund = (
        PaymentRefund.objects.select_related("payment")
        .filter(out_refund_no=data.get("out_refund_no") or "")
        .first()
    )
    if refund is None:
        raise NotificationMismatch(f"unknown out_refund_no {data.get('out_refund_no')!r}")
    amount = (data.get("amount") or {}).get("refund")
    if amount != to_fen(refund.amount) or data.get("out_trade_no") not in (
        None, refund.payment.out_trade_no
    ):
        _flag(Payment, refund.payment_id, f"refund {refund.out_refund_no} mismatch: {amount}")
        raise NotificationMismatch(f"{refund.out_refund_no}: amount {amount}")
    status = data.get("refund_status") or data.get("status") or ""
    if status == "SUCCESS":
        return _refund_finish(refund, success=True, wechat_status=status, refund_id=data.get("refund_id"))
    if status in ("CLOSED", "ABNORMAL"):
        return _refund_finish(refund, success=False, wechat_status=status, refund_id=data.get("refund_id"))
    PaymentRefund.objects.filter(pk=refund.pk, status=PaymentRefund.Status.SUBMITTING).update(
        status=PaymentRefund.Status.PROCESSING, refund_id=data.get("refund_id") or "",
        wechat_status=status,
    )
    refund.refresh_from_db()
    return refund


@transaction.atomic
def _refund_finish(
    refund: PaymentRefund, *, success: bool, wechat_status: str, refund_id: str | None = None
) -> PaymentRefund:
    (refund,) = _locked(PaymentRefund, refund.pk)
    if refund.status in (PaymentRefund.Status.SUCCESS, PaymentRefund.Status.FAILED):
        return refund
    member = refund.payment.member
    if success:
        ledger.transit_settle(
            transit=REFUND_TRANSIT, amount=refund.amount, kind=Posting.Kind.REFUND_SUCCESS,
            key=f"wx:refund:{refund.out_refund_no}", member=member, ref=refund.out_refund_no,
        )
    else:
        # The money stays with the operator: back to the member's wallet, refundable again.
        _locked(Payment, refund.payment_id)
        Payment.objects.filter(pk=refund.payment_id).update(
            refunded_amount=F("refunded_amount") - refund.amount
        )
        ledger.transit_return(
            member=member, transit=REFUND_TRANSIT, amount=refund.amount,
            kind=Posting.Kind.REFUND_FAILED, key=f"refund_failed:{refund.out_refund_no}",
            ref=refund.out_refund_no,
        )
    refund.status = PaymentRefund.Status.SUCCESS if success else PaymentRefund.Status.FAILED
    refund.wechat_status = wechat_status
    refund.refund_id = refund_id or refund.refund_id
    refund.finished_at = timezone.now()
    refund.save(update_fields=["status", "wechat_status", "refund_id", "finished_at"])
    if refund.wallet_refund_id:
        _wallet_refund_close(refund.wallet_refund_id)
    return refund


def _wallet_refund_close(wallet_refund_id: int) -> None:
    (parent,) = _locked(WalletRefund, wallet_refund_id)
    states = set(parent.parts.values_list("status", flat=True))
    if states & {PaymentRefund.Status.SUBMITTING, PaymentRefund.Status.PROCESSING}:
        return
    S = PaymentRefund.Status
    parent.status = (
        WalletRefund.Status.SUCCESS if states == {S.SUCCESS}
        else WalletRefund.Status.FAILED if states == {S.FAILED}
        else WalletRefund.Status.PARTIAL
    )
    parent.finished_at = timezone.now()
    parent.save(update_fields=["status", "finished_at"])
