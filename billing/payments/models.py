"""WeChat Pay payments, top-up offers, refunds and withdrawals (tenant schema).

Outbound ids (``out_trade_no``, ``out_refund_no``, ``out_bill_no``) are made once, stored
before the first call to WeChat, and reused by every retry, so an unclear answer is never
followed by a second payment, refund or transfer.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

__all__ = ["TopUpOffer", "Payment", "WalletRefund", "PaymentRefund", "Withdrawal", "ProfitShare"]


class TopUpOffer(models.Model):
    """Pay ``pay_amount`` or more in one top-up, get ``bonus_amount`` gift balance."""

    pay_amount = models.DecimalField(_("top-up of at least (yuan)"), max_digits=10, decimal_places=2)
    bonus_amount = models.DecimalField(_("bonus (yuan)"), max_digits=10, decimal_places=2)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("top-up offer")
        verbose_name_plural = _("top-up offers")
        ordering = ["pay_amount"]
        constraints = [
            models.CheckConstraint(condition=Q(pay_amount__gt=0), name="billing_offer_pay_positive"),
            models.CheckConstraint(condition=Q(bonus_amount__gt=0), name="billing_offer_bonus_positive"),
        ]

    def __str__(self) -> str:
        return f"充 {self.pay_amount} 送 {self.bonus_amount}"


class Payment(models.Model):
    """One WeChat Pay JSAPI order: a wallet top-up, a pay-per-order prepayment, or a purchase
    of something another domain sells (``order_ref`` ``svip:<id>``, see :mod:`..hooks`)."""

    class Purpose(models.TextChoices):
        TOP_UP = "top_up", _("Wallet top-up")
        PREPAY = "prepay", _("Order prepayment")
        PURCHASE = "purchase", _("Purchase (SVIP, coupons)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        CLOSED = "closed", _("Closed")
        FAILED = "failed", _("Failed")

    class PrepayState(models.TextChoices):
        OPEN = "", _("Not settled")
        SETTLED = "settled", _("Settled")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="payments", verbose_name=_("member")
    )
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    out_trade_no = models.CharField(_("out_trade_no"), max_length=32, unique=True)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2)
    bonus = models.DecimalField(_("bonus (yuan)"), max_digits=12, decimal_places=2, default=0)
    order_ref = models.CharField(_("order reference"), max_length=64, blank=True, db_index=True)
    appid = models.CharField(_("AppID"), max_length=32)
    mchid = models.CharField(_("mchid"), max_length=32)
    sp_mchid = models.CharField(
        _("service provider (sp_mchid)"), max_length=32, blank=True,
        help_text=_("Set when paid in service-provider mode: mchid is then the operator's sub_mchid."),
    )
    openid = models.CharField(_("payer openid"), max_length=64)
    prepay_id = models.CharField(_("prepay_id"), max_length=64, blank=True)
    transaction_id = models.CharField(
        _("WeChat transaction id"), max_length=32, blank=True, db_index=True
    )
    expires_at = models.DateTimeField(_("expires"))
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    refunded_amount = models.DecimalField(
        _("refunded or being refunded (yuan)"), max_digits=12, decimal_places=2, default=0
    )
    # pay-per-order
    prepay_state = models.CharField(
        _("prepayment"), max_length=16, choices=PrepayState.choices, default="", blank=True
    )
    used_amount = models.DecimalField(
        _("used by the order (yuan)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    settle_key = models.CharField(_("settlement key"), max_length=128, blank=True)
    profit_sharing = models.BooleanField(
        _("for profit sharing"), default=False,
        help_text=_("Made with settle_info.profit_sharing: WeChat holds the funds for 分账."),
    )
    # a notification or query that did not match this payment (amount, appid, mchid)
    flagged = models.BooleanField(_("flagged"), default=False, db_index=True)
    flag_reason = models.CharField(_("flag reason"), max_length=200, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="billing_payment_refund_within_amount",
            ),
            # one live prepayment per charging order
            models.UniqueConstraint(
                fields=["order_ref"],
                condition=Q(purpose="prepay", status__in=["pending", "paid"]),
                name="billing_payment_one_live_prepay_per_order",
            ),
        ]

    def __str__(self) -> str:
        return self.out_trade_no

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.refunded_amount


class WalletRefund(models.Model):
    """A member's request to get wallet cash back (退费), paid along original payments."""

    class Status(models.TextChoices):
        REVIEW = "review", _("Waiting for review")
        PROCESSING = "processing", _("Refunding")
        SUCCESS = "success", _("Refunded")
        PARTIAL = "partial", _("Partly refunded")
        FAILED = "failed", _("Failed, returned to wallet")
        REJECTED = "rejected", _("Rejected, returned to wallet")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="wallet_refunds", verbose_name=_("member")
    )
    amount = models.DecimalField(_("cash to refund (yuan)"), max_digits=12, decimal_places=2)
    bonus_forfeited = models.DecimalField(
        _("bonus forfeited (yuan)"), max_digits=12, decimal_places=2, default=0
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.REVIEW, db_index=True
    )
    reason = models.CharField(_("member's reason"), max_length=200, blank=True)
    review_note = models.CharField(_("review reason"), max_length=200, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("wallet refund")
        verbose_name_plural = _("wallet refunds")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"WR{self.pk}"


class PaymentRefund(models.Model):
    """One WeChat refund of (part of) one payment."""

    class Status(models.TextChoices):
        SUBMITTING = "submitting", _("Being submitted")
        PROCESSING = "processing", _("Processing at WeChat")
        SUCCESS = "success", _("Refunded")
        FAILED = "failed", _("Failed")

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    wallet_refund = models.ForeignKey(
        WalletRefund, on_delete=models.PROTECT, null=True, blank=True, related_name="parts",
        verbose_name=_("wallet refund"),
    )
    out_refund_no = models.CharField(_("out_refund_no"), max_length=64, unique=True)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.SUBMITTING, db_index=True
    )
    refund_id = models.CharField(_("WeChat refund id"), max_length=64, blank=True)
    wechat_status = models.CharField(_("WeChat status"), max_length=32, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment refund")
        verbose_name_plural = _("payment refunds")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_refund_amount_positive")
        ]

    def __str__(self) -> str:
        return self.out_refund_no


class Withdrawal(models.Model):
    """Wallet cash sent to the member's WeChat balance (提现, 商家转账)."""

    class Status(models.TextChoices):
        REVIEW = "review", _("Waiting for review")
        APPROVED = "approved", _("Approved, being sent")
        UNCLEAR = "unclear", _("Sent, result unclear (being checked)")
        WAIT_USER_CONFIRM = "wait_user_confirm", _("Waiting for the member to confirm")
        SUCCESS = "success", _("Paid")
        FAILED = "failed", _("Failed, returned to wallet")
        CANCELLED = "cancelled", _("Cancelled, returned to wallet")
        REJECTED = "rejected", _("Rejected, returned to wallet")

    OPEN = (Status.APPROVED, Status.UNCLEAR, Status.WAIT_USER_CONFIRM)

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="withdrawals", verbose_name=_("member")
    )
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.REVIEW, db_index=True
    )
    out_bill_no = models.CharField(_("out_bill_no"), max_length=32, unique=True)
    transfer_bill_no = models.CharField(_("WeChat transfer bill no"), max_length=64, blank=True)
    package_info = models.TextField(_("package_info"), blank=True)
    wechat_state = models.CharField(_("WeChat state"), max_length=32, blank=True)
    fail_reason = models.CharField(_("fail reason"), max_length=200, blank=True)
    review_note = models.CharField(_("review reason"), max_length=200, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_withdrawal_amount_positive")
        ]

    def __str__(self) -> str:
        return self.out_bill_no


class BillCheck(models.Model):
    """One day's WeChat Pay trade bill matched line by line against our payments and refunds
    (``services.bill_reconcile``). Counts and totals in yuan; each difference is a
    :class:`BillMismatch` with what to do."""

    class Status(models.TextChoices):
        MATCHED = "matched", _("Matched")
        MISMATCHED = "mismatched", _("Differences found")
        NO_BILL = "no_bill", _("No bill (no trade that day)")
        FAILED = "failed", _("Could not download")

    class BillType(models.TextChoices):
        TRADE = "trade", _("Trade bill")
        FUNDFLOW = "fundflow", _("Fund-flow bill")

    bill_date = models.DateField(_("bill date"))
    bill_type = models.CharField(_("bill"), max_length=16, choices=BillType.choices,
                                 default=BillType.TRADE)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    bill_lines = models.PositiveIntegerField(_("lines in the bill"), default=0)
    bill_paid = models.DecimalField(_("paid in the bill"), max_digits=14, decimal_places=2, default=0)
    bill_refunded = models.DecimalField(_("refunded in the bill"), max_digits=14, decimal_places=2,
                                        default=0)
    bill_fees = models.DecimalField(_("WeChat fees in the bill"), max_digits=14, decimal_places=2,
                                    default=0)
    ledger_paid = models.DecimalField(_("paid in our records"), max_digits=14, decimal_places=2,
                                      default=0)
    ledger_refunded = models.DecimalField(_("refunded in our records"), max_digits=14,
                                          decimal_places=2, default=0)
    bill_paid_out = models.DecimalField(
        _("transfers and profit sharing in the bill"), max_digits=14, decimal_places=2, default=0)
    ledger_paid_out = models.DecimalField(
        _("transfers and profit sharing in our records"), max_digits=14, decimal_places=2, default=0)
    error = models.CharField(_("error"), max_length=200, blank=True)
    checked_at = models.DateTimeField(_("checked"), auto_now=True)

    class Meta:
        verbose_name = _("WeChat bill check")
        verbose_name_plural = _("WeChat bill checks")
        ordering = ["-bill_date", "bill_type"]
        constraints = [
            models.UniqueConstraint(fields=["bill_date", "bill_type"], name="billing_billcheck_day_type"),
        ]

    def __str__(self) -> str:
        return f"{self.bill_date} {self.get_bill_type_display()}"


class BillMismatch(models.Model):
    """One difference between the bill and our records."""

    class Kind(models.TextChoices):
        NOT_IN_RECORDS = "not_in_records", _("In the bill, not in our records")
        NOT_IN_BILL = "not_in_bill", _("In our records, not in the bill")
        AMOUNT = "amount", _("Amounts differ")
        STATE = "state", _("Paid or refunded at WeChat, not in our records")

    bill_check = models.ForeignKey(BillCheck, on_delete=models.CASCADE, related_name="mismatches",
                              verbose_name=_("bill check"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    out_trade_no = models.CharField(_("out_trade_no"), max_length=32, blank=True)
    out_refund_no = models.CharField(_("out_refund_no"), max_length=64, blank=True)
    business = models.CharField(_("business type"), max_length=16, blank=True,
                                help_text=_("The fund-flow bill's 业务类型 (交易, 退款, 商家转账, 分账…)."))
    transaction_id = models.CharField(_("WeChat transaction id"), max_length=64, blank=True)
    bill_amount = models.DecimalField(_("amount in the bill"), max_digits=12, decimal_places=2,
                                      null=True, blank=True)
    our_amount = models.DecimalField(_("amount in our records"), max_digits=12, decimal_places=2,
                                     null=True, blank=True)
    action = models.CharField(_("what to do"), max_length=300)

    class Meta:
        verbose_name = _("bill difference")
        verbose_name_plural = _("bill differences")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.out_refund_no or self.out_trade_no}"


class ProfitShare(models.Model):
    """WeChat Pay 分账 of one pay-per-order payment: the owners' shares of its order sent to
    their WeChat after settlement (v3 ``/v3/profitsharing/orders``).

    ``out_order_no`` is made once and reused by every retry; an unclear answer is queried
    before anything is sent again. ``receivers``: ``[{"owner_id", "openid", "amount"}]``
    (amount in yuan, as a string). While it is open the shares sit in payouts in transit
    (``settlement.profit_sharing``), so no statement pays them a second time.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        UNCLEAR = "unclear", _("Unclear answer, to be queried")
        PROCESSING = "processing", _("Sent, result to be queried")
        FINISHED = "finished", _("Finished")
        FAILED = "failed", _("Refused by WeChat")
        SKIPPED = "skipped", _("Not eligible, paid by statement")
        CANCELLED = "cancelled", _("Cancelled by a refund before it was sent")

    OPEN = (Status.PENDING, Status.UNCLEAR, Status.PROCESSING)

    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="profit_share", verbose_name=_("payment")
    )
    order_ref = models.CharField(_("order number"), max_length=64, unique=True)
    out_order_no = models.CharField(_("out_order_no"), max_length=64, unique=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.PENDING, db_index=True)
    receivers = models.JSONField(_("receivers"), default=list, blank=True)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2, default=0)
    # Service-provider mode: the platform's commission split to the provider (MERCHANT_ID
    # ``commission_mchid``) in the same request; returned (分账回退) as the order is refunded.
    commission = models.DecimalField(
        _("platform commission (yuan)"), max_digits=12, decimal_places=2, default=0
    )
    commission_mchid = models.CharField(_("commission receiver (sp_mchid)"), max_length=32, blank=True)
    commission_paid = models.DecimalField(
        _("commission received by the platform (yuan)"), max_digits=12, decimal_places=2, default=0
    )
    commission_return_due = models.DecimalField(
        _("commission to return (yuan)"), max_digits=12, decimal_places=2, default=0,
        help_text=_("What refunds of the order have asked back from the platform, in all."),
    )
    commission_returned = models.DecimalField(
        _("commission returned (yuan)"), max_digits=12, decimal_places=2, default=0
    )
    commission_return_no = models.CharField(
        _("commission return in flight"), max_length=64, blank=True,
        help_text=_("The return sent whose answer is not known yet: asked about before any "
                    "other return is sent."),
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    not_before = models.DateTimeField(
        _("not before"), help_text=_("WeChat takes a split no sooner than a minute after payment."),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    order_id = models.CharField(_("WeChat split order id"), max_length=64, blank=True)
    unfrozen = models.BooleanField(
        _("rest unfrozen"), default=False,
        help_text=_("What is not split is released to the merchant (unfreeze_unsplit)."),
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("profit sharing order")
        verbose_name_plural = _("profit sharing orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.out_order_no
