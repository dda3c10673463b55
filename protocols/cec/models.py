"""Interconnection partners (T/CEC 102-2016 platforms) and what we exchange with them.
Tenant schema: each operator has its own partners.

- :class:`Partner`: a partner platform (aggregator, infrastructure partner, regulator)
  with its OperatorID, both secret sets (encrypted at rest), address, roles, visible
  stations, field-name variants, cadence and the arrears switch.
- :class:`IssuedToken`: access tokens we issued to partners (``query_token``), stored as
  hashes; a new one does not revoke an unexpired older one.
- :class:`Push`: one message we push to a partner (a queue row and its log): request,
  response, ``Ret``, attempts, next attempt; ``dead`` after the last retry, retried from
  the admin. ``key`` makes each business message unique per partner (never pushed twice as
  a new one).
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from evplatform.crypto import EncryptedTextField

from .codec import Secrets

OPERATOR_ID = RegexValidator(r"^[0-9A-Z]{9}$", _("Nine characters: digits and capital letters."))
SECRET16 = RegexValidator(r"^[\x21-\x7e]{16}$", _("Exactly 16 ASCII characters."))


class Partner(models.Model):
    """A partner platform we exchange T/CEC messages with."""

    name = models.CharField(_("name"), max_length=100)
    operator_id = models.CharField(
        _("partner OperatorID"), max_length=9, unique=True, validators=[OPERATOR_ID],
        help_text=_("The partner's 9-character organisation code (组织机构代码)."),
    )
    our_operator_id = models.CharField(
        _("our OperatorID"), max_length=9, validators=[OPERATOR_ID],
        help_text=_("Our organisation code, sent as OperatorID when we call this partner."),
    )
    # The set we issued: the partner signs and encrypts its calls to us with it.
    in_operator_secret = EncryptedTextField(_("inbound OperatorSecret"))
    in_data_secret = EncryptedTextField(_("inbound DataSecret"), validators=[SECRET16])
    in_data_iv = EncryptedTextField(_("inbound DataSecretIV"), validators=[SECRET16])
    in_sig_secret = EncryptedTextField(_("inbound SigSecret"))
    # The set the partner issued to us: our calls to it.
    out_operator_secret = EncryptedTextField(_("outbound OperatorSecret"), blank=True)
    out_data_secret = EncryptedTextField(_("outbound DataSecret"), blank=True, validators=[SECRET16])
    out_data_iv = EncryptedTextField(_("outbound DataSecretIV"), blank=True, validators=[SECRET16])
    out_sig_secret = EncryptedTextField(_("outbound SigSecret"), blank=True)
    base_url = models.URLField(
        _("base URL"), blank=True, help_text=_("The partner's address, e.g. https://cec.example.com")
    )
    path_prefix = models.CharField(
        _("path prefix"), max_length=50, default="/evcs/v1/",
        help_text=_("Where the partner serves its interfaces, e.g. /evcs/v1/."),
    )
    is_customer_operator = models.BooleanField(
        _("customer-owning partner"), default=True,
        help_text=_("Its drivers charge on our piles (aggregator or another operator)."),
    )
    is_infrastructure = models.BooleanField(
        _("infrastructure partner"), default=False,
        help_text=_("Our members charge on its piles."),
    )
    is_regulator = models.BooleanField(
        _("regulator"), default=False,
        help_text=_("Receives our stations, status changes and every settled order."),
    )
    all_stations = models.BooleanField(_("sees all our stations"), default=True)
    stations = models.ManyToManyField(
        "stations.Station", blank=True, related_name="+", verbose_name=_("visible stations"),
        help_text=_("Used when it does not see all our stations."),
    )
    field_renames = models.JSONField(
        _("field-name variants"), default=dict, blank=True,
        help_text=_('Standard name → this partner\'s name, e.g. {"TotalSeviceMoney": '
                    '"TotalServiceMoney"}; applied both ways.'),
    )
    status_interval_s = models.PositiveIntegerField(
        _("charge status push interval (s)"), default=50,
        help_text=_("How often notification_equip_charge_status is pushed while charging."),
    )
    token_ttl_s = models.PositiveIntegerField(_("token lifetime (s)"), default=7200)
    credit_yuan = models.DecimalField(
        _("credit per order (yuan)"), max_digits=8, decimal_places=2, default=Decimal("200.00"),
        help_text=_("What a pile may spend on one order of this partner's drivers."),
    )
    charge_while_owing = models.BooleanField(
        _("charge while owing"), default=True,
        help_text=_("Whether its drivers may start while the partner owes us money (欠费)."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    # The token the partner issued to us (cached until shortly before it expires).
    out_token = EncryptedTextField(_("our access token"), blank=True)
    out_token_expires_at = models.DateTimeField(_("our token expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("interconnection partner")
        verbose_name_plural = _("interconnection partners")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.operator_id})"

    @property
    def inbound(self) -> Secrets:
        return Secrets(self.in_data_secret, self.in_data_iv, self.in_sig_secret,
                       self.in_operator_secret)

    @property
    def outbound(self) -> Secrets:
        return Secrets(self.out_data_secret, self.out_data_iv, self.out_sig_secret,
                       self.out_operator_secret)

    def url(self, interface: str) -> str:
        prefix = "/" + self.path_prefix.strip("/") + "/" if self.path_prefix.strip("/") else "/"
        return self.base_url.rstrip("/") + prefix + interface

    def rename_out(self, data):
        """``data`` with the standard's keys renamed to this partner's variants (deep)."""
        return _rename(data, self.field_renames or {})

    def rename_in(self, data):
        """``data`` with this partner's key variants renamed back to the standard's."""
        return _rename(data, {v: k for k, v in (self.field_renames or {}).items()})


def _rename(data, names: dict):
    if not names:
        return data
    if isinstance(data, dict):
        return {names.get(k, k): _rename(v, names) for k, v in data.items()}
    if isinstance(data, list):
        return [_rename(v, names) for v in data]
    return data


class IssuedToken(models.Model):
    """An access token we issued to a partner (its SHA-256; the token itself is not kept)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("issued access token")
        verbose_name_plural = _("issued access tokens")

    def __str__(self) -> str:
        return f"{self.partner_id} {self.expires_at:%Y-%m-%d %H:%M}"


class Push(models.Model):
    """One message to a partner: queued, sent (with retries), confirmed, or dead."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        DONE = "done", _("Confirmed")
        DEAD = "dead", _("Failed (dead letter)")

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="pushes", verbose_name=_("partner")
    )
    interface = models.CharField(_("interface"), max_length=60)
    key = models.CharField(
        _("message key"), max_length=120,
        help_text=_("What the message is about; one message per key and partner."),
    )
    # The business JSON as sent (codec.dumps: numbers keep their decimal places).
    payload = models.TextField(_("business data"))
    state = models.CharField(
        _("state"), max_length=8, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now, db_index=True)
    last_ret = models.IntegerField(_("last Ret"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    last_request = models.TextField(_("last request"), blank=True)
    last_response = models.TextField(_("last response"), blank=True)
    result = models.JSONField(_("partner's answer"), null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)
    done_at = models.DateTimeField(_("confirmed"), null=True, blank=True)

    class Meta:
        verbose_name = _("CEC push")
        verbose_name_plural = _("CEC pushes")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "key"], name="cec_push_key_per_partner"),
        ]

    def __str__(self) -> str:
        return f"{self.interface} {self.key}"

    def data(self):
        """The business object (numbers with a fraction as Decimal)."""
        return json.loads(self.payload, parse_float=Decimal)
