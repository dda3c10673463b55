"""What the pile gateways keep for troubleshooting and history. Tenant schema.

Rows are written in batches by the gateway process (``protocols.ykc.store``) and never
edited; none of them is needed to bill a session (the domain keeps the transaction record
and the meter samples, ``charging.MeterSample``).
Pile codes are stored as text, not foreign keys: a frame or sample outlives a deleted pile,
and the frame log is written with COPY.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FrameLog(models.Model):
    """One frame in or out of a pile, as on the wire (kept ``YKC_FRAME_LOG_DAYS`` days)."""

    class Direction(models.TextChoices):
        IN = "in", _("Pile → platform")
        OUT = "out", _("Platform → pile")

    pile_code = models.CharField(_("pile code"), max_length=14)
    at = models.DateTimeField(_("time"))
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    frame_type = models.PositiveSmallIntegerField(_("frame type"))
    name = models.CharField(_("message"), max_length=40)
    trade_no = models.CharField(_("transaction number"), max_length=32, blank=True)
    hex = models.TextField(_("frame (hex)"))

    class Meta:
        verbose_name = _("frame log entry")
        verbose_name_plural = _("frame log")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["pile_code", "-at"], name="framelog_pile_at"),
            models.Index(fields=["at"], name="framelog_at"),
        ]

    def __str__(self) -> str:
        return f"{self.pile_code} {self.direction} 0x{self.frame_type:02X}"

    @property
    def frame_code(self) -> str:
        return f"0x{self.frame_type:02X}"


class SessionMessage(models.Model):
    """A BMS or abort message of one charging session (YKC 0x15 handshake, 0x17 parameters,
    0x19 end, 0x1B errors, 0x1D BMS abort, 0x21 charger abort, 0x23 demand, 0x25 BMS info),
    decoded, keyed by the pile's transaction number for troubleshooting."""

    trade_no = models.CharField(_("transaction number"), max_length=32)
    pile_code = models.CharField(_("pile code"), max_length=14)
    connector_no = models.PositiveSmallIntegerField(_("connector"))
    at = models.DateTimeField(_("time"))
    frame_type = models.PositiveSmallIntegerField(_("frame type"))
    name = models.CharField(_("message"), max_length=40)
    data = models.JSONField(_("decoded fields"), default=dict)
    hex = models.TextField(_("frame (hex)"))

    class Meta:
        verbose_name = _("session message")
        verbose_name_plural = _("session messages")
        ordering = ["trade_no", "at", "id"]
        indexes = [models.Index(fields=["trade_no", "at"], name="sessionmsg_trade_at")]

    def __str__(self) -> str:
        return f"{self.trade_no} 0x{self.frame_type:02X} {self.name}"


class OcppTransaction(models.Model):
    """One OCPP 1.6J transaction of a pile, mapped to the platform's trade number.

    The primary key is the ``transactionId`` the central system hands the pile in
    StartTransaction.conf (an integer, unique per operator: one table per tenant schema).
    A row is made when the platform sends RemoteStartTransaction (``id_tag`` is then a
    platform-issued tag naming the order) or when a pile starts with a driver's tag; its
    ``started_at`` / ``meter_start_wh`` come from the pile's StartTransaction, so a queued
    StartTransaction sent again is answered with the same transactionId.
    """

    pile_code = models.CharField(_("pile code"), max_length=14)
    connector_no = models.PositiveSmallIntegerField(_("connector"))
    trade_no = models.CharField(_("transaction number"), max_length=32, unique=True)
    id_tag = models.CharField(_("idTag"), max_length=20)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    meter_start_wh = models.BigIntegerField(_("meter start (Wh)"), null=True, blank=True)
    last_meter_at = models.DateTimeField(_("last meter value"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    meter_stop_wh = models.BigIntegerField(_("meter stop (Wh)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("OCPP transaction")
        verbose_name_plural = _("OCPP transactions")
        ordering = ["-id"]
        indexes = [models.Index(fields=["pile_code", "id_tag"], name="ocpptx_pile_tag")]

    def __str__(self) -> str:
        return f"{self.pile_code} #{self.pk} {self.trade_no}"


# The interconnection partners' models (T/CEC) live beside their protocol package.
from protocols.cec.models import (  # noqa: E402, F401
    IssuedToken,
    Partner,
    Push,
)
