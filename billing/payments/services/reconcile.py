"""The periodic job: query what is still open, close expired payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from settlement.models import Payout

from ..models import Payment, PaymentRefund, ProfitShare, Withdrawal
from .payments import payment_sync
from .payouts import owner_payout_sync
from .profit_sharing import profit_share_sync
from .refunds import payment_refund_sync
from .withdrawals import withdrawal_sync


@dataclass
class ReconcileResult:
    payments: int = 0
    refunds: int = 0
    withdrawals: int = 0
    payouts: int = 0
    profit_shares: int = 0


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
    for payout_id in Payout.objects.filter(
        method=Payout.Method.WECHAT, status__in=Payout.OPEN, created_at__lt=cutoff
    ).values_list("pk", flat=True):
        owner_payout_sync(payout_id=payout_id)
        result.payouts += 1
    # 分账: open ones due (sent a minute after payment, then queried), the frozen funds of
    # those that will not be split, and the platform's commission a refund asks back.
    for share_id in ProfitShare.objects.filter(
        Q(status__in=ProfitShare.OPEN) | Q(unfrozen=False, status__in=[
            ProfitShare.Status.SKIPPED, ProfitShare.Status.FAILED, ProfitShare.Status.CANCELLED])
        | Q(status=ProfitShare.Status.FINISHED, commission_paid__gt=F("commission_returned"),
            commission_return_due__gt=F("commission_returned")),
        not_before__lt=timezone.now(),
    ).values_list("pk", flat=True):
        profit_share_sync(share_id=share_id)
        result.profit_shares += 1
    return result
