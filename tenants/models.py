"""Operators (tenants), their hosts, mini-programs and the public routing registries.

Public schema only. Nothing here may reference a tenant schema's tables (Citus
schema-based sharding, ARCHITECTURE.md "Scale").
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from evplatform.crypto import EncryptedTextField

slug_validator = RegexValidator(
    r"^[a-z][a-z0-9-]{1,40}$",
    _("Lower-case letters, digits and hyphens, starting with a letter (2–41 characters)."),
)


color_validator = RegexValidator(r"^#[0-9A-Fa-f]{6}$", _("A colour as #RRGGBB."))


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # scans the tz database: ~20 ms a call


def validate_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value})


class Operator(TenantMixin):
    """A charging operator: one tenant with its own PostgreSQL schema."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(_("name"), max_length=100)
    slug = models.CharField(_("slug"), max_length=41, unique=True, validators=[slug_validator])
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone]
    )
    contact_name = models.CharField(_("contact name"), max_length=50, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    commission_percent = models.DecimalField(
        _("platform commission (%)"), max_digits=5, decimal_places=2, default=0,
        help_text=_("The platform's commission on each order's split base, set by the super admin."),
    )
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    # WeChat Pay service-provider mode (服务商模式): the operator is a sub-merchant (特约商户)
    # of the platform's service-provider account (ServiceProvider); its payments are made
    # through the partner APIs with sub_mchid, and the platform's commission on
    # pay-per-order payments is taken by service-provider profit sharing.
    wechatpay_partner_mode = models.BooleanField(
        _("service-provider mode"), default=False,
        help_text=_("Take WeChat Pay payments as a sub-merchant of the platform's service-provider "
                    "account instead of the operator's own merchant."),
    )
    wechatpay_sub_mchid = models.CharField(
        _("sub-merchant id (sub_mchid)"), max_length=32, blank=True,
        validators=[RegexValidator(r"^\d{6,32}$", _("Digits only."))],
        help_text=_("The operator's sub-merchant id under the platform's service-provider account."),
    )
    # Branding of the drivers' app (H5 at /m/ and the mini-program's ext.json).
    brand_color = models.CharField(
        _("theme colour"), max_length=7, default="#1AAD6B", validators=[color_validator],
        help_text=_("The drivers' app's main colour, #RRGGBB."),
    )
    logo = models.ImageField(
        _("logo"), upload_to="operator-logos/", blank=True,
        help_text=_("Square image shown in the drivers' app (PNG or JPEG)."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        verbose_name = _("operator")
        verbose_name_plural = _("operators")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self) -> None:
        super().clean()
        if self.wechatpay_partner_mode and not self.wechatpay_sub_mchid:
            raise ValidationError({"wechatpay_sub_mchid": _(
                "Service-provider mode needs the operator's sub-merchant id (sub_mchid).")})
        if self.wechatpay_partner_mode:
            sp = ServiceProvider.current()
            if sp is None or not sp.pay_configured:
                raise ValidationError({"wechatpay_partner_mode": _(
                    "Set up the platform's WeChat Pay service-provider account first.")})


class Domain(DomainMixin):
    """A hostname routed to an operator (its admin console)."""

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")


class MiniProgram(models.Model):
    """One of an operator's WeChat mini-programs (an operator may run several brands) and
    its WeChat Pay (APIv3) merchant. Requests name the operator by the appid.

    Secrets (app secret, APIv3 key, merchant private key) are encrypted at rest with
    FIELD_ENCRYPTION_KEY and never shown whole (see ``evplatform.crypto.mask``).
    """

    class Authorization(models.TextChoices):
        NONE = "none", _("Not authorised")
        AUTHORIZED = "authorized", _("Authorised")
        REVOKED = "revoked", _("Authorisation revoked")

    class AuditStatus(models.TextChoices):
        NONE = "", _("—")
        AUDITING = "auditing", _("Under audit")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        RELEASED = "released", _("Published")

    operator = models.ForeignKey(
        Operator, on_delete=models.CASCADE, related_name="mini_programs", verbose_name=_("operator")
    )
    appid = models.CharField(_("AppID"), max_length=32, unique=True)
    name = models.CharField(
        _("mini-program name"), max_length=100, blank=True,
        help_text=_("The brand shown to drivers; empty: the operator's name."),
    )
    app_secret = EncryptedTextField(_("AppSecret"), blank=True)
    # WeChat Pay v3 merchant settings
    mchid = models.CharField(_("merchant id (mchid)"), max_length=32, blank=True)
    apiv3_key = EncryptedTextField(_("APIv3 key"), blank=True)
    merchant_cert_serial = models.CharField(
        _("merchant certificate serial"), max_length=64, blank=True
    )
    merchant_private_key = EncryptedTextField(_("merchant private key (PEM)"), blank=True)
    wechatpay_public_key = models.TextField(_("WeChat Pay public key (PEM)"), blank=True)
    wechatpay_public_key_id = models.CharField(
        _("WeChat Pay public key id"), max_length=64, blank=True
    )
    notify_base_url = models.URLField(_("notify base URL"), blank=True)
    # Through the platform's Open Platform third-party platform (tenants.open_platform):
    # authorisation, the authorizer's tokens, and the code's commit → audit → release.
    authorization = models.CharField(
        _("authorisation"), max_length=16, choices=Authorization.choices,
        default=Authorization.NONE,
    )
    authorized_at = models.DateTimeField(_("authorised at"), null=True, blank=True)
    authorizer_access_token = EncryptedTextField(_("authorizer access token"), blank=True)
    authorizer_refresh_token = EncryptedTextField(_("authorizer refresh token"), blank=True)
    authorizer_token_expires_at = models.DateTimeField(
        _("authorizer token expires"), null=True, blank=True
    )
    committed_template = models.ForeignKey(
        "tenants.CodeTemplate", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("committed template"),
    )
    committed_version = models.CharField(_("committed version"), max_length=64, blank=True)
    committed_at = models.DateTimeField(_("committed at"), null=True, blank=True)
    audit_id = models.BigIntegerField(_("audit id"), null=True, blank=True)
    audit_status = models.CharField(
        _("audit"), max_length=16, choices=AuditStatus.choices, default=AuditStatus.NONE,
        blank=True,
    )
    audit_version = models.CharField(_("version under audit"), max_length=64, blank=True)
    audit_reason = models.TextField(_("audit result reason"), blank=True)
    audit_submitted_at = models.DateTimeField(_("submitted for audit"), null=True, blank=True)
    audit_finished_at = models.DateTimeField(_("audit finished"), null=True, blank=True)
    released_version = models.CharField(_("released version"), max_length=64, blank=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    last_error = models.CharField(_("last WeChat error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    SECRET_FIELDS = ("app_secret", "apiv3_key", "merchant_private_key")

    class Meta:
        verbose_name = _("mini-program")
        verbose_name_plural = _("mini-programs")
        ordering = ["operator", "pk"]

    def __str__(self) -> str:
        return f"{self.appid} ({self.operator})"

    def __repr__(self) -> str:  # never print secrets in logs or tracebacks
        return f"<MiniProgram appid={self.appid} operator_id={self.operator_id}>"

    @property
    def display_name(self) -> str:
        return self.name or self.operator.name

    @property
    def pay_configured(self) -> bool:
        return bool(
            self.mchid
            and self.apiv3_key
            and self.merchant_private_key
            and self.merchant_cert_serial
            and self.wechatpay_public_key
        )


class OpenPlatform(models.Model):
    """The platform's WeChat Open Platform third-party platform (第三方平台): one row.

    WeChat pushes ``component_verify_ticket`` every 10 minutes to the authorisation event URL
    (``/wechat/component/events``); with it and the secret the platform gets its
    ``component_access_token``, and with that acts for every authorised mini-program.
    """

    singleton = models.BooleanField(default=True, unique=True, editable=False)  # one row
    component_appid = models.CharField(_("component AppID"), max_length=32, unique=True)
    component_appsecret = EncryptedTextField(_("component AppSecret"))
    token = EncryptedTextField(_("message verification token"))
    encoding_aes_key = EncryptedTextField(
        _("message encryption key (EncodingAESKey)"), help_text=_("43 characters.")
    )
    verify_ticket = EncryptedTextField(_("component_verify_ticket"), blank=True)
    verify_ticket_at = models.DateTimeField(_("ticket received"), null=True, blank=True)
    access_token = EncryptedTextField(_("component access token"), blank=True)
    access_token_expires_at = models.DateTimeField(_("access token expires"), null=True, blank=True)
    public_base_url = models.URLField(
        _("public base URL"), blank=True,
        help_text=_("HTTPS origin of the platform host WeChat calls back (events, authorisation)."),
    )
    api_base_url = models.URLField(
        _("driver API base URL"), blank=True,
        help_text=_("Origin of the driver API written into every mini-program's ext.json."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    SECRET_FIELDS = ("component_appsecret", "token", "encoding_aes_key")

    class Meta:
        verbose_name = _("third-party platform")
        verbose_name_plural = _("third-party platform")

    def __str__(self) -> str:
        return self.component_appid

    def __repr__(self) -> str:
        return f"<OpenPlatform component_appid={self.component_appid}>"


class ServiceProvider(models.Model):
    """The platform's WeChat Pay service-provider account (服务商): one row. Operators in
    service-provider mode are its sub-merchants (特约商户): their payments are made with its
    keys through the partner APIs (``sp_mchid``/``sp_appid`` + the operator's ``sub_mchid``
    and its mini-program's appid as ``sub_appid``), and the platform's commission is taken by
    service-provider profit sharing to this merchant (a MERCHANT_ID receiver, relation
    SERVICE_PROVIDER).

    Secrets (APIv3 key, private key) are encrypted at rest with FIELD_ENCRYPTION_KEY, like a
    mini-program's merchant secrets.
    """

    singleton = models.BooleanField(default=True, unique=True, editable=False)  # one row
    sp_mchid = models.CharField(
        _("service-provider merchant id (sp_mchid)"), max_length=32,
        validators=[RegexValidator(r"^\d{6,32}$", _("Digits only."))],
    )
    sp_appid = models.CharField(_("service-provider AppID (sp_appid)"), max_length=32)
    merchant_name = models.CharField(
        _("merchant full name"), max_length=100,
        help_text=_("The service provider's registered name: WeChat checks it when the platform "
                    "is added as a profit-sharing receiver."),
    )
    apiv3_key = EncryptedTextField(_("APIv3 key"))
    merchant_cert_serial = models.CharField(_("merchant certificate serial"), max_length=64)
    merchant_private_key = EncryptedTextField(_("merchant private key (PEM)"))
    wechatpay_public_key = models.TextField(_("WeChat Pay public key (PEM)"))
    wechatpay_public_key_id = models.CharField(_("WeChat Pay public key id"), max_length=64)
    commission_by_profit_sharing = models.BooleanField(
        _("take the commission by profit sharing"), default=True,
        help_text=_("For sub-merchants' pay-per-order payments: the platform's commission is split "
                    "to the service provider by WeChat after each order is settled."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    SECRET_FIELDS = ("apiv3_key", "merchant_private_key")

    class Meta:
        verbose_name = _("WeChat Pay service provider")
        verbose_name_plural = _("WeChat Pay service provider")

    def __str__(self) -> str:
        return self.sp_mchid

    def __repr__(self) -> str:  # never print secrets in logs or tracebacks
        return f"<ServiceProvider sp_mchid={self.sp_mchid}>"

    @classmethod
    def current(cls) -> ServiceProvider | None:
        return cls.objects.first()

    @property
    def pay_configured(self) -> bool:
        return bool(
            self.sp_mchid and self.sp_appid and self.apiv3_key and self.merchant_private_key
            and self.merchant_cert_serial and self.wechatpay_public_key and self.wechatpay_public_key_id
        )


class CodeTemplate(models.Model):
    """A version of the drivers' mini-program (the ``mp-weixin`` build) in the third-party
    platform's code template library; committed to each operator's mini-program."""

    template_id = models.PositiveBigIntegerField(_("template id"), unique=True)
    user_version = models.CharField(_("version"), max_length=64)
    user_desc = models.CharField(_("description"), max_length=200, blank=True)
    draft_id = models.PositiveBigIntegerField(_("draft id"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("code template")
        verbose_name_plural = _("code templates")
        ordering = ["-template_id"]

    def __str__(self) -> str:
        return f"{self.user_version} (#{self.template_id})"


class PileRegistration(models.Model):
    """Public registry: which operator a pile code belongs to (piles route by it).

    Kept in step with each operator's ``stations.Pile`` by the stations services; a code
    is unique across the platform.
    """

    code = models.CharField(_("pile code"), max_length=14, unique=True)
    operator = models.ForeignKey(
        Operator, on_delete=models.CASCADE, related_name="pile_registrations", verbose_name=_("operator")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("pile registration")
        verbose_name_plural = _("pile registrations")

    def __str__(self) -> str:
        return f"{self.code} → {self.operator}"


class RefusedPileLogin(models.Model):
    """A pile whose login (YKC 0x01) the gateway refused, one row per pile code.

    Unknown piles have no operator, so this lives in public: the platform admin lists them
    so staff can register the code to the right operator. ``reason`` and ``peer`` are the
    latest attempt's; ``count`` counts every attempt since ``first_seen_at``.
    """

    class Reason(models.TextChoices):
        UNKNOWN = "unknown", _("Pile code not registered")
        NOT_IN_ESTATE = "not_in_estate", _("Registered, but not among the operator's piles")
        PILE_DISABLED = "pile_disabled", _("Pile disabled")
        OPERATOR_SUSPENDED = "operator_suspended", _("Operator suspended")
        WRONG_PROTOCOL = "wrong_protocol", _("Pile registered for another protocol")
        BAD_PASSWORD = "bad_password", _("Missing or wrong password (OCPP)")
        ICCID_MISMATCH = "iccid_mismatch", _("SIM ICCID differs from the bound one")
        ADDRESS_NOT_ALLOWED = "address_refused", _("Address outside the station's networks")
        TAKEOVER = "takeover", _("Pile already connected from another address")

    pile_code = models.CharField(_("pile code"), max_length=14, unique=True)
    operator = models.ForeignKey(
        Operator,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="refused_pile_logins",
        verbose_name=_("operator"),
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    peer = models.CharField(_("peer address"), max_length=64, blank=True)
    firmware_version = models.CharField(_("firmware"), max_length=20, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"))
    count = models.PositiveIntegerField(_("attempts"), default=1)

    class Meta:
        verbose_name = _("refused pile login")
        verbose_name_plural = _("refused pile logins")
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.pile_code} ({self.get_reason_display()})"
