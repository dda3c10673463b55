"""Tariffs, tariff versions and their assignment to stations and piles. Tenant schema.

A :class:`Tariff` is a named price plan with an editable working copy (``draft``, the
dict form of :class:`billing.tariffs.pricing.TariffSnapshot`). Publishing it creates an immutable
:class:`TariffVersion` with an effective time and a YKC model number; the version in force
at instant t is the latest one with ``effective_from <= t``. Orders lock a version (and its
snapshot) at start, after which the version can be neither edited nor deleted.

Writes go through ``billing.tariffs.services``; reads through ``billing.tariffs.selectors``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["PileTariff", "StationTariff", "Tariff", "TariffVersion"]

MODEL_NUMBER_MAX = 9999  # YKC 计费模型编号: 2 BCD bytes


class Tariff(models.Model):
    """A price plan (计费模型): flat or time-of-use, with versions over time."""

    class Kind(models.TextChoices):
        FLAT = "flat", _("Flat")
        TOU = "tou", _("Time of use (尖峰平谷)")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.TOU)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # The working copy edited in the admin: TariffSnapshot.to_dict() output (always valid).
    # Nothing prices from it; "publish" copies it into a new TariffVersion.
    draft = models.JSONField(_("working copy"), editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class TariffVersion(models.Model):
    """An immutable, effective-dated version of a tariff, as orders lock it."""

    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, related_name="versions", verbose_name=_("tariff")
    )
    effective_from = models.DateTimeField(_("effective from"))
    # TariffSnapshot.to_dict() with model_number = this version's model number.
    snapshot = models.JSONField(_("snapshot"), editable=False)
    # Unique in the operator's schema, so a pile (YKC 0x05) can tell versions apart.
    model_number = models.PositiveSmallIntegerField(
        _("YKC model number"),
        unique=True,
        validators=[MinValueValidator(1), MaxValueValidator(MODEL_NUMBER_MAX)],
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        editable=False,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Set once the first order locked this version; from then on it is frozen.
    locked_at = models.DateTimeField(_("locked"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("tariff version")
        verbose_name_plural = _("tariff versions")
        ordering = ["tariff", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["tariff", "effective_from"], name="tariffversion_tariff_effective"
            ),
            models.CheckConstraint(
                condition=models.Q(model_number__gte=1, model_number__lte=MODEL_NUMBER_MAX),
                name="tariffversion_model_number_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff} #{self.model_number:04d}"

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


class StationTariff(models.Model):
    """A station's default tariff (piles without their own use it; so does price_today)."""

    station = models.OneToOneField(
        "stations.Station",
        on_delete=models.CASCADE,
        related_name="tariff_assignment",
        verbose_name=_("station"),
    )
    tariff = models.ForeignKey(
        Tariff,
        on_delete=models.PROTECT,
        related_name="station_assignments",
        verbose_name=_("tariff"),
    )
    assigned_at = models.DateTimeField(_("assigned"), auto_now=True)

    class Meta:
        verbose_name = _("station tariff")
        verbose_name_plural = _("station tariffs")
        ordering = ["station"]

    def __str__(self) -> str:
        return f"{self.station} → {self.tariff}"


class PileTariff(models.Model):
    """A pile's own tariff, overriding its station's default."""

    pile = models.OneToOneField(
        "stations.Pile",
        on_delete=models.CASCADE,
        related_name="tariff_assignment",
        verbose_name=_("pile"),
    )
    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, related_name="pile_assignments", verbose_name=_("tariff")
    )
    assigned_at = models.DateTimeField(_("assigned"), auto_now=True)

    class Meta:
        verbose_name = _("pile tariff")
        verbose_name_plural = _("pile tariffs")
        ordering = ["pile"]

    def __str__(self) -> str:
        return f"{self.pile} → {self.tariff}"
