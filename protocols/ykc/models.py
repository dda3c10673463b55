"""What each YKC pile holds of its billing model (计费模型), and what it is due."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["PileBillingModel"]


class PileBillingModel(models.Model):
    """What a YKC pile holds of its billing model, and what it is due.

    Slot maps are 48-character strings of YKC slot codes (``"0"`` sharp … ``"3"`` valley),
    so a season or critical-peak day under the same version (same model number) still shows
    as a difference. ``*_acked`` is what the pile holds as far as the platform knows.
    """

    class Result(models.TextChoices):
        SENT = "sent", _("Sent, awaiting reply")
        OK = "ok", _("Accepted by the pile")
        FAILED = "failed", _("Refused by the pile")
        VERIFIED_SAME = "same", _("Pile verified: up to date")
        VERIFIED_DIFFERS = "differs", _("Pile verified: out of date")

    pile = models.OneToOneField(
        "stations.Pile",
        on_delete=models.CASCADE,
        related_name="billing_model",
        verbose_name=_("pile"),
    )
    model_number_due = models.PositiveSmallIntegerField(_("model due"), null=True, blank=True)
    slots_due = models.CharField(_("slot map due"), max_length=48, blank=True)
    due_since = models.DateTimeField(_("due since"), null=True, blank=True)
    model_number_sent = models.PositiveSmallIntegerField(_("model sent"), null=True, blank=True)
    slots_sent = models.CharField(_("slot map sent"), max_length=48, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    model_number_acked = models.PositiveSmallIntegerField(
        _("model on the pile"), null=True, blank=True
    )
    slots_acked = models.CharField(_("slot map on the pile"), max_length=48, blank=True)
    acked_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    # Since when the pile has held ``model_number_acked`` unchanged (a 0x05 repeating the same
    # number does not move it): a session billed on the pile's buckets must start after it.
    held_since = models.DateTimeField(_("held since"), null=True, blank=True)
    last_result = models.CharField(
        _("last result"), max_length=8, choices=Result.choices, blank=True
    )

    class Meta:
        db_table = "billing_pilebillingmodel"  # made by billing's migrations, kept on the move
        verbose_name = _("pile billing model")
        verbose_name_plural = _("pile billing models")
        ordering = ["pile"]

    def __str__(self) -> str:
        return str(self.pile)
