"""Payments through WeChat Pay: top-ups, pay-per-order prepayments, refunds, withdrawals.

Calls to WeChat are made OUTSIDE database transactions (never hold a row lock across the
network); state changes and ledger postings are made inside one, under a row lock taken
with ``_locked``. Every outbound id is stored before the first call and reused by retries;
an unclear answer (timeout, 5xx) is resolved by a query, never by a new id.

Ledger keys: ``wx:txn:<transaction_id>`` (money in), ``wx:refund:<out_refund_no>`` and
``wx:transfer:<out_bill_no>`` (money out), so a duplicate notification, a query job and
a notification racing each other all post once.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Model
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.errors import DomainError
from evplatform.money import ZERO, to_fen, yuan
from evplatform.queue import task_queue_on_commit
from settlement import services as ledger
from settlement.models import Account, Posting
from tenants.models import MiniProgram

from . import selectors
from .models import Payment, PaymentRefund, WalletRefund, Withdrawal
from .wechatpay import Gateway, NotifyRejected, PayError, PayNotConfigured, gateway_for

logger = logging.getLogger(__name__)

REFUND_TRANSIT = Account.Kind.REFUND_TRANSIT
WITHDRAWAL_TRANSIT = Account.Kind.WITHDRAWAL_TRANSIT


class BillingError(DomainError):
    """A payments refusal with a stable ``code`` and the HTTP ``status`` (400 unless given)."""


class NotificationMismatch(Exception):
    """A verified notification that does not match our record (answered 4xx, flagged)."""


def _locked(model: type[Model], *pks: int) -> list:
    """Row-lock ``model`` rows in primary-key order (the billing app's one lock helper)."""
    return list(model.objects.select_for_update().filter(pk__in=pks).order_by("pk"))


def _mini_program() -> MiniProgram:
    mp = MiniProgram.objects.select_related("operator").filter(
        operator__schema_name=connection.schema_name
    ).first()
    if mp is None:
        raise BillingError("pay_not_configured", _("WeChat Pay is not set up."), 409)
    return mp


def _gateway() -> Gateway:
    try:
        return gateway_for(_mini_program())
    except PayNotConfigured:
        raise BillingError("pay_not_configured", _("WeChat Pay is not set up."), 409) from None


def _new_no(prefix: str) -> str:
    return f"{prefix}{timezone.now():%y%m%d%H%M}{secrets.token_hex(6).upper()}"


# =========================================================================== payments
@dataclass(frozen=True)
class PaymentStart:
    payment: Payment
    pay_params: dict[str, str]  # for wx.requestPayment


def top_up_create(*, member: Member, amount: Decimal) -> PaymentStart:
    """Start a wallet top-up of ``amount`` yuan: returns the payment and the signed
    ``wx.requestPayment`` parameters. The bonus of the best top-up offer is fixed now.

    Raises BillingError ``amount_out_of_range``, ``pay_not_configured``,
    ``payment_unavailable`` (WeChat unreachable; the payment stays pending and is
    queried later), ``payment_refused``.
    """
    policy = ledger.money_policy()
    amount = yuan(amount)
    if not policy.min_top_up <= amount <= policy.max_top_up:
        raise BillingError(
            "amount_out_of_range",
            _("A top-up must be between %(min)s and %(max)s yuan.")
            % {"min": policy.min_top_up, "max": policy.max_top_up},
        )
    return _payment_start(
        member=member,
        purpose=Payment.Purpose.TOP_UP,
        amount=amount,
        bonus=selectors.top_up_bonus(amount),
        description=_("Wallet top-up"),
    )


def prepay_create(*, member: Member, amount: Decimal, order_ref: str) -> PaymentStart:
    """Pay-per-order: start a prepayment of ``amount`` yuan for charging order
    ``order_ref``. Asking again for the same order and amount while it is unpaid gives
    fresh ``wx.requestPayment`` parameters for the same payment.

    Raises BillingError ``amount_out_of_range``, ``prepay_exists`` (409: already paid, or
    pending with another amount), and those of :func:`top_up_create`.
    """
    policy = ledger.money_policy()
    amount = yuan(amount)
    if not policy.min_top_up <= amount <= policy.max_top_up:
        raise BillingError(
            "amount_out_of_range",
            _("A prepayment must be between %(min)s and %(max)s yuan.")
            % {"min": policy.min_top_up, "max": policy.max_top_up},
        )
    existing = selectors.prepay_get(order_ref)
    if existing is not None:
        if (
            existing.status == Payment.Status.PENDING
            and existing.member_id == member.pk
            and existing.amount == amount
            and existing.expires_at > timezone.now()
        ):
            return _payment_prepay(existing, description=_("Charging prepayment"))
        raise BillingError("prepay_exists", _("This order already has a prepayment."), 409)
    return _payment_start(
        member=member,
        purpose=Payment.Purpose.PREPAY,
        amount=amount,
        order_ref=order_ref,
        description=_("Charging prepayment"),
    )


def _payment_start(
    *, member: Member, purpose: str, amount: Decimal, description: str,
    bonus: Decimal = ZERO, order_ref: str = "",
) -> PaymentStart:
    gateway = _gateway()
    policy = ledger.money_policy()
    payment = Payment.objects.create(
        member=member,
        purpose=purpose,
        amount=amount,
        bonus=bonus,
        order_ref=order_ref,
        out_trade_no=_new_no("T" if purpose == Payment.Purpose.TOP_UP else "P"),
        appid=gateway.appid,
        mchid=gateway.mchid,
        openid=member.openid,
        expires_at=timezone.now() + timedelta(minutes=policy.payment_expire_minutes),
    )
    return _payment_prepay(payment, description=description, gateway=gateway)


def _payment_prepay(
    payment: Payment, *, description: str, gateway: Gateway | None = None
) -> PaymentStart:
    gateway = gateway or _gateway()
    try:
        prepay_id = gateway.jsapi_prepay(
            out_trade_no=payment.out_trade_no,
            description=f"{_mini_program().operator.name}-{description}"[:127],
            total_fen=to_fen(payment.amount),
            openid=payment.openid,
            expires_at=payment.expires_at,
        )
    except PayError as exc:
        payment.last_error = str(exc)[:200]
        if not exc.unclear:
            payment.status = Payment.Status.FAILED
        payment.save(update_fields=["last_error", "status", "updated_at"])
        logger.warning("prepay %s failed: %s", payment.out_trade_no, exc)
        if exc.unclear:
            raise BillingError(
                "payment_unavailable", _("WeChat Pay is not answering; try again."), 502
            ) from exc
        raise BillingError("payment_refused", _("WeChat Pay refused the payment."), 502) from exc
    payment.prepay_id = prepay_id
    payment.save(update_fields=["prepay_id", "updated_at"])
    return PaymentStart(payment, gateway.request_payment_params(prepay_id))


def _flag(model: type[Model], pk: int, reason: str) -> None:
    # Committed on its own: a mismatch must stay visible although the notification fails.
    model.objects.filter(pk=pk).update(flagged=True, flag_reason=reason[:200])
    logger.error("%s %s flagged: %s", model.__name__, pk, reason)


def payment_apply_transaction(*, txn: dict[str, Any]) -> Payment:
    """Apply a WeChat transaction (from a notification or a query) to our payment.

    A SUCCESS credits the wallet (top-up: cash + bonus) or the prepaid orders account,
    exactly once. Raises NotificationMismatch (and flags the payment) when appid, mchid
    or amount differ from ours, or the out_trade_no is unknown.
    """
    payment = Payment.objects.filter(out_trade_no=txn.get("out_trade_no") or "").first()
    if payment is None:
        raise NotificationMismatch(f"unknown out_trade_no {txn.get('out_trade_no')!r}")
    total = (txn.get("amount") or {}).get("total")
    problems = [
        name
        for name, theirs, ours in (
            ("appid", txn.get("appid"), payment.appid),
            ("mchid", txn.get("mchid"), payment.mchid),
            ("amount", total, to_fen(payment.amount)),
        )
        if theirs != ours
    ]
    if problems:
        _flag(Payment, payment.pk, f"mismatch {','.join(problems)}: {txn.get('amount')}")
        raise NotificationMismatch(f"{payment.out_trade_no}: {problems}")
    state = txn.get("trade_state")
    if state not in ("SUCCESS", "REFUND") or not txn.get("transaction_id"):
        return payment
    with transaction.atomic():
        (payment,) = _locked(Payment, payment.pk)
        if payment.status == Payment.Status.PAID:
            return payment  # a duplicate: already credited
        # Paid after we closed it on our side: the money arrived, so it counts.
        payment.status = Payment.Status.PAID
        payment.transaction_id = txn["transaction_id"]
        payment.paid_at = timezone.now()
        payment.save(update_fields=["status", "transaction_id", "paid_at", "updated_at"])
        key = f"wx:txn:{payment.transaction_id}"
        if payment.purpose == Payment.Purpose.TOP_UP:
            ledger.wallet_top_up(
                member=payment.member, amount=payment.amount, bonus=payment.bonus, key=key,
                ref=payment.out_trade_no,
            )
        else:
            ledger.prepay_received(
                member=payment.member, amount=payment.amount, key=key, ref=payment.out_trade_no
            )
    return payment


def payment_sync(*, payment: Payment) -> Payment:
    """Ask WeChat about a pending payment (lost notification): credit it if paid; close it
    once expired and unpaid. A network problem leaves it pending for the next run."""
    if payment.status != Payment.Status.PENDING:
        return payment
    gateway = _gateway()
    try:
        txn = gateway.query(payment.out_trade_no)
        if txn is not None and txn.get("trade_state") in ("SUCCESS", "REFUND"):
            return payment_apply_transaction(txn=txn)
        if payment.expires_at > timezone.now():
            return payment
        if txn is not None and txn.get("trade_state") in ("NOTPAY", "USERPAYING"):
            try:
                gateway.close(payment.out_trade_no)
            except PayError as exc:
                if exc.code == "ORDERPAID":  # paid in the meantime
                    return payment_apply_transaction(txn=gateway.query(payment.out_trade_no) or {})
                raise
    except PayError as exc:
        Payment.objects.filter(pk=payment.pk).update(last_error=str(exc)[:200])
        return payment
    final = Payment.Status.FAILED if txn and txn.get("trade_state") == "PAYERROR" else Payment.Status.CLOSED
    with transaction.atomic():
        (payment,) = _locked(Payment, payment.pk)
        if payment.status == Payment.Status.PENDING:
            payment.status = final
            payment.save(update_fields=["status", "updated_at"])
    return payment


# =========================================================================== notifications
def notification_handle(*, kind: str, headers, body: bytes) -> None:
    """A WeChat Pay notification for this operator (``kind``: payment, refund, transfer).

    Raises NotifyRejected (bad signature, stale, undecryptable: answer 401) or
    NotificationMismatch (answer 400). Returns when applied or already applied.
    """
    gateway = _gateway()
    data = gateway.parse_notification(headers, body)
    event, resource = data.get("event_type", ""), data["resource"]
    if kind == "payment" and event.startswith("TRANSACTION."):
        payment_apply_transaction(txn=resource)
    elif kind == "refund" and event.startswith("REFUND."):
        if resource.get("mchid") != gateway.mchid:
            raise NotificationMismatch("refund notification of another merchant")
        payment_refund_apply(data=resource)
    elif kind == "transfer" and event.startswith("MCHTRANSFER."):
        if resource.get("mch_id", gateway.mchid) != gateway.mchid:
            raise NotificationMismatch("transfer notification of another merchant")
        withdrawal_apply(data=resource)
    else:
        raise NotifyRejected(f"unexpected event {event!r} at {kind}")


# =========================================================================== refunds
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


def payment_refund_submit(*, refund_id: int) -> PaymentRefund:
    """Send a refund to WeChat (same out_refund_no and body on every try, which WeChat
    answers with the same refund). An unclear answer leaves it for the query job."""
    refund = PaymentRefund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != PaymentRefund.Status.SUBMITTING:
        return refund
    try:
        data = _gateway().refund(
            out_refund_no=refund.out_refund_no,
            out_trade_no=refund.payment.out_trade_no,
            refund_fen=to_fen(refund.amount),
            total_fen=to_fen(refund.payment.amount),
            reason=_("Balance refund") if refund.wallet_refund_id else _("Unused prepayment"),
        )
    except PayError as exc:
        PaymentRefund.objects.filter(pk=refund.pk).update(last_error=str(exc)[:200])
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
        data = _gateway().refund_query(refund.out_refund_no)
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


# =========================================================================== prepay settle
@dataclass(frozen=True)
class PrepaySettlement:
    payment: Payment
    posting: Posting
    refund: PaymentRefund | None  # the unused part, refunded through WeChat


@transaction.atomic
def prepay_settle(*, order_ref: str, amount_used: Decimal, key: str) -> PrepaySettlement:
    """Settle the paid prepayment of ``order_ref``: ``amount_used`` yuan goes to revenue
    (beyond the prepayment: the member's arrears), the rest is refunded through WeChat
    automatically. ``amount_used=0`` refunds everything (an order that never started).
    Idempotent by ``key``. Raises BillingError ``prepay_not_paid`` (409),
    ``prepay_already_settled`` (409, under another key).
    """
    payment = Payment.objects.filter(
        purpose=Payment.Purpose.PREPAY, order_ref=order_ref, status=Payment.Status.PAID
    ).first()
    if payment is None:
        raise BillingError("prepay_not_paid", _("This order has no paid prepayment."), 409)
    (payment,) = _locked(Payment, payment.pk)
    if payment.prepay_state == Payment.PrepayState.SETTLED:
        if payment.settle_key != key:
            raise BillingError("prepay_already_settled", _("This prepayment is settled."), 409)
        return PrepaySettlement(
            payment, Posting.objects.get(key=key), payment.refunds.order_by("pk").first()
        )
    used = yuan(amount_used)
    if used < 0:
        raise BillingError("invalid_amount", _("The amount must not be negative."))
    posting = ledger.prepay_consume(
        member=payment.member, paid=payment.amount, used=used, key=key, ref=payment.out_trade_no,
        memo=order_ref,
    )
    rest = max(payment.amount - used, ZERO)
    refund = None
    if rest > 0:
        payment.refunded_amount = rest
        refund = PaymentRefund.objects.create(
            payment=payment, amount=rest, out_refund_no=f"PP{payment.pk}"
        )
        _enqueue_refund_submit(refund.pk)
    payment.prepay_state, payment.used_amount, payment.settle_key = (
        Payment.PrepayState.SETTLED, used, key
    )
    payment.save(update_fields=["prepay_state", "used_amount", "settle_key", "refunded_amount", "updated_at"])
    return PrepaySettlement(payment, posting, refund)


# =========================================================================== withdrawals
@transaction.atomic
def withdrawal_request(*, member: Member, amount: Decimal) -> Withdrawal:
    """The member asks to withdraw ``amount`` yuan of wallet cash to their WeChat balance.
    The cash leaves the wallet at once (withdrawals in transit) and waits for review.

    Raises BillingError ``withdrawals_disabled`` (403), ``amount_out_of_range``,
    ``insufficient_funds`` (409).
    """
    policy = ledger.money_policy()
    if not policy.withdrawals_enabled:
        raise BillingError("withdrawals_disabled", _("Withdrawals are not offered."), 403)
    amount = yuan(amount)
    if not policy.min_withdrawal <= amount <= policy.max_withdrawal:
        raise BillingError(
            "amount_out_of_range",
            _("A withdrawal must be between %(min)s and %(max)s yuan.")
            % {"min": policy.min_withdrawal, "max": policy.max_withdrawal},
        )
    withdrawal = Withdrawal.objects.create(member=member, amount=amount, out_bill_no=_new_no("WD"))
    try:
        ledger.wallet_cash_out(
            member=member, amount=amount, transit=WITHDRAWAL_TRANSIT,
            kind=Posting.Kind.WITHDRAWAL_REQUEST, key=f"withdrawal:{withdrawal.pk}",
            ref=withdrawal.out_bill_no,
        )
    except ledger.InsufficientFunds:
        raise BillingError("insufficient_funds", _("Not enough balance."), 409) from None
    return withdrawal


@transaction.atomic
def withdrawal_review(
    *, withdrawal: Withdrawal, approve: bool, reviewer: AbstractBaseUser | None, note: str = ""
) -> Withdrawal:
    """Staff approve (the transfer is sent) or reject (the cash goes back to the wallet).
    Raises BillingError ``not_in_review``."""
    (withdrawal,) = _locked(Withdrawal, withdrawal.pk)
    if withdrawal.status != Withdrawal.Status.REVIEW:
        raise BillingError("not_in_review", _("This withdrawal is not waiting for review."), 409)
    withdrawal.reviewed_by, withdrawal.reviewed_at = reviewer, timezone.now()
    withdrawal.review_note = note[:200]
    withdrawal.status = Withdrawal.Status.APPROVED if approve else Withdrawal.Status.REJECTED
    withdrawal.save(update_fields=["reviewed_by", "reviewed_at", "review_note", "status"])
    if approve:
        task_queue_on_commit("billing.withdrawal_submit", withdrawal.pk)
    else:
        _withdrawal_return(withdrawal, Withdrawal.Status.REJECTED)
    return withdrawal


def withdrawal_submit(*, withdrawal_id: int) -> Withdrawal:
    """Send an approved transfer. After an unclear answer the bill is QUERIED first and
    sent again (same out_bill_no) only when WeChat says it does not exist, so the money
    is never sent twice."""
    withdrawal = Withdrawal.objects.select_related("member").get(pk=withdrawal_id)
    if withdrawal.status not in (Withdrawal.Status.APPROVED, Withdrawal.Status.UNCLEAR):
        return withdrawal
    # An unclear error keeps the UNCLEAR status below, so the query comes first next time.
    gateway = _gateway()
    try:
        if withdrawal.status == Withdrawal.Status.UNCLEAR:
            known = gateway.transfer_query(withdrawal.out_bill_no)
            if known is not None:
                withdrawal = withdrawal_apply(data=known)
                if withdrawal.status != Withdrawal.Status.WAIT_USER_CONFIRM or withdrawal.package_info:
                    return withdrawal
                # The bill exists but its package_info was in the lost answer: the same
                # request again (same out_bill_no) returns the same bill, never a new one.
        data = gateway.transfer(
            out_bill_no=withdrawal.out_bill_no,
            openid=withdrawal.member.openid,
            amount_fen=to_fen(withdrawal.amount),
            remark=_("Wallet withdrawal")[:32],
            scene_id=ledger.money_policy().transfer_scene_id,
        )
    except PayError as exc:
        if exc.unclear:
            Withdrawal.objects.filter(pk=withdrawal.pk).update(
                status=Withdrawal.Status.UNCLEAR, fail_reason=str(exc)[:200]
            )
        else:
            with transaction.atomic():
                (withdrawal,) = _locked(Withdrawal, withdrawal.pk)
                withdrawal.fail_reason = f"{exc.code}: {exc.message}"[:200]
                withdrawal.save(update_fields=["fail_reason"])
                _withdrawal_return(withdrawal, Withdrawal.Status.FAILED)
        withdrawal.refresh_from_db()
        return withdrawal
    data.setdefault("transfer_amount", to_fen(withdrawal.amount))
    return withdrawal_apply(data=data)


def withdrawal_sync(*, withdrawal: Withdrawal) -> Withdrawal:
    """The query job: finish an unclear send, or learn the result of a confirmed one."""
    withdrawal = Withdrawal.objects.get(pk=withdrawal.pk)  # act on the current state
    if withdrawal.status in (Withdrawal.Status.APPROVED, Withdrawal.Status.UNCLEAR):
        return withdrawal_submit(withdrawal_id=withdrawal.pk)
    if withdrawal.status == Withdrawal.Status.WAIT_USER_CONFIRM and not withdrawal.package_info:
        Withdrawal.objects.filter(pk=withdrawal.pk).update(status=Withdrawal.Status.UNCLEAR)
        return withdrawal_submit(withdrawal_id=withdrawal.pk)
    if withdrawal.status != Withdrawal.Status.WAIT_USER_CONFIRM:
        return withdrawal
    try:
        data = _gateway().transfer_query(withdrawal.out_bill_no)
    except PayError:
        return withdrawal
    return withdrawal_apply(data=data) if data else withdrawal


def withdrawal_apply(*, data: dict[str, Any]) -> Withdrawal:
    """Apply WeChat's transfer bill state (reply, query or notification)."""
    withdrawal = Withdrawal.objects.filter(out_bill_no=data.get("out_bill_no") or "").first()
    if withdrawal is None:
        raise NotificationMismatch(f"unknown out_bill_no {data.get('out_bill_no')!r}")
    amount = data.get("transfer_amount", to_fen(withdrawal.amount))
    if amount != to_fen(withdrawal.amount):
        raise NotificationMismatch(f"{withdrawal.out_bill_no}: amount {amount}")
    state = data.get("state", "")
    with transaction.atomic():
        (withdrawal,) = _locked(Withdrawal, withdrawal.pk)
        if withdrawal.status not in Withdrawal.OPEN:
            return withdrawal
        withdrawal.wechat_state = state
        withdrawal.transfer_bill_no = data.get("transfer_bill_no") or withdrawal.transfer_bill_no
        withdrawal.package_info = data.get("package_info") or withdrawal.package_info
        fields = ["wechat_state", "transfer_bill_no", "package_info"]
        if state == "SUCCESS":
            ledger.transit_settle(
                transit=WITHDRAWAL_TRANSIT, amount=withdrawal.amount,
                kind=Posting.Kind.WITHDRAWAL_SUCCESS, key=f"wx:transfer:{withdrawal.out_bill_no}",
                member=withdrawal.member, ref=withdrawal.out_bill_no,
            )
            withdrawal.status, withdrawal.finished_at = Withdrawal.Status.SUCCESS, timezone.now()
            fields += ["status", "finished_at"]
        elif state in ("FAIL", "CANCELLED"):
            withdrawal.fail_reason = data.get("fail_reason") or state
            fields.append("fail_reason")
            withdrawal.save(update_fields=fields)
            final = Withdrawal.Status.FAILED if state == "FAIL" else Withdrawal.Status.CANCELLED
            return _withdrawal_return(withdrawal, final)
        elif state in ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING", "CANCELING"):
            withdrawal.status = Withdrawal.Status.WAIT_USER_CONFIRM
            fields.append("status")
        withdrawal.save(update_fields=fields)
    return withdrawal


def _withdrawal_return(withdrawal: Withdrawal, status: str) -> Withdrawal:
    """Inside a transaction with the withdrawal locked: the cash goes back to the wallet."""
    ledger.transit_return(
        member=withdrawal.member, transit=WITHDRAWAL_TRANSIT, amount=withdrawal.amount,
        kind=Posting.Kind.WITHDRAWAL_RETURN, key=f"withdrawal:{withdrawal.pk}:return",
        ref=withdrawal.out_bill_no,
    )
    withdrawal.status, withdrawal.finished_at = status, timezone.now()
    withdrawal.save(update_fields=["status", "finished_at"])
    return withdrawal


# =========================================================================== reconcile
@dataclass
class ReconcileResult:
    payments: int = 0
    refunds: int = 0
    withdrawals: int = 0


def reconcile(*, older_than: timedelta = timedelta(minutes=2)) -> ReconcileResult:
    """The periodic job for one operator: query what is still open after ``older_than``
    (lost notifications, unclear answers) and close expired payments."""
    cutoff = timezone.now() - older_than
    result = ReconcileResult()
    for payment in Payment.objects.filter(status=Payment.Status.PENDING, created_at__lt=cutoff):
        payment_sync(payment=payment)
        result.payments += 1
    for refund in PaymentRefund.objects.filter(
        status__in=[PaymentRefund.Status.SUBMITTING, PaymentRefund.Status.PROCESSING],
        created_at__lt=cutoff,
    ):
        payment_refund_sync(refund=refund)
        result.refunds += 1
    for withdrawal in Withdrawal.objects.filter(status__in=Withdrawal.OPEN, reviewed_at__lt=cutoff):
        withdrawal_sync(withdrawal=withdrawal)
        result.withdrawals += 1
    return result


__all__ = [
    "BillingError", "NotificationMismatch", "NotifyRejected", "PaymentStart", "PrepaySettlement",
    "top_up_create", "prepay_create", "prepay_settle", "payment_apply_transaction",
    "payment_sync", "notification_handle", "wallet_refund_request", "wallet_refund_review",
    "payment_refund_submit", "payment_refund_sync", "payment_refund_apply", "withdrawal_request",
    "withdrawal_review", "withdrawal_submit", "withdrawal_sync", "withdrawal_apply", "reconcile",
]
