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

from evplatform.singleton import SingletonModel


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
        COMMISSION = "platform_commission", _("Platform commission payable")
        PAYOUT_TRANSIT = "payout_in_transit", _("Owner payouts in transit")
        BANK = "bank", _("Bank account (offline transfers)")
        # per interconnection partner platform (T/CEC): what its drivers' orders owe us, less
        # what our members' orders on its piles owe it (one net position per partner)
        PARTNER_RECEIVABLE = "partner_receivable", _("Partner platform receivable")

    DEBIT_NORMAL = {
        Kind.ARREARS, Kind.CLEARING, Kind.PROMOTION, Kind.BANK, Kind.PARTNER_RECEIVABLE
    }
    MEMBER_KINDS = (
        Kind.WALLET_CASH, Kind.WALLET_BONUS, Kind.HELD_CASH, Kind.HELD_BONUS, Kind.ARREARS
    )
    # Kinds whose balance may go below zero: clawbacks from owners, revenue reversed,
    # merchant-account movements we do not see (fees, other income).
    MAY_GO_NEGATIVE = {
        Kind.OWNER_PAYABLE, Kind.CLEARING, Kind.REVENUE, Kind.PROMOTION, Kind.COMMISSION, Kind.BANK
    }

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
        PARTNER_ORDER = "partner_order", _("Partner platform order (receivable)")
        ROAMING_ORDER = "roaming_order", _("Order on a partner's pile (owed to the partner)")
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
        ORDER_SPLIT = "order_split", _("Order revenue split")
        PAYOUT = "payout", _("Owner payout sent")
        PAYOUT_SUCCESS = "payout_success", _("Owner payout paid")
        PAYOUT_RETURN = "payout_return", _("Owner payout failed, back to payable")
        ADJUSTMENT = "adjustment", _("Manual adjustment")
        DISCOUNT = "discount", _("Marketing discount (coupon, SVIP)")
        GIFT = "gift", _("Marketing gift to the wallet bonus")
        CARD_REDEEM = "card_redeem", _("Point card redeemed")

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


class MoneyPolicy(SingletonModel):
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
    owner_min_withdrawal = models.DecimalField(
        _("station owners' minimum withdrawal (yuan)"), max_digits=10, decimal_places=2,
        default=Decimal("10.00"),
    )
    owner_withdrawal_two_person_above = models.DecimalField(
        _("owner withdrawals above this need two approvers (yuan)"), max_digits=12,
        decimal_places=2, default=Decimal("2000.00"),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("money policy")
        verbose_name_plural = _("money policy")

    def __str__(self) -> str:
        return str(_("Money policy"))


# --------------------------------------------------------------------------- revenue split
class SplitRule(models.Model):
    """One version of a station's (or one pile's) revenue split. Versions are never edited
    once an order used them: a change is a new version, effective from its ``effective_from``;
    an order uses the version in force when it started (locked per order, like tariffs),
    recorded on its :class:`OrderSplit`. A pile's own rule wins over its station's."""

    class Base(models.TextChoices):
        SERVICE = "service", _("Service fee only")
        TOTAL = "total", _("Electricity + service")
        NET = "net", _("Electricity + service, net of the payment fee")

    class FeeBearer(models.TextChoices):
        OPERATOR = "operator", _("The operator")
        SHARED = "shared", _("All parties, in proportion")

    station = models.ForeignKey(
        "stations.Station", on_delete=models.PROTECT, related_name="split_rules",
        verbose_name=_("station"),
    )
    pile = models.ForeignKey(
        "stations.Pile", on_delete=models.PROTECT, null=True, blank=True,
        related_name="split_rules", verbose_name=_("pile (own investor)"),
        help_text=_("Leave empty for the whole station."),
    )
    version = models.PositiveIntegerField(_("version"), editable=False)
    effective_from = models.DateTimeField(_("effective from"))
    base = models.CharField(_("split base"), max_length=16, choices=Base.choices, default=Base.SERVICE)
    fee_bearer = models.CharField(
        _("payment fee borne by"), max_length=16, choices=FeeBearer.choices,
        default=FeeBearer.OPERATOR,
    )
    payment_fee_percent = models.DecimalField(
        _("payment fee (%)"), max_digits=5, decimal_places=2, default=Decimal("0.60"),
        help_text=_("WeChat Pay's fee on the amount paid, e.g. 0.60."),
    )
    discounts_reduce_base = models.BooleanField(
        _("discounts reduce the base"), default=True,
        help_text=_("Marketing discounts are taken off the base before it is split."),
    )
    profit_sharing = models.BooleanField(
        _("pay owners by WeChat profit sharing"), default=False,
        help_text=_("Pay-per-order payments at this station are made for WeChat profit sharing "
                    "(分账), and each order's owner shares are sent to the owners' WeChat after "
                    "settlement, within WeChat's limits (at most 30 per cent of the payment, "
                    "50 receivers, an owner openid in the contract); otherwise they wait for the "
                    "statement."),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("split rule")
        verbose_name_plural = _("split rules")
        ordering = ["station", "pile", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "pile", "version"], name="split_rule_version_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        where = self.pile or self.station
        return f"{where} v{self.version}"


class SplitShare(models.Model):
    """One station owner's share in a rule: a percentage of the base or yuan per kWh."""

    class Kind(models.TextChoices):
        PERCENT = "percent", _("Percentage of the base")
        PER_KWH = "per_kwh", _("Yuan per kWh")

    rule = models.ForeignKey(SplitRule, on_delete=models.CASCADE, related_name="shares",
                             verbose_name=_("rule"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="split_shares",
        verbose_name=_("station owner"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.PERCENT)
    value = models.DecimalField(
        _("value"), max_digits=9, decimal_places=5,
        help_text=_("Percent (0–100), or yuan per kWh."),
    )

    class Meta:
        verbose_name = _("owner share")
        verbose_name_plural = _("owner shares")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "owner"], name="split_share_owner_once"),
            models.CheckConstraint(condition=Q(value__gte=0), name="split_share_not_negative"),
        ]

    def __str__(self) -> str:
        unit = "%" if self.kind == self.Kind.PERCENT else _("yuan/kWh")
        return f"{self.owner} {self.value} {unit}"


class OrderSplit(models.Model):
    """How one settled order's revenue was split (yuan), and the ledger posting that did it."""

    order_ref = models.CharField(_("order number"), max_length=64, unique=True)
    station = models.ForeignKey(
        "stations.Station", on_delete=models.PROTECT, related_name="order_splits",
        verbose_name=_("station"),
    )
    rule = models.ForeignKey(
        SplitRule, on_delete=models.PROTECT, null=True, blank=True, related_name="order_splits",
        verbose_name=_("rule version"),
    )
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4)
    energy_by_period = models.JSONField(_("energy by tariff period (kWh)"), default=dict, blank=True)
    gross = models.DecimalField(_("gross"), max_digits=12, decimal_places=2)
    discount = models.DecimalField(_("discount"), max_digits=12, decimal_places=2, default=0)
    payment_fee = models.DecimalField(_("payment fee"), max_digits=12, decimal_places=2, default=0)
    base = models.DecimalField(_("split base"), max_digits=12, decimal_places=2)
    commission = models.DecimalField(_("platform commission"), max_digits=12, decimal_places=2)
    commission_percent = models.DecimalField(_("commission (%)"), max_digits=5, decimal_places=2)
    owners_total = models.DecimalField(_("owners' shares"), max_digits=12, decimal_places=2)
    operator_part = models.DecimalField(_("operator's part"), max_digits=12, decimal_places=2)
    refunded = models.DecimalField(_("refunded"), max_digits=12, decimal_places=2, default=0)
    posting = models.OneToOneField(
        Posting, on_delete=models.PROTECT, null=True, blank=True, related_name="order_split",
        verbose_name=_("posting"),
    )
    settled_at = models.DateTimeField(_("settled"), db_index=True)

    class Meta:
        verbose_name = _("order split")
        verbose_name_plural = _("order splits")
        ordering = ["-settled_at"]

    def __str__(self) -> str:
        return self.order_ref


class OwnerContract(models.Model):
    """A station owner's settlement terms: how often statements are built, how long after
    the period (T+N, past the refund window), and how the owner is paid."""

    class Cycle(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")

    class Method(models.TextChoices):
        WECHAT = "wechat_transfer", _("WeChat Pay merchant transfer")
        BANK = "bank", _("Offline bank transfer")

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owner_contract",
        verbose_name=_("station owner"),
    )
    member = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, null=True, blank=True,
        related_name="owner_contract", verbose_name=_("mini-program member"),
        help_text=_("The owner's own member account: opens the owner center in the mini-program."),
    )
    cycle = models.CharField(_("statement cycle"), max_length=16, choices=Cycle.choices,
                             default=Cycle.WEEKLY)
    delay_days = models.PositiveSmallIntegerField(
        _("days after the period (T+N)"), default=3,
        help_text=_("A period's statement is built this many days after it ends."),
    )
    method = models.CharField(_("payout method"), max_length=20, choices=Method.choices,
                              default=Method.BANK)
    openid = models.CharField(_("owner's WeChat openid"), max_length=64, blank=True)
    real_name = models.CharField(_("payee name"), max_length=50, blank=True)
    bank_name = models.CharField(_("bank"), max_length=100, blank=True)
    bank_account = models.CharField(_("bank account"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("owner contract")
        verbose_name_plural = _("owner contracts")

    def __str__(self) -> str:
        return str(self.owner)


class Statement(models.Model):
    """One owner's settlement statement for a period: built as a draft, confirmed by the
    operator (then immutable), then paid. The amounts are yuan."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CONFIRMED = "confirmed", _("Confirmed")
        PAYING = "paying", _("Payment in progress")
        PAID = "paid", _("Paid")
        CARRIED = "carried", _("Nothing to pay (carried forward)")

    FINAL = (Status.CONFIRMED, Status.PAYING, Status.PAID, Status.CARRIED)

    number = models.CharField(_("statement number"), max_length=32, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="statements",
        verbose_name=_("station owner"),
    )
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.DRAFT)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=14, decimal_places=4, default=0)
    gross = models.DecimalField(_("gross"), max_digits=14, decimal_places=2, default=0)
    discounts = models.DecimalField(_("discounts"), max_digits=14, decimal_places=2, default=0)
    refunds = models.DecimalField(_("refunds"), max_digits=14, decimal_places=2, default=0)
    payment_fees = models.DecimalField(_("payment fees"), max_digits=14, decimal_places=2, default=0)
    commission = models.DecimalField(_("platform commission"), max_digits=14, decimal_places=2,
                                     default=0)
    share = models.DecimalField(_("owner's share"), max_digits=14, decimal_places=2, default=0)
    adjustments = models.DecimalField(_("corrections and carried amounts"), max_digits=14,
                                      decimal_places=2, default=0)
    net = models.DecimalField(_("net payable"), max_digits=14, decimal_places=2, default=0)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("confirmed by"),
    )
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("settlement statement")
        verbose_name_plural = _("settlement statements")
        ordering = ["-period_end", "owner"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "period_end"], name="statement_once_per_period")
        ]
        permissions = [("settle_statement", _("Can confirm and pay statements"))]

    def __str__(self) -> str:
        return self.number


class SplitLine(models.Model):
    """One movement of one owner's payable: a share of an order (+), its reversal on a
    refund (−), or an amount carried between statements. Lines without a statement wait for
    the owner's next one; ``amount`` is yuan."""

    class Kind(models.TextChoices):
        SHARE = "share", _("Order share")
        REVERSAL = "reversal", _("Refund reversal")
        CARRIED_IN = "carried_in", _("Carried from an earlier statement")
        CARRIED_OUT = "carried_out", _("Carried to the next statement")
        WITHDRAWAL = "withdrawal", _("Withdrawn in advance")
        WITHDRAWAL_RETURN = "withdrawal_return", _("Withdrawal refused or failed, returned")
        PROFIT_SHARING = "profit_sharing", _("Sent by WeChat profit sharing")
        PROFIT_SHARING_RETURN = "ps_return", _("Profit sharing failed, back to payable")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="split_lines",
        verbose_name=_("station owner"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    withdrawal = models.ForeignKey("OwnerWithdrawal", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="lines", verbose_name=_("withdrawal"))
    split = models.ForeignKey(OrderSplit, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="lines", verbose_name=_("order split"))
    posting = models.ForeignKey(Posting, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="split_lines", verbose_name=_("posting"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    refund = models.DecimalField(_("order refund"), max_digits=12, decimal_places=2, default=0)
    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="lines", verbose_name=_("statement"))
    occurred_at = models.DateTimeField(_("occurred"), db_index=True)

    class Meta:
        verbose_name = _("owner payable line")
        verbose_name_plural = _("owner payable lines")
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["owner", "statement", "occurred_at"],
                                name="split_line_open")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"


class Payout(models.Model):
    """Money sent to an owner for a confirmed statement (WeChat merchant transfer or an
    offline bank transfer recorded with its reference)."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        UNCLEAR = "unclear", _("Unclear answer (to be queried)")
        WAIT_USER_CONFIRM = "wait_user_confirm", _("Waiting for the owner to confirm")
        SUCCESS = "success", _("Paid")
        FAILED = "failed", _("Failed (back to payable)")

    OPEN = (Status.SENT, Status.UNCLEAR, Status.WAIT_USER_CONFIRM)
    Method = OwnerContract.Method

    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="payouts", verbose_name=_("statement"))
    withdrawal = models.ForeignKey("OwnerWithdrawal", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="payouts", verbose_name=_("withdrawal"))
    method = models.CharField(_("method"), max_length=20, choices=OwnerContract.Method.choices)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    out_bill_no = models.CharField(_("out bill no"), max_length=32, unique=True)
    reference = models.CharField(_("bank reference"), max_length=64, blank=True)
    transfer_bill_no = models.CharField(_("WeChat transfer bill"), max_length=64, blank=True)
    package_info = models.TextField(_("package info"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.SENT)
    fail_reason = models.CharField(_("failure reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", verbose_name=_("paid by"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("owner payout")
        verbose_name_plural = _("owner payouts")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["statement"], condition=~Q(status="failed"), name="payout_one_live_per_statement"
            ),
            models.UniqueConstraint(
                fields=["withdrawal"], condition=~Q(status="failed"),
                name="payout_one_live_per_withdrawal",
            ),
            models.CheckConstraint(
                condition=Q(statement__isnull=True) ^ Q(withdrawal__isnull=True),
                name="payout_for_a_statement_or_a_withdrawal",
            ),
        ]

    def __str__(self) -> str:
        return self.out_bill_no

    @property
    def owner_id(self) -> int:
        return (self.statement or self.withdrawal).owner_id

    @property
    def for_number(self) -> str:
        """The statement's or the withdrawal's number (what the payout pays)."""
        return (self.statement or self.withdrawal).number


class OwnerWithdrawal(models.Model):
    """A station owner's request to be paid part of their available payable now, ahead of
    the statement (which then nets it off). Reviewed by staff: one approval, or two by
    different people above the money policy's threshold; then paid by WeChat merchant
    transfer or an offline bank transfer, per the owner's contract. Amounts in yuan."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Waiting for review")
        SECOND_REVIEW = "second_review", _("Waiting for a second approver")
        APPROVED = "approved", _("Approved, being paid")
        PAID = "paid", _("Paid")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Payment failed")

    OPEN = (Status.REQUESTED, Status.SECOND_REVIEW, Status.APPROVED)

    number = models.CharField(_("withdrawal number"), max_length=32, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="owner_withdrawals", verbose_name=_("station owner"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    method = models.CharField(_("payout method"), max_length=20,
                              choices=OwnerContract.Method.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.REQUESTED)
    two_person = models.BooleanField(_("needs two approvers"), default=False)
    first_approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                       null=True, blank=True, related_name="+",
                                       verbose_name=_("approved by"))
    first_approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    second_approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                        null=True, blank=True, related_name="+",
                                        verbose_name=_("second approver"))
    second_approved_at = models.DateTimeField(_("second approval"), null=True, blank=True)
    rejected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+",
                                    verbose_name=_("rejected by"))
    reason = models.CharField(_("rejection or failure reason"), max_length=200, blank=True)
    reference = models.CharField(_("bank reference"), max_length=64, blank=True)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("owner withdrawal")
        verbose_name_plural = _("owner withdrawals")
        ordering = ["-requested_at"]
        permissions = [("approve_owner_withdrawal", _("Can approve station owners' withdrawals"))]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="owner_withdrawal_positive"),
            models.CheckConstraint(
                condition=Q(second_approver__isnull=True) | ~Q(second_approver=models.F("first_approver")),
                name="owner_withdrawal_two_different_approvers",
            ),
        ]

    def __str__(self) -> str:
        return self.number
