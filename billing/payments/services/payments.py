"""Top-ups and pay-per-order prepayments: create, apply WeChat's transaction, query, settle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.money import ZERO, to_fen, yuan
from settlement import services as ledger
from settlement.models import Posting

from .. import hooks, selectors
from ..models import Payment, PaymentRefund
from ..wechatpay import Gateway, PayError
from .common import (
    BillingError,
    NotificationMismatch,
    _flag,
    _gateway,
    _locked,
    _mini_program,
    _new_no,
    _payment_gateway,
    commission_by_sharing,
    logger,
)
from .refunds import _enqueue_refund_submit


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


def prepay_create(
    *, member: Member, amount: Decimal, order_ref: str, profit_sharing: bool = False
) -> PaymentStart:
    """Pay-per-order: start a prepayment of ``amount`` yuan for charging order
    ``order_ref``. Asking again for the same order and amount while it is unpaid gives
    fresh ``wx.requestPayment`` parameters for the same payment. With ``profit_sharing``
    the payment is made for WeChat 分账 (``settle_info.profit_sharing``; see
    ``profit_sharing``).

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
        profit_sharing=profit_sharing,
    )


def purchase_create(*, member: Member, amount: Decimal, order_ref: str, description: str) -> PaymentStart:
    """Start a WeChat payment of ``amount`` yuan for something another domain sells,
    named by ``order_ref`` (``<prefix>:<id>``, e.g. ``svip:12``); when it is paid, the
    handler registered for the prefix (:mod:`billing.payments.hooks`) posts the money and
    delivers, once. Asking again for the same ``order_ref`` while it is unpaid gives fresh
    ``wx.requestPayment`` parameters for the same payment.

    Raises BillingError ``amount_out_of_range`` (not above zero), ``purchase_exists`` (409:
    already paid, or pending for another member or amount), and those of
    :func:`top_up_create`.
    """
    amount = yuan(amount)
    if amount <= 0:
        raise BillingError("amount_out_of_range", _("The amount must be above zero."))
    existing = Payment.objects.filter(
        purpose=Payment.Purpose.PURCHASE, order_ref=order_ref,
        status__in=(Payment.Status.PENDING, Payment.Status.PAID),
    ).first()
    if existing is not None:
        if (
            existing.status == Payment.Status.PENDING and existing.member_id == member.pk
            and existing.amount == amount and existing.expires_at > timezone.now()
        ):
            return _payment_prepay(existing, description=description)
        raise BillingError("purchase_exists", _("This purchase already has a payment."), 409)
    return _payment_start(
        member=member, purpose=Payment.Purpose.PURCHASE, amount=amount, order_ref=order_ref,
        description=description,
    )


def _payment_start(
    *, member: Member, purpose: str, amount: Decimal, description: str,
    bonus: Decimal = ZERO, order_ref: str = "", profit_sharing: bool = False,
) -> PaymentStart:
    gateway = _gateway()
    policy = ledger.money_policy()
    if purpose == Payment.Purpose.PREPAY and commission_by_sharing(gateway):
        profit_sharing = True  # the platform's commission goes by service-provider 分账
    payment = Payment.objects.create(
        member=member,
        purpose=purpose,
        amount=amount,
        bonus=bonus,
        order_ref=order_ref,
        out_trade_no=_new_no({Payment.Purpose.TOP_UP: "T", Payment.Purpose.PURCHASE: "B"}.get(purpose, "P")),
        appid=gateway.appid,
        mchid=gateway.mchid,
        sp_mchid=gateway.sp_mchid,
        openid=member.openid,
        profit_sharing=profit_sharing,
        expires_at=timezone.now() + timedelta(minutes=policy.payment_expire_minutes),
    )
    return _payment_prepay(payment, description=description, gateway=gateway)


def _payment_prepay(
    payment: Payment, *, description: str, gateway: Gateway | None = None
) -> PaymentStart:
    gateway = gateway or _payment_gateway(payment)
    try:
        prepay_id = gateway.jsapi_prepay(
            out_trade_no=payment.out_trade_no,
            description=f"{_mini_program().operator.name}-{description}"[:127],
            total_fen=to_fen(payment.amount),
            openid=payment.openid,
            expires_at=payment.expires_at,
            profit_sharing=payment.profit_sharing,
        )
    except PayError as exc:
        payment.last_error = exc.text[:200]
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


def payment_apply_transaction(*, txn: dict[str, Any]) -> Payment:
    """Apply a WeChat transaction (from a notification or a query) to our payment.

    A SUCCESS credits the wallet (top-up: cash + bonus, then the top-up listeners), the
    prepaid orders account, or hands a purchase to its handler, exactly once. Raises NotificationMismatch (and flags the payment) when appid, mchid
    or amount differ from ours, or the out_trade_no is unknown.
    """
    payment = Payment.objects.filter(out_trade_no=txn.get("out_trade_no") or "").first()
    if payment is None:
        raise NotificationMismatch(f"unknown out_trade_no {txn.get('out_trade_no')!r}")
    total = (txn.get("amount") or {}).get("total")
    if payment.sp_mchid or "sp_mchid" in txn:  # service-provider mode: sub-merchant's payment
        parties = (("sp_mchid", txn.get("sp_mchid"), payment.sp_mchid),
                   ("sub_appid", txn.get("sub_appid"), payment.appid),
                   ("sub_mchid", txn.get("sub_mchid"), payment.mchid))
    else:
        parties = (("appid", txn.get("appid"), payment.appid),
                   ("mchid", txn.get("mchid"), payment.mchid))
    problems = [
        name
        for name, theirs, ours in (*parties, ("amount", total, to_fen(payment.amount)))
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
            for listener in hooks.top_up_listeners():
                listener(payment)
        elif payment.purpose == Payment.Purpose.PURCHASE:
            handler = hooks.purchase_handler(payment.order_ref)
            if handler is not None:
                handler(payment, key)
            else:  # nobody delivers it: the member keeps the money
                ledger.wallet_top_up(member=payment.member, amount=payment.amount, key=key, ref=payment.out_trade_no)
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
    gateway = _payment_gateway(payment)
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
        Payment.objects.filter(pk=payment.pk).update(last_error=exc.text[:200])
        return payment
    final = Payment.Status.FAILED if txn and txn.get("trade_state") == "PAYERROR" else Payment.Status.CLOSED
    with transaction.atomic():
        (payment,) = _locked(Payment, payment.pk)
        if payment.status == Payment.Status.PENDING:
            payment.status = final
            payment.save(update_fields=["status", "updated_at"])
    return payment


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
