"""The double-entry ledger and the operator's money policy (tenant schema).

Every movement of money is a :class:`Posting`: a balanced set of :class:`Entry` rows
(amounts sum to zero; debit positive, credit negative) with a unique idempotency ``key``.
Entries are never updated or deleted (a PostgreSQL trigger refuses it; a deferred
constraint trigger refuses an unbalanced posting at commit); corrections are reversing
postings. Each :class:`Account` caches its balance on its normal side (debit-normal for
assets and expenses, credit-normal for the rest), updated in the same transaction as the
entries, under a row lock.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Account(models.Model):
    class Kind(models.TextChoices):
        # per member
        WALLET_CASH = "wallet_cash", _("Wallet cash")
        WALLET_BONUS = "wallet_bonus", _("Wallet bonus")
        HELD_CASH = "held_cash", _("Held cash (orders in progress)")
        HELD_BONUS = "held_bonus", _("Held bonus (orders in progress)")
        ARREARS = "arrears", _("Arrears")
        # per station owner
        OWNER_PAYABLE = "owner_payable", _("Station owner payable")
        # one per operator
        CLEARING = "wechat_clearing", _("WeChat Pay clearing")
        REVENUE = "operator_revenue", _("Operator revenue")
        PREPAID = "prepaid_orders", _("Prepaid orders (pay-per-order)")
        REFUND_TRANSIT = "refund_in_transit", _("Refunds in transit")
        WITHDRAWAL_TRANSIT = "withdrawal_in_transit", _("Withdrawals in transit")
        PROMOTION = "promotion_expense", _("Bonus (promotion) expense")

    DEBIT_NORMAL = {Kind.ARREARS, Kind.CLEARING, Kind.PROMOTION}
    MEMBER_KINDS = (
        Kind.WALLET_CASH, Kind.WALLET_BONUS, Kind.HELD_CASH, Kind.HELD_BONUS, Kind.ARREARS
    )
    # Kinds whose balance may go below zero: clawbacks from owners, revenue reversed,
    # merchant-account movements we do not see (fees, other income).
    MAY_GO_NEGATIVE = {Kind.OWNER_PAYABLE, Kind.CLEARING, Kind.REVENUE, Kind.PROMOTION}

    code = models.CharField(_("code"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("member"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("station owner"),
    )
    balance = models.DecimalField(_("balance (yuan)"), max_digits=14, decimal_places=2, default=0)
    allow_negative = models.BooleanField(_("may go negative"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(allow_negative=True) | Q(balance__gte=0),
                name="settlement_account_balance_not_negative",
            )
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def debit_normal(self) -> bool:
        return self.kind in self.DEBIT_NORMAL


class Posting(models.Model):
    """One balanced movement of money, written once under a unique idempotency key."""

    class Kind(models.TextChoices):
        TOP_UP = "top_up", _("Top-up")
        TOP_UP_BONUS = "top_up_bonus", _("Top-up bonus")
        ARREARS_SETTLE = "arrears_settle", _("Arrears paid off")
        HOLD = "hold", _("Funds held for an order")
        HOLD_RELEASE = "hold_release", _("Held funds released")
        ORDER_CHARGE = "order_charge", _("Charging order payment")
        PREPAY_RECEIVED = "prepay_received", _("Order prepayment received")
        PREPAY_SETTLE = "prepay_settle", _("Order prepayment settled")
        REFUND_REQUEST = "refund_request", _("Refund requested")
        BONUS_FORFEIT = "bonus_forfeit", _("Bonus forfeited")
        REFUND_SUCCESS = "refund_success", _("Refund paid")
        REFUND_FAILED = "refund_failed", _("Refund failed, returned to wallet")
        WITHDRAWAL_REQUEST = "withdrawal_request", _("Withdrawal requested")
        WITHDRAWAL_SUCCESS = "withdrawal_success", _("Withdrawal paid")
        WITHDRAWAL_RETURN = "withdrawal_return", _("Withdrawal returned to wallet")
        REVERSAL = "reversal", _("Correction (reversal)")
        ADJUSTMENT = "adjustment", _("Manual adjustment")

    key = models.CharField(_("idempotency key"), max_length=128, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="postings",
        verbose_name=_("member"),
    )
    ref = models.CharField(_("reference"), max_length=64, blank=True, db_index=True)
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("reverses"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class Entry(models.Model):
    """One line of a posting: ``amount`` yuan, debit positive, credit negative."""

    posting = models.ForeignKey(
        Posting, on_delete=models.PROTECT, related_name="entries", verbose_name=_("posting")
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account")
    )
    amount = models.DecimalField(_("amount (yuan, debit +)"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="settlement_entry_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.account.code} {self.amount}"


class Hold(models.Model):
    """Funds reserved for one order in progress (``key`` chosen by the caller)."""

    class Status(models.TextChoices):
        HELD = "held", _("Held")
        RELEASED = "released", _("Released")
        CONSUMED = "consumed", _("Used by the order")

    key = models.CharField(_("key"), max_length=128, unique=True)
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="holds", verbose_name=_("member")
    )
    cash = models.DecimalField(_("cash held"), max_digits=14, decimal_places=2)
    bonus = models.DecimalField(_("bonus held"), max_digits=14, decimal_places=2)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.HELD
    )
    posting = models.OneToOneField(
        Posting, on_delete=models.PROTECT, related_name="hold", verbose_name=_("posting")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.key

    @property
    def amount(self) -> Decimal:
        return self.cash + self.bonus


class MoneyPolicy(models.Model):
    """The operator's money rules (one row per operator schema; see ``money_policy()``)."""

    class RefundMode(models.TextChoices):
        AUTO = "auto", _("Automatic")
        REVIEW = "review", _("Reviewed by staff")

    class SpendOrder(models.TextChoices):
        CASH_FIRST = "cash_first", _("Cash first, then bonus")
        BONUS_FIRST = "bonus_first", _("Bonus first, then cash")

    min_top_up = models.DecimalField(
        _("minimum top-up (yuan)"), max_digits=10, decimal_places=2, default=Decimal("1.00")
    )
    max_top_up = models.DecimalField(
        _("maximum top-up (yuan)"), max_digits=10, decimal_places=2, default=Decimal("5000.00")
    )
    min_start_balance = models.DecimalField(
        _("minimum balance to start a charge (yuan)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("5.00"),
    )
    spend_order = models.CharField(
        _("what an order spends first"),
        max_length=16,
        choices=SpendOrder.choices,
        default=SpendOrder.CASH_FIRST,
    )
    refund_mode = models.CharField(
        _("wallet refunds"), max_length=16, choices=RefundMode.choices, default=RefundMode.REVIEW
    )
    forfeit_bonus_on_refund = models.BooleanField(
        _("bonus is forfeited when the cash is refunded"), default=True
    )
    bonus_forfeiture_text = models.TextField(
        _("bonus forfeiture policy (shown to members)"),
        blank=True,
        default="退款后，账户内的赠送余额将作废，不予退还。",
    )
    withdrawals_enabled = models.BooleanField(_("withdrawals to WeChat balance"), default=False)
    min_withdrawal = models.DecimalField(
        _("minimum withdrawal (yuan)"), max_digits=10, decimal_places=2, default=Decimal("1.00")
    )
    max_withdrawal = models.DecimalField(
        _("maximum withdrawal (yuan)"), max_digits=10, decimal_places=2, default=Decimal("1999.99")
    )
    transfer_scene_id = models.CharField(
        _("transfer scene id (商家转账场景)"), max_length=8, default="1000"
    )
    payment_expire_minutes = models.PositiveIntegerField(
        _("unpaid payments expire after (minutes)"), default=15
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("money policy")
        verbose_name_plural = _("money policy")

    def __str__(self) -> str:
        return str(_("Money policy"))
