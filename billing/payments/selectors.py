"""Billing reads: top-up offers, prepayments, what a refund would give back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from accounts.models import Member
from evplatform.money import ZERO
from settlement.selectors import wallet_balance
from settlement.services import money_policy

from .models import Payment, TopUpOffer, WalletRefund, Withdrawal

# WeChat refunds a payment only within a year of it; keep a margin.
REFUND_WINDOW = timedelta(days=360)


def top_up_bonus(amount: Decimal) -> Decimal:
    """Bonus (yuan) of the best active offer whose threshold ``amount`` reaches, else 0."""
    offer = (
        TopUpOffer.objects.filter(active=True, pay_amount__lte=amount)
        .order_by("-pay_amount", "-bonus_amount")
        .first()
    )
    return offer.bonus_amount if offer else ZERO


def top_up_offers() -> QuerySet[TopUpOffer]:
    return TopUpOffer.objects.filter(active=True).order_by("pay_amount")


def prepay_paid(order_ref: str) -> Decimal | None:
    """Yuan prepaid for the charging order ``order_ref``, or None while not (yet) paid."""
    payment = Payment.objects.filter(
        purpose=Payment.Purpose.PREPAY, order_ref=order_ref, status=Payment.Status.PAID
    ).first()
    return payment.amount if payment else None


def prepay_get(order_ref: str) -> Payment | None:
    """The live (pending or paid) prepayment of ``order_ref``, if any."""
    return Payment.objects.filter(
        purpose=Payment.Purpose.PREPAY,
        order_ref=order_ref,
        status__in=[Payment.Status.PENDING, Payment.Status.PAID],
    ).first()


def refundable_payments(member: Member) -> QuerySet[Payment]:
    """Paid top-ups that still have money WeChat can refund, oldest first."""
    return Payment.objects.filter(
        member=member,
        purpose=Payment.Purpose.TOP_UP,
        status=Payment.Status.PAID,
        paid_at__gte=timezone.now() - REFUND_WINDOW,
        refunded_amount__lt=F("amount"),
    ).order_by("pk")


@dataclass(frozen=True)
class RefundPreview:
    """What a wallet refund would do now (yuan)."""

    refundable: Decimal  # cash that can go back along original payments
    free_cash: Decimal
    bonus_forfeited: Decimal
    policy_text: str
    mode: str  # auto | review


def wallet_refund_preview(member: Member) -> RefundPreview:
    balance = wallet_balance(member)
    policy = money_policy()
    along_payments = refundable_payments(member).aggregate(
        s=Sum(F("amount") - F("refunded_amount"))
    )["s"] or ZERO
    free_bonus = balance.available - balance.free_cash  # bonus not held by an order
    return RefundPreview(
        refundable=max(min(balance.free_cash, along_payments), ZERO),
        free_cash=balance.free_cash,
        bonus_forfeited=free_bonus if policy.forfeit_bonus_on_refund else ZERO,
        policy_text=policy.bonus_forfeiture_text,
        mode=policy.refund_mode,
    )


def member_payments(member: Member) -> QuerySet[Payment]:
    return Payment.objects.filter(member=member).order_by("-id")


def member_wallet_refunds(member: Member) -> QuerySet[WalletRefund]:
    return WalletRefund.objects.filter(member=member).prefetch_related("parts").order_by("-id")


def member_withdrawals(member: Member) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(member=member).order_by("-id")


def transfer_confirm_ids() -> dict[str, str]:
    """``mchId`` and ``appId`` for ``wx.requestMerchantTransfer`` in this operator."""
    from django.db import connection

    from tenants.models import MiniProgram

    mp = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    return {"mchId": mp.mchid, "appId": mp.appid} if mp else {}
