"""Marketing (tenant schema): coupons, SVIP plans, points and the points mall, scratch cards
and point cards.

Money is yuan (``Decimal``, 2 places); points are whole numbers. Every grant and redemption
that moves money is posted to the ledger (``settlement``) under an idempotency key derived
from the row it belongs to; points move only through :class:`PointsEntry`, an append-only
ledger (a PostgreSQL trigger refuses updates and deletes).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from evplatform.singleton import SingletonModel

ZERO = Decimal("0.00")


# --------------------------------------------------------------------------- coupons
class CouponTemplate(models.Model):
    """A kind of coupon the operator issues (券模板)."""

    class Kind(models.TextChoices):
        FIXED = "fixed", _("Fixed amount off")
        THRESHOLD = "threshold", _("Amount off above a threshold")
        PERCENT = "percent", _("Percent off")

    class Base(models.TextChoices):
        SERVICE = "service", _("Service fee")
        TOTAL = "total", _("Whole order")

    class Current(models.TextChoices):
        ANY = "any", _("AC and DC")
        AC = "ac", _("AC only")
        DC = "dc", _("DC only")

    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.FIXED)
    amount = models.DecimalField(
        _("amount off (yuan)"), max_digits=8, decimal_places=2, default=ZERO,
        validators=[MinValueValidator(ZERO)], help_text=_("For fixed and threshold coupons."),
    )
    threshold = models.DecimalField(
        _("minimum order (yuan)"), max_digits=8, decimal_places=2, default=ZERO,
        validators=[MinValueValidator(ZERO)], help_text=_("The order's amount before discounts must reach this."),
    )
    percent = models.DecimalField(
        _("percent off"), max_digits=5, decimal_places=2, default=ZERO,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))],
    )
    base = models.CharField(_("applies to"), max_length=8, choices=Base.choices, default=Base.TOTAL)
    cap = models.DecimalField(
        _("cap (yuan)"), max_digits=8, decimal_places=2, null=True, blank=True,
        help_text=_("The most a percent coupon takes off; empty: no cap."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(
        _("valid days after grant"), null=True, blank=True,
        help_text=_("When set, a granted coupon is valid this many days from its grant (instead of the fixed dates)."),
    )
    stations = models.ManyToManyField(
        "stations.Station", blank=True, verbose_name=_("stations"), help_text=_("Empty: every station.")
    )
    current = models.CharField(_("AC/DC"), max_length=4, choices=Current.choices, default=Current.ANY)
    hour_from = models.PositiveSmallIntegerField(
        _("from hour"), null=True, blank=True, validators=[MaxValueValidator(23)],
        help_text=_("Time-of-day scope in the operator's time zone (the charge's start hour)."),
    )
    hour_to = models.PositiveSmallIntegerField(
        _("to hour"), null=True, blank=True, validators=[MaxValueValidator(24)],
    )
    stacks_with_svip = models.BooleanField(
        _("stacks with the SVIP discount"), default=True,
        help_text=_("Off: an order gets either this coupon or the SVIP discount, whichever is larger."),
    )
    per_member_limit = models.PositiveIntegerField(_("per member limit"), default=1)
    total_quantity = models.PositiveIntegerField(
        _("total quantity"), null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    issued = models.PositiveIntegerField(_("issued"), default=0, editable=False)
    budget = models.DecimalField(
        _("budget (yuan)"), max_digits=12, decimal_places=2, null=True, blank=True,
        help_text=_("The most all redemptions together may take off; empty: no budget."),
    )
    spent = models.DecimalField(_("spent (yuan)"), max_digits=12, decimal_places=2, default=ZERO, editable=False)
    claimable = models.BooleanField(_("drivers may claim it in the app"), default=False)
    price = models.DecimalField(
        _("price (yuan)"), max_digits=8, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Empty: not sold. Set: drivers may buy it with WeChat Pay."),
    )
    first_charge_reward = models.BooleanField(_("granted after a member's first charge"), default=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_quantity__isnull=True) | Q(issued__lte=models.F("total_quantity")),
                name="marketing_template_not_oversold",
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(spent__lte=models.F("budget")),
                name="marketing_template_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Coupon(models.Model):
    """One coupon held by one member."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        LOCKED = "locked", _("Chosen for an order in progress")
        USED = "used", _("Used")
        VOID = "void", _("Void")

    class Source(models.TextChoices):
        CLAIM = "claim", _("Claimed in the app")
        STAFF = "staff", _("Granted by staff")
        REWARD = "reward", _("Reward")
        SVIP = "svip", _("SVIP coupon pack")
        MALL = "mall", _("Points mall")
        BOUGHT = "bought", _("Bought")
        SCRATCH = "scratch", _("Scratch card")

    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("template")
    )
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="coupons", verbose_name=_("member")
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    source_ref = models.CharField(_("source reference"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.AVAILABLE, db_index=True
    )
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    order_ref = models.CharField(_("order"), max_length=32, blank=True, db_index=True)
    used_amount = models.DecimalField(_("amount taken off"), max_digits=8, decimal_places=2, default=ZERO)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    granted_at = models.DateTimeField(_("granted"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["valid_until", "id"]

    def __str__(self) -> str:
        return f"{self.template.name} #{self.pk}"


class CouponPurchase(models.Model):
    """A coupon a member buys with WeChat Pay: ``pending`` until paid, then the coupon is
    granted (or, sold out meanwhile, the money is credited to the member's wallet)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        CLOSED = "closed", _("Not paid")
        CREDITED = "credited", _("Sold out: credited to the wallet")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="coupon_purchases", verbose_name=_("member")
    )
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="purchases",
                                 verbose_name=_("coupon"))
    amount = models.DecimalField(_("amount (yuan)"), max_digits=8, decimal_places=2)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    coupon = models.OneToOneField(Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="purchase",
                                  verbose_name=_("coupon granted"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon purchase")
        verbose_name_plural = _("coupon purchases")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.template} #{self.pk}"


# --------------------------------------------------------------------------- SVIP
class SvipPlan(models.Model):
    """A paid membership plan (SVIP 会员)."""

    name = models.CharField(_("name"), max_length=40)
    months = models.PositiveSmallIntegerField(_("months"), validators=[MinValueValidator(1), MaxValueValidator(36)])
    price = models.DecimalField(_("price (yuan)"), max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    service_discount_percent = models.DecimalField(
        _("service fee discount (%)"), max_digits=5, decimal_places=2, default=ZERO,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))],
    )
    monthly_coupon = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("monthly coupon"),
    )
    monthly_coupon_count = models.PositiveSmallIntegerField(_("coupons per month"), default=0)
    priority_reservation = models.BooleanField(_("priority reservation"), default=False)
    refund_days = models.PositiveSmallIntegerField(
        _("refundable within (days)"), default=7,
        help_text=_("A purchase whose benefits were not used may be refunded in full within this many days."),
    )
    active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        verbose_name = _("SVIP plan")
        verbose_name_plural = _("SVIP plans")
        ordering = ["months"]

    def __str__(self) -> str:
        return self.name


class SvipPurchase(models.Model):
    """A bought membership period; consecutive purchases extend each other (renewal). A
    WeChat Pay purchase is ``pending`` until its payment arrives; its period is fixed then."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        REFUNDED = "refunded", _("Refunded")
        CLOSED = "closed", _("Not paid")

    class PaidWith(models.TextChoices):
        WALLET = "wallet", _("Wallet")
        WECHAT = "wechat", _("WeChat Pay")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="svip_purchases", verbose_name=_("member")
    )
    paid_with = models.CharField(_("paid with"), max_length=8, choices=PaidWith.choices, default=PaidWith.WALLET)
    posting_key = models.CharField(
        _("ledger key"), max_length=100, blank=True,
        help_text=_("The ledger posting of the payment (wallet: svip:<id>; WeChat Pay: wx:txn:<transaction id>)."),
    )
    plan = models.ForeignKey(SvipPlan, on_delete=models.PROTECT, related_name="purchases", verbose_name=_("plan"))
    amount = models.DecimalField(_("amount (yuan)"), max_digits=8, decimal_places=2)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PAID)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    discount_total = models.DecimalField(_("discounts given (yuan)"), max_digits=10, decimal_places=2, default=ZERO)
    created_at = models.DateTimeField(_("bought"), auto_now_add=True)
    refunded_at = models.DateTimeField(_("refunded"), null=True, blank=True)

    class Meta:
        verbose_name = _("SVIP purchase")
        verbose_name_plural = _("SVIP purchases")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.plan} #{self.pk}"


class SvipDiscount(models.Model):
    """One SVIP discount on one order's bill (append-only): the SVIP statistics by day."""

    purchase = models.ForeignKey(SvipPurchase, on_delete=models.PROTECT, related_name="discounts", verbose_name=_("purchase"))
    order_ref = models.CharField(_("order"), max_length=32)
    amount = models.DecimalField(_("discount (yuan)"), max_digits=8, decimal_places=2)
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("SVIP discount")
        verbose_name_plural = _("SVIP discounts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.order_ref}: {self.amount}"


# --------------------------------------------------------------------------- rewards
class TopUpReward(models.Model):
    """Top up at least ``min_amount`` yuan in one payment: get coupons (the highest tier
    reached counts, once per payment)."""

    min_amount = models.DecimalField(
        _("top-up of at least (yuan)"), max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    coupon = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("coupon"))
    count = models.PositiveSmallIntegerField(_("coupons"), default=1, validators=[MinValueValidator(1), MaxValueValidator(20)])
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("top-up reward")
        verbose_name_plural = _("top-up rewards")
        ordering = ["min_amount"]

    def __str__(self) -> str:
        return f"≥ {self.min_amount}: {self.coupon} × {self.count}"


class ReferralProgram(models.Model):
    """The operator's invite-a-friend rules (one row): both sides are rewarded when the
    invitee's first charge is settled."""

    active = models.BooleanField(_("active"), default=False)
    inviter_coupon = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("inviter's coupon"),
    )
    inviter_points = models.PositiveIntegerField(_("inviter's points"), default=0)
    invitee_coupon = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("invitee's coupon"),
    )
    min_first_order = models.DecimalField(
        _("first charge of at least (yuan)"), max_digits=8, decimal_places=2, default=Decimal("5.00"),
        help_text=_("The invitee's first charge must pay at least this for anyone to be rewarded."),
    )
    bind_within_days = models.PositiveSmallIntegerField(
        _("invite code accepted within (days of joining)"), default=7, validators=[MinValueValidator(1)],
    )
    max_rewards_per_month = models.PositiveIntegerField(
        _("rewards per inviter per month"), default=10,
        help_text=_("Against abuse: invitations beyond this in a calendar month are not rewarded."),
    )

    class Meta:
        verbose_name = _("referral program")
        verbose_name_plural = _("referral programs")

    def __str__(self) -> str:
        return str(_("Referral program"))


class ReferralCode(models.Model):
    """A member's own invite code (made on first ask)."""

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.CASCADE, related_name="referral_code", verbose_name=_("member")
    )
    code = models.CharField(_("invite code"), max_length=12, unique=True)

    class Meta:
        verbose_name = _("invite code")
        verbose_name_plural = _("invite codes")

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    """Who invited whom (a member is invited once), and whether it was rewarded."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the first charge")
        REWARDED = "rewarded", _("Rewarded")
        REFUSED = "refused", _("Not rewarded")

    inviter = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="referrals_made", verbose_name=_("inviter")
    )
    invitee = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, related_name="referred_by", verbose_name=_("invitee")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("why not rewarded"), max_length=100, blank=True)
    order_ref = models.CharField(_("first order"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("invited"), auto_now_add=True)
    rewarded_at = models.DateTimeField(_("rewarded"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(inviter=models.F("invitee")), name="marketing_referral_not_self")
        ]

    def __str__(self) -> str:
        return f"{self.inviter} → {self.invitee}"


# --------------------------------------------------------------------------- points
class PointsRule(SingletonModel):
    """The operator's points rules (one row)."""

    per_yuan = models.DecimalField(_("points per yuan paid"), max_digits=6, decimal_places=2, default=Decimal("1"))
    per_kwh = models.DecimalField(_("points per kWh"), max_digits=6, decimal_places=2, default=ZERO)
    bonus_weekdays = models.CharField(
        _("bonus days"), max_length=20, blank=True,
        help_text=_("Weekdays with bonus points, e.g. 6,7 for Saturday and Sunday."),
    )
    bonus_multiplier = models.DecimalField(_("bonus day multiplier"), max_digits=4, decimal_places=2, default=Decimal("2"))
    expire_months = models.PositiveSmallIntegerField(
        _("points expire after (months)"), default=12, help_text=_("0: never.")
    )

    class Meta:
        verbose_name = _("points rule")
        verbose_name_plural = _("points rules")

    def __str__(self) -> str:
        return str(_("Points rule"))


class PointsAccount(models.Model):
    """A member's points balance, kept equal to the sum of its entries (``points_verify``)."""

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, related_name="points_account", verbose_name=_("member")
    )
    balance = models.IntegerField(_("balance"), default=0)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="marketing_points_not_negative")]

    def __str__(self) -> str:
        return f"{self.member} ({self.balance})"


class PointsEntry(models.Model):
    """One movement of points (append-only)."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned by charging")
        SPEND = "spend", _("Spent in the points mall")
        EXPIRE = "expire", _("Expired")
        REVERSE = "reverse", _("Reversed (order refunded)")
        PRIZE = "prize", _("Scratch card prize")
        ADJUST = "adjust", _("Adjusted by staff")
        REFERRAL = "referral", _("Referral reward")
        RETURN = "return", _("Returned (redemption cancelled)")

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points = models.IntegerField(_("points"))
    balance_after = models.IntegerField(_("balance after"))
    key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    ref = models.CharField(_("reference"), max_length=64, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.points:+d} ({self.key})"


class MallItem(models.Model):
    """Something the points mall sells."""

    class Kind(models.TextChoices):
        COUPON = "coupon", _("Coupon")
        BONUS = "bonus", _("Wallet bonus")
        GOODS = "goods", _("Goods (shipped)")

    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    points = models.PositiveIntegerField(_("price (points)"), validators=[MinValueValidator(1)])
    stock = models.PositiveIntegerField(_("stock"), default=0)
    coupon = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("coupon")
    )
    bonus = models.DecimalField(_("wallet bonus (yuan)"), max_digits=8, decimal_places=2, default=ZERO)
    active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        verbose_name = _("points mall item")
        verbose_name_plural = _("points mall items")
        ordering = ["points", "id"]

    def __str__(self) -> str:
        return self.name


class MallRedemption(models.Model):
    """A member's purchase in the points mall; goods are shipped and tracked here."""

    class Status(models.TextChoices):
        DONE = "done", _("Delivered to the wallet or coupons")
        PENDING = "pending", _("Waiting to ship")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled (points returned)")

    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="mall_redemptions", verbose_name=_("member"))
    item = models.ForeignKey(MallItem, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("item"))
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    recipient = models.CharField(_("recipient"), max_length=40, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    address = models.CharField(_("shipping address"), max_length=200, blank=True)
    tracking_no = models.CharField(_("tracking number"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("points mall redemption")
        verbose_name_plural = _("points mall redemptions")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.item} #{self.pk}"


# --------------------------------------------------------------------------- scratch cards
class ScratchCampaign(models.Model):
    """A scratch-card campaign (刮刮卡): a member gets a card after a charge and scratches it."""

    name = models.CharField(_("name"), max_length=60)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    budget = models.DecimalField(
        _("budget (yuan)"), max_digits=10, decimal_places=2,
        help_text=_("The most the prizes together may cost (wallet bonus and coupon face values)."),
    )
    spent = models.DecimalField(_("spent (yuan)"), max_digits=10, decimal_places=2, default=ZERO, editable=False)
    per_member_limit = models.PositiveIntegerField(_("cards per member"), default=3)
    min_order_amount = models.DecimalField(
        _("minimum order (yuan)"), max_digits=8, decimal_places=2, default=ZERO,
        help_text=_("A charge paying at least this gives a card."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("scratch card campaign")
        verbose_name_plural = _("scratch card campaigns")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(spent__lte=models.F("budget")), name="marketing_scratch_within_budget")
        ]

    def __str__(self) -> str:
        return self.name


class ScratchPrize(models.Model):
    class Kind(models.TextChoices):
        COUPON = "coupon", _("Coupon")
        POINTS = "points", _("Points")
        BONUS = "bonus", _("Wallet bonus")
        NOTHING = "nothing", _("Nothing (thanks for taking part)")

    campaign = models.ForeignKey(ScratchCampaign, on_delete=models.CASCADE, related_name="prizes", verbose_name=_("campaign"))
    name = models.CharField(_("name"), max_length=40)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    weight = models.PositiveIntegerField(
        _("probability (per 10 000)"), validators=[MaxValueValidator(10000)],
        help_text=_("The chance of this prize in 10 000 draws; what the prizes leave is 'nothing'."),
    )
    stock = models.PositiveIntegerField(_("stock"), default=0)
    coupon = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("coupon"))
    points = models.PositiveIntegerField(_("points"), default=0)
    bonus = models.DecimalField(_("wallet bonus (yuan)"), max_digits=8, decimal_places=2, default=ZERO)
    cost = models.DecimalField(
        _("cost (yuan)"), max_digits=8, decimal_places=2, default=ZERO,
        help_text=_("What one prize counts against the budget (the bonus; a coupon's face value)."),
    )

    class Meta:
        verbose_name = _("scratch card prize")
        verbose_name_plural = _("scratch card prizes")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ScratchCard(models.Model):
    """A card a member got (``source_ref``: the order that earned it); scratched once."""

    campaign = models.ForeignKey(ScratchCampaign, on_delete=models.PROTECT, related_name="cards", verbose_name=_("campaign"))
    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="scratch_cards", verbose_name=_("member"))
    source_ref = models.CharField(_("earned by"), max_length=64)
    prize = models.ForeignKey(ScratchPrize, on_delete=models.PROTECT, null=True, blank=True, related_name="cards", verbose_name=_("prize"))
    scratched_at = models.DateTimeField(_("scratched"), null=True, blank=True)
    created_at = models.DateTimeField(_("given"), auto_now_add=True)

    class Meta:
        verbose_name = _("scratch card")
        verbose_name_plural = _("scratch cards")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "source_ref"], name="marketing_one_card_per_source")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} #{self.pk}"


# --------------------------------------------------------------------------- point cards
class PointCardBatch(models.Model):
    """A batch of prepaid cards (点卡) staff generate, print and sell."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Generated (not active)")
        ACTIVE = "active", _("Active")
        VOID = "void", _("Void")

    class CreditAs(models.TextChoices):
        CASH = "cash", _("Wallet cash (card sold for money)")
        BONUS = "bonus", _("Wallet bonus (a gift)")

    name = models.CharField(_("name"), max_length=60)
    face_value = models.DecimalField(_("face value (yuan)"), max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    credit_as = models.CharField(_("credited as"), max_length=6, choices=CreditAs.choices, default=CreditAs.CASH)
    count = models.PositiveIntegerField(_("cards"), validators=[MinValueValidator(1), MaxValueValidator(10000)])
    status = models.CharField(_("status"), max_length=6, choices=Status.choices, default=Status.DRAFT)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("point card batch")
        verbose_name_plural = _("point card batches")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class PointCard(models.Model):
    """One card: a public number and a secret PIN, stored only as a keyed hash."""

    batch = models.ForeignKey(PointCardBatch, on_delete=models.PROTECT, related_name="cards", verbose_name=_("batch"))
    number = models.CharField(_("card number"), max_length=20, unique=True)
    pin_hash = models.CharField(_("PIN hash"), max_length=64)
    redeemed_by = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="point_cards",
        verbose_name=_("redeemed by"),
    )
    redeemed_at = models.DateTimeField(_("redeemed"), null=True, blank=True)

    class Meta:
        verbose_name = _("point card")
        verbose_name_plural = _("point cards")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.number


# --------------------------------------------------------------------------- bulk SMS
class SmsSettings(SingletonModel):
    """The operator's SMS account (one row): Tencent Cloud SMS, or the local fake."""

    class Provider(models.TextChoices):
        TENCENT = "tencent", _("Tencent Cloud SMS")

    provider = models.CharField(_("provider"), max_length=10, choices=Provider.choices, default=Provider.TENCENT)
    sdk_app_id = models.CharField(_("SMS SdkAppId"), max_length=20, blank=True)
    secret_id = models.CharField(_("SecretId"), max_length=64, blank=True)
    secret_key = models.CharField(_("SecretKey"), max_length=64, blank=True)
    region = models.CharField(_("region"), max_length=20, default="ap-guangzhou")
    endpoint = models.CharField(
        _("endpoint"), max_length=100, blank=True,
        help_text=_("Empty: sms.tencentcloudapi.com. A host:port here is called over plain HTTP (the local fake)."),
    )
    sign_name = models.CharField(_("signature"), max_length=20, blank=True, help_text=_("The approved SMS signature (签名)."))
    price_per_message = models.DecimalField(
        _("price per message (yuan)"), max_digits=6, decimal_places=3, default=Decimal("0.045"),
        help_text=_("What one billed message costs; the cost of a send is this × the messages the provider billed."),
    )
    rate_per_second = models.PositiveIntegerField(_("messages per second"), default=100, validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = _("SMS settings")
        verbose_name_plural = _("SMS settings")

    def __str__(self) -> str:
        return str(_("SMS settings"))


class SmsTemplate(models.Model):
    name = models.CharField(_("name"), max_length=60)
    template_id = models.CharField(_("provider template ID"), max_length=20)
    content = models.CharField(_("content"), max_length=300, help_text=_("As approved, with {1}, {2}… for the parameters."))
    params = models.JSONField(_("parameters"), default=list, blank=True, help_text=_('e.g. ["5元", "12月31日"]'))

    class Meta:
        verbose_name = _("SMS template")
        verbose_name_plural = _("SMS templates")

    def __str__(self) -> str:
        return self.name


class SmsConsent(models.Model):
    """A member's answer to marketing SMS: only members who agreed and did not opt out
    (in the app, or by replying TD) receive campaigns."""

    member = models.OneToOneField("accounts.Member", on_delete=models.CASCADE, related_name="sms_consent", verbose_name=_("member"))
    consented = models.BooleanField(_("agreed to marketing SMS"), default=False)
    opted_out_at = models.DateTimeField(_("opted out"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMS consent")
        verbose_name_plural = _("SMS consents")

    def __str__(self) -> str:
        return str(self.member)


class SmsCampaign(models.Model):
    """A bulk send (群发短信) to an audience."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Sent")

    class Segment(models.TextChoices):
        ALL = "all", _("All members")
        INACTIVE = "inactive", _("Inactive for N days")
        SVIP = "svip", _("SVIP members")
        STATION = "station", _("Users of a station")
        BALANCE = "balance", _("Wallet balance above X")
        PHONES = "phones", _("A list of phone numbers")

    name = models.CharField(_("name"), max_length=60)
    template = models.ForeignKey(SmsTemplate, on_delete=models.PROTECT, verbose_name=_("template"))
    segment = models.CharField(_("audience"), max_length=10, choices=Segment.choices, default=Segment.ALL)
    inactive_days = models.PositiveIntegerField(_("inactive days"), default=30)
    station = models.ForeignKey("stations.Station", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("station"))
    min_balance = models.DecimalField(_("balance above (yuan)"), max_digits=10, decimal_places=2, default=ZERO)
    phones = models.TextField(_("phone numbers (one a line)"), blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    total = models.PositiveIntegerField(_("recipients"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    delivered = models.PositiveIntegerField(_("delivered"), default=0)
    billed = models.PositiveIntegerField(_("billed messages"), default=0)
    cost = models.DecimalField(_("cost (yuan)"), max_digits=10, decimal_places=3, default=Decimal("0"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("SMS campaign")
        verbose_name_plural = _("SMS campaigns")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class SmsMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent (waiting for the receipt)")
        FAILED = "failed", _("Refused by the provider")
        DELIVERED = "delivered", _("Delivered")
        UNDELIVERED = "undelivered", _("Not delivered")

    campaign = models.ForeignKey(SmsCampaign, on_delete=models.CASCADE, related_name="messages", verbose_name=_("campaign"))
    member = models.ForeignKey("accounts.Member", on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("member"))
    phone = models.CharField(_("phone"), max_length=20)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    serial_no = models.CharField(_("provider serial number"), max_length=64, blank=True, db_index=True)
    fee = models.PositiveSmallIntegerField(_("billed messages"), default=0)
    error = models.CharField(_("error"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    receipt_at = models.DateTimeField(_("receipt"), null=True, blank=True)

    class Meta:
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "phone"], name="marketing_sms_one_per_phone")]

    def __str__(self) -> str:
        return self.phone
