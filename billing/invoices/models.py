"""Fapiao requests, their lines and orders, saved titles, the operator's invoicing settings
(tenant schema). Amounts in yuan (2 dp); a red-letter (红字) invoice carries negative amounts.

An order is on at most one live invoice: ``InvoiceOrder`` rows are unique by order number
while ``active`` (a partial unique index), and stop being active only when their invoice
failed for good, was rejected, or was red-reversed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from evplatform.crypto import EncryptedTextField, mask
from evplatform.singleton import SingletonModel

__all__ = ["InvoiceSettings", "InvoiceTitle", "Invoice", "InvoiceLine", "InvoiceOrder"]


class TitleKind(models.TextChoices):
    PERSONAL = "personal", _("Personal")
    COMPANY = "company", _("Company")


class InvoiceSettings(SingletonModel):
    """The operator as seller (销售方) and its e-invoice provider account: one row."""

    class Provider(models.TextChoices):
        NUONUO = "nuonuo", _("Nuonuo open platform (诺诺)")

    enabled = models.BooleanField(_("invoicing enabled"), default=False)
    auto_issue = models.BooleanField(
        _("issue automatically"), default=True,
        help_text=_("Off: every request waits for staff review before it is issued."),
    )
    seller_name = models.CharField(_("seller name"), max_length=100, blank=True)
    seller_tax_number = models.CharField(_("seller tax number"), max_length=20, blank=True)
    seller_address = models.CharField(_("seller address"), max_length=100, blank=True)
    seller_phone = models.CharField(_("seller phone"), max_length=20, blank=True)
    seller_bank_account = models.CharField(_("seller bank and account"), max_length=100, blank=True)
    clerk = models.CharField(_("issuing clerk (开票员)"), max_length=20, blank=True)
    invoice_line = models.CharField(
        _("invoice kind code"), max_length=8, default="pc",
        help_text=_("Provider's code of the invoice kind, e.g. pc = 数电普票."),
    )

    electricity_goods_name = models.CharField(_("electricity line name"), max_length=40, default="电费")
    electricity_goods_code = models.CharField(
        _("electricity tax classification code"), max_length=19, blank=True
    )
    electricity_tax_rate = models.DecimalField(
        _("electricity tax rate"), max_digits=4, decimal_places=3, default="0.130"
    )
    service_goods_name = models.CharField(_("service line name"), max_length=40, default="充电服务费")
    service_goods_code = models.CharField(_("service tax classification code"), max_length=19, blank=True)
    service_tax_rate = models.DecimalField(
        _("service tax rate"), max_digits=4, decimal_places=3, default="0.060"
    )

    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.NUONUO
    )
    api_url = models.URLField(_("provider API URL"), default="https://sdk.nuonuo.com/open/v1/services")
    token_url = models.URLField(_("provider token URL"), default="https://open.nuonuo.com/accessToken")
    app_key = models.CharField(_("app key"), max_length=64, blank=True)
    app_secret = EncryptedTextField(_("app secret"), blank=True)
    access_token = EncryptedTextField(_("access token"), blank=True)
    token_expires_at = models.DateTimeField(_("token expires"), null=True, blank=True)
    callback_base_url = models.URLField(
        _("our public base URL"), blank=True,
        help_text=_("Where the provider calls back, e.g. https://api.example.com"),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("invoicing settings")
        verbose_name_plural = _("invoicing settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(electricity_tax_rate__gte=0, electricity_tax_rate__lt=1)
                & Q(service_tax_rate__gte=0, service_tax_rate__lt=1),
                name="invoice_tax_rates_range",
            ),
        ]

    def __str__(self) -> str:
        return str(self.seller_name or _("invoicing settings"))

    @property
    def app_secret_masked(self) -> str:
        return mask(self.app_secret)


class InvoiceTitle(models.Model):
    """A member's saved invoice title (发票抬头)."""

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="invoice_titles",
        verbose_name=_("member"),
    )
    kind = models.CharField(_("title type"), max_length=8, choices=TitleKind.choices)
    name = models.CharField(_("title"), max_length=100)
    tax_number = models.CharField(_("tax number"), max_length=20, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    address = models.CharField(_("address"), max_length=100, blank=True)
    bank_account = models.CharField(_("bank and account"), max_length=100, blank=True)
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("invoice title")
        verbose_name_plural = _("invoice titles")
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["member"], condition=Q(is_default=True), name="invoice_title_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Invoice(models.Model):
    """One invoice request (blue) or red-letter reversal (red), issued through the provider.

    ``number`` is our request number (诺诺 ``orderNo``), made once and reused by every retry,
    so the provider never issues twice for one request.
    """

    class Kind(models.TextChoices):
        BLUE = "blue", _("Invoice")
        RED = "red", _("Red-letter reversal")

    class Status(models.TextChoices):
        REVIEW = "review", _("Waiting for review")
        QUEUED = "queued", _("Queued")
        SUBMITTED = "submitted", _("Being issued")
        ISSUED = "issued", _("Issued")
        FAILED = "failed", _("Failed")
        REJECTED = "rejected", _("Rejected")
        REVERSED = "reversed", _("Reversed (red-letter)")

    LIVE = (Status.REVIEW, Status.QUEUED, Status.SUBMITTED, Status.ISSUED)

    number = models.CharField(_("request number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices, default=Kind.BLUE)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="invoices", verbose_name=_("member")
    )
    original = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversals",
        verbose_name=_("reverses"),
    )
    replaces = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reissues",
        verbose_name=_("re-issue of"),
    )
    title_kind = models.CharField(_("title type"), max_length=8, choices=TitleKind.choices)
    title_name = models.CharField(_("title"), max_length=100)
    tax_number = models.CharField(_("tax number"), max_length=20, blank=True)
    email = models.EmailField(_("email"))
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    address = models.CharField(_("address"), max_length=100, blank=True)
    bank_account = models.CharField(_("bank and account"), max_length=100, blank=True)
    remark = models.CharField(_("remark"), max_length=200, blank=True)

    total = models.DecimalField(_("total incl. tax (yuan)"), max_digits=12, decimal_places=2)
    amount_ex_tax = models.DecimalField(_("amount excl. tax (yuan)"), max_digits=12, decimal_places=2)
    tax = models.DecimalField(_("tax (yuan)"), max_digits=12, decimal_places=2)

    needs_reversal = models.BooleanField(
        _("refund to reverse"), default=False,
        help_text=_("An order on it was refunded: red-reverse once issued, then re-issue."),
    )
    provider_serial = models.CharField(_("provider serial"), max_length=64, blank=True)
    invoice_code = models.CharField(_("invoice code"), max_length=20, blank=True)
    invoice_no = models.CharField(_("invoice number"), max_length=32, blank=True)
    pdf_url = models.URLField(_("provider PDF"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    unclear = models.BooleanField(
        _("outcome unclear"), default=False,
        help_text=_("The last call had no clear answer: the provider is asked before any retry."),
    )
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    next_try_at = models.DateTimeField(_("next try"), null=True, blank=True)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    review_note = models.CharField(_("review note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total=models.F("amount_ex_tax") + models.F("tax")),
                name="invoice_total_is_amount_plus_tax",
            ),
            models.CheckConstraint(
                condition=Q(kind="blue", total__gt=0) | Q(kind="red", total__lt=0),
                name="invoice_sign_by_kind",
            ),
            # One red-letter reversal per invoice.
            models.UniqueConstraint(
                fields=["original"], condition=Q(kind="red"), name="invoice_one_reversal"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    """One line (电费 or 充电服务费) with its tax classification code and rate."""

    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="lines", verbose_name=_("invoice")
    )
    kind = models.CharField(_("kind"), max_length=12)
    goods_name = models.CharField(_("goods or service"), max_length=40)
    goods_code = models.CharField(_("tax classification code"), max_length=19)
    tax_rate = models.DecimalField(_("tax rate"), max_digits=4, decimal_places=3)
    amount = models.DecimalField(_("amount incl. tax (yuan)"), max_digits=12, decimal_places=2)
    amount_ex_tax = models.DecimalField(_("amount excl. tax (yuan)"), max_digits=12, decimal_places=2)
    tax = models.DecimalField(_("tax (yuan)"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount=models.F("amount_ex_tax") + models.F("tax")),
                name="invoice_line_amount_is_sum",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.goods_name} {self.amount}"


class InvoiceOrder(models.Model):
    """A charging order on an invoice, with the part of it invoiced (yuan)."""

    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="orders", verbose_name=_("invoice")
    )
    order_number = models.CharField(_("order number"), max_length=32)
    amount = models.DecimalField(_("invoiced (yuan)"), max_digits=12, decimal_places=2)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("invoiced order")
        verbose_name_plural = _("invoiced orders")
        constraints = [
            models.UniqueConstraint(
                fields=["order_number"], condition=Q(active=True), name="invoice_order_at_most_once"
            ),
        ]

    def __str__(self) -> str:
        return self.order_number
