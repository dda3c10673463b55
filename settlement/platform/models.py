"""The platform's (super admin's) ledger of commissions, public schema: one statement per
operator and month, built from the operator's own ledger (its ``platform_commission``
account) by :mod:`settlement.platform.services`. Amounts in yuan."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0")


class CommissionStatement(models.Model):
    """What one operator owes the platform for one month: commission taken on its orders'
    splits, less what refunds reversed. A draft is rebuilt freely; once confirmed by the
    super admin it never changes (later refunds land in the month they happen)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CONFIRMED = "confirmed", _("Confirmed")

    operator = models.ForeignKey("tenants.Operator", on_delete=models.PROTECT,
                                 related_name="commission_statements", verbose_name=_("operator"))
    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    commission_percent = models.DecimalField(_("commission (%)"), max_digits=5, decimal_places=2,
                                             default=ZERO)
    orders = models.PositiveIntegerField(_("orders split"), default=0)
    base = models.DecimalField(_("split base"), max_digits=14, decimal_places=2, default=ZERO)
    accrued = models.DecimalField(_("commission taken"), max_digits=14, decimal_places=2, default=ZERO)
    reversed = models.DecimalField(_("reversed by refunds"), max_digits=14, decimal_places=2,
                                   default=ZERO)
    net = models.DecimalField(_("net commission"), max_digits=14, decimal_places=2, default=ZERO)
    collected = models.DecimalField(
        _("collected by profit sharing"), max_digits=14, decimal_places=2, default=ZERO,
        help_text=_("Service-provider mode: commission the platform already received by profit "
                    "sharing, less what it returned for refunds."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.DRAFT)
    built_at = models.DateTimeField(_("built"), auto_now=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                     blank=True, related_name="+", verbose_name=_("confirmed by"))
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)

    class Meta:
        verbose_name = _("commission statement")
        verbose_name_plural = _("commission statements")
        ordering = ["-month", "operator"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "month"], name="commission_statement_once"),
        ]

    def __str__(self) -> str:
        return f"{self.operator} {self.month:%Y-%m}"
