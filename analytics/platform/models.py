"""One row per operator and local day (public schema): what the super admin's rollups read.

Written by :func:`analytics.services.stats_day_rebuild` and the per-order update, from the
operator's own day aggregates (never from raw orders). Amounts in yuan (2 dp), energy kWh.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0")


class OperatorDay(models.Model):
    operator = models.ForeignKey(
        "tenants.Operator", on_delete=models.CASCADE, related_name="stat_days", verbose_name=_("operator")
    )
    day = models.DateField(_("day"))
    orders = models.PositiveIntegerField(_("orders"), default=0)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=16, decimal_places=4, default=ZERO)
    gmv_yuan = models.DecimalField(_("GMV (yuan)"), max_digits=14, decimal_places=2, default=ZERO)
    refund_yuan = models.DecimalField(_("refunds (yuan)"), max_digits=14, decimal_places=2, default=ZERO)
    piles = models.PositiveIntegerField(_("piles"), default=0)
    piles_online = models.PositiveIntegerField(_("piles online"), default=0)

    class Meta:
        verbose_name = _("operator day")
        verbose_name_plural = _("operator days")
        constraints = [models.UniqueConstraint(fields=["operator", "day"], name="stats_operator_day")]
        indexes = [models.Index(fields=["day"], name="stats_operator_day_day")]

    def __str__(self) -> str:
        return f"{self.operator_id} {self.day}"
