"""The operator's estate: stations, piles, connectors, faults. Tenant schema.

Field meanings follow T/CEC 102-2016 §5 (StationInfo, EquipmentInfo, ConnectorInfo) where a
field has a CEC meaning; enum values are the CEC codes. Coordinates are GCJ-02 degrees.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from evplatform.singleton import SingletonModel
from tenants.models import validate_time_zone

from .generation import TrackedQuerySet

pile_code_validator = RegexValidator(r"^\d{14}$", _("A pile code is 14 digits."))
area_code_validator = RegexValidator(r"^\d{6}$", _("A GB/T 2260 area code is 6 digits."))


def networks_parse(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``Station.pile_networks`` as networks: one address or CIDR per line (or separated
    by commas/spaces); a bare address is a /32 (/128). Raises ValueError on a bad entry."""
    return [ipaddress.ip_network(item, strict=False)
            for item in text.replace(",", " ").split() if item]


def validate_networks(text: str) -> None:
    try:
        networks_parse(text)
    except ValueError as exc:
        raise ValidationError(_("Not an address or network: %(error)s"), params={"error": exc}) from None


class PowerSharing(models.TextChoices):
    """How a station's power limit is shared among its sessions (``charging.services.power``)."""

    EQUAL = "equal", _("Equal shares")
    PRIORITY = "priority", _("By priority")


class Station(models.Model):
    """A charging station (充电站). CEC StationInfo."""

    class Type(models.IntegerChoices):  # CEC StationType
        PUBLIC = 1, _("Public")
        PERSONAL = 50, _("Personal")
        BUS = 100, _("Bus (dedicated)")
        SANITATION = 101, _("Sanitation (dedicated)")
        LOGISTICS = 102, _("Logistics (dedicated)")
        TAXI = 103, _("Taxi (dedicated)")
        OTHER = 255, _("Other")

    class Status(models.IntegerChoices):  # CEC StationStatus
        UNKNOWN = 0, _("Unknown")
        BUILDING = 1, _("Under construction")
        CLOSED = 5, _("Closed")
        MAINTENANCE = 6, _("Under maintenance")
        OPERATING = 50, _("Operating")

    name = models.CharField(_("name"), max_length=100)
    code = models.CharField(_("station code"), max_length=20, unique=True)
    address = models.CharField(_("address"), max_length=200)
    province = models.CharField(_("province"), max_length=30, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True, db_index=True)
    district = models.CharField(_("district"), max_length=30, blank=True)
    area_code = models.CharField(
        _("area code (GB/T 2260)"), max_length=6, validators=[area_code_validator]
    )
    latitude = models.DecimalField(
        _("latitude (GCJ-02)"),
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        _("longitude (GCJ-02)"),
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    station_type = models.PositiveSmallIntegerField(
        _("station type"), choices=Type.choices, default=Type.PUBLIC
    )
    status = models.PositiveSmallIntegerField(
        _("status"), choices=Status.choices, default=Status.OPERATING, db_index=True
    )
    opening_hours = models.CharField(_("opening hours"), max_length=100, default="00:00-24:00")
    phone = models.CharField(_("service phone"), max_length=30, blank=True)
    parking_fee_note = models.CharField(_("parking fee"), max_length=200, blank=True)
    facilities = models.JSONField(
        _("service facilities"), default=list, blank=True, help_text=_("A list of labels.")
    )
    photos = models.JSONField(_("photos"), default=list, blank=True, help_text=_("Image URLs."))
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone]
    )
    pile_networks = models.TextField(
        _("pile source networks"), blank=True, default="", db_default="",
        validators=[validate_networks],
        help_text=_("Addresses or networks (CIDR, e.g. 10.8.0.0/16) the station's piles may "
                    "connect from, one per line. Empty: any address."),
    )
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("station owners"),
        related_name="owned_stations",
        blank=True,
    )
    # Today's price per half-hour slot, written by billing whenever the station's tariff
    # or the day changes: {"date": "YYYY-MM-DD", "slots": [48 × "total yuan/kWh"],
    # "periods": [{"start": "HH:MM", "end": "HH:MM", "period", "electricity", "service"}]}.
    # Kept here so station search can sort and filter by price in SQL.
    price_today = models.JSONField(_("today's prices"), null=True, blank=True, editable=False)
    # Load management: the grid connection's limit, shared among the running sessions.
    max_power_kw = models.DecimalField(
        _("power limit (kW)"), max_digits=8, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("1"))],
        help_text=_("The station's grid connection. Empty: no limit. With a limit, the "
                    "platform shares it among the sessions and caps each pile."),
    )
    power_sharing = models.CharField(
        _("power sharing"), max_length=10, choices=PowerSharing.choices,
        default=PowerSharing.EQUAL,
        help_text=_("How the power limit is shared: equally among the piles charging, or "
                    "by priority (SVIP members, fleet vehicles and drivers leaving soon get "
                    "more; the weights are in the charging policy)."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = TrackedQuerySet.as_manager()  # bulk writes invalidate the search snapshot

    class Meta:
        verbose_name = _("station")
        verbose_name_plural = _("stations")
        ordering = ["name"]
        indexes = [models.Index(fields=["latitude", "longitude"], name="station_latlng")]

    def __str__(self) -> str:
        return self.name


class Pile(models.Model):
    """A charging pile (充电桩), identified platform-wide by its 14-digit code. CEC EquipmentInfo."""

    class Protocol(models.TextChoices):
        YKC = "ykc", _("YKC v1.6")
        OCPP = "ocpp", _("OCPP 1.6J")

    class CurrentType(models.IntegerChoices):  # CEC EquipmentType
        DC = 1, _("DC")
        AC = 2, _("AC")
        HYBRID = 3, _("AC/DC")

    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, related_name="piles", verbose_name=_("station")
    )
    code = models.CharField(
        _("pile code"), max_length=14, unique=True, validators=[pile_code_validator]
    )
    name = models.CharField(_("name"), max_length=50, blank=True)
    protocol = models.CharField(
        _("protocol"), max_length=8, choices=Protocol.choices, default=Protocol.YKC
    )
    vendor = models.CharField(_("vendor"), max_length=50, blank=True)
    model = models.CharField(_("model"), max_length=50, blank=True)
    current_type = models.PositiveSmallIntegerField(
        _("AC/DC"), choices=CurrentType.choices, default=CurrentType.DC
    )
    rated_power_kw = models.DecimalField(_("rated power (kW)"), max_digits=7, decimal_places=1)
    connector_count = models.PositiveSmallIntegerField(
        _("connectors"), default=1, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    firmware_version = models.CharField(_("firmware"), max_length=50, blank=True)
    iccid = models.CharField(_("SIM ICCID"), max_length=22, blank=True)
    network = models.CharField(_("network"), max_length=20, blank=True)
    ocpp_password = models.CharField(
        _("OCPP password (hashed)"), max_length=128, blank=True,
        help_text=_("OCPP security profile 1: the pile's HTTP Basic password, stored hashed. "
                    "Empty: no password asked."),
    )
    heartbeat_interval_s = models.PositiveSmallIntegerField(
        _("heartbeat interval (s)"), default=10
    )
    online = models.BooleanField(_("online"), default=False, db_index=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    # Load management: the cap the pile last acknowledged (None: none sent, full rating).
    power_cap_kw = models.DecimalField(
        _("power cap (kW)"), max_digits=7, decimal_places=1, null=True, blank=True,
        editable=False,
    )
    power_cap_at = models.DateTimeField(_("power cap set"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = TrackedQuerySet.as_manager()  # bulk writes invalidate the search snapshot

    class Meta:
        verbose_name = _("pile")
        verbose_name_plural = _("piles")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code

    def ocpp_password_set(self, raw: str) -> None:
        """Store the OCPP Basic-auth password hashed (empty: no password asked); not saved."""
        from django.contrib.auth.hashers import make_password

        self.ocpp_password = make_password(raw) if raw else ""

    def clean(self) -> None:
        """Refuse a pile code that another operator has registered (public registry)."""
        from .registry import registry_check

        super().clean()
        if self.code:
            registry_check(code=self.code)


class Connector(models.Model):
    """A connector or gun (枪) of a pile, numbered from 1. CEC ConnectorInfo."""

    class Type(models.IntegerChoices):  # CEC ConnectorType
        HOUSEHOLD = 1, _("Household socket")
        AC_SOCKET = 2, _("AC socket (GB/T)")
        AC_PLUG = 3, _("AC plug (GB/T)")
        DC = 4, _("DC gun (GB/T)")
        WIRELESS = 5, _("Wireless")
        OTHER = 6, _("Other")

    class Status(models.TextChoices):
        OFFLINE = "offline", _("Offline")
        FAULT = "fault", _("Fault")
        IDLE = "idle", _("Idle")
        PLUGGED = "plugged", _("Plugged in")
        CHARGING = "charging", _("Charging")
        FINISHING = "finishing", _("Finishing")
        RESERVED = "reserved", _("Reserved")

    pile = models.ForeignKey(
        Pile, on_delete=models.CASCADE, related_name="connectors", verbose_name=_("pile")
    )
    number = models.PositiveSmallIntegerField(
        _("number"), validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    connector_type = models.PositiveSmallIntegerField(
        _("connector type"), choices=Type.choices, default=Type.DC
    )
    rated_power_kw = models.DecimalField(_("rated power (kW)"), max_digits=7, decimal_places=1)
    rated_voltage_v = models.PositiveIntegerField(_("rated voltage (V)"), default=750)
    rated_current_a = models.PositiveIntegerField(_("rated current (A)"), default=250)
    # The value a printed label encodes; blank means "the connector code" (filled on clean).
    # Kept when the pile's code changes so labels already on the piles keep working.
    qr_code = models.CharField(
        _("QR code value"),
        max_length=64,
        unique=True,
        blank=True,
        help_text=_("Leave empty to use the connector code (pile code + 2-digit number)."),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.OFFLINE, db_index=True
    )
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)

    objects = TrackedQuerySet.as_manager()  # bulk writes invalidate the search snapshot

    class Meta:
        verbose_name = _("connector")
        verbose_name_plural = _("connectors")
        ordering = ["pile", "number"]
        constraints = [
            models.UniqueConstraint(fields=["pile", "number"], name="connector_pile_number")
        ]

    def __str__(self) -> str:
        return f"{self.pile.code}-{self.number:02d}"

    def save(self, *args, **kwargs) -> None:
        if not self.qr_code:  # also for inline forms, where clean ran before the pile existed
            self.qr_code = self.code
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if not self.qr_code and self.pile_id and self.number:
            self.qr_code = self.code

    @property
    def code(self) -> str:
        """The connector's platform-wide code: pile code + 2-digit number (YKC 枪号)."""
        return f"{self.pile.code}{self.number:02d}"

    @property
    def current_kind(self) -> str:
        """``"dc"`` for a DC gun, ``"ac"`` for every other type (search's ``type``)."""
        return "dc" if self.connector_type == self.Type.DC else "ac"


class Fault(models.Model):
    """A fault or alarm of a pile or one connector; open until ``cleared_at``."""

    class Source(models.TextChoices):
        OFFLINE = "offline", _("No heartbeat")
        PILE = "pile", _("Reported by the pile")
        PLATFORM = "platform", _("Raised by the platform")

    pile = models.ForeignKey(
        Pile, on_delete=models.CASCADE, related_name="faults", verbose_name=_("pile")
    )
    connector = models.ForeignKey(
        Connector,
        on_delete=models.CASCADE,
        related_name="faults",
        null=True,
        blank=True,
        verbose_name=_("connector"),
    )
    class Severity(models.TextChoices):
        CRITICAL = "critical", _("Critical")
        MAJOR = "major", _("Major")
        MINOR = "minor", _("Minor")

    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    code = models.CharField(_("code"), max_length=32)
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.MAJOR, db_index=True
    )
    protocol_code = models.CharField(
        _("protocol code"), max_length=40, blank=True, help_text=_("The pile's own code, as it sent it.")
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    started_at = models.DateTimeField(_("started"))
    last_seen_at = models.DateTimeField(_("last reported"), null=True, blank=True)
    cleared_at = models.DateTimeField(_("cleared"), null=True, blank=True)

    class Meta:
        verbose_name = _("fault")
        verbose_name_plural = _("faults")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["pile", "cleared_at"], name="fault_pile_open")]

    def __str__(self) -> str:
        return f"{self.pile.code} {self.code}"


class OperatorSettings(SingletonModel):
    """This operator's settings for stations (one row; ``OperatorSettings.load()``).

    QR labels: by default a label encodes an ordinary link, ``qr_link_template`` with
    ``{host}`` (the operator's primary admin host) and ``{code}`` (connector code); the
    mini-program claims links under that prefix ("scan an ordinary QR code to open the
    mini-program" in the WeChat console). With ``use_wxacode`` on, labels carry a
    mini-program code from WeChat ``getwxacodeunlimit`` for page ``wxacode_page`` with
    ``scene`` = the connector code (needs the operator's real mini-program credentials).
    """

    qr_link_template = models.CharField(
        _("QR link template"),
        max_length=200,
        default="https://{host}/q/{code}",
        help_text=_("{host} is this operator's host, {code} the connector code."),
    )
    use_wxacode = models.BooleanField(
        _("use mini-program codes"),
        default=False,
        help_text=_("Print WeChat mini-program codes (getwxacodeunlimit) instead of plain QR codes."),
    )
    wxacode_page = models.CharField(
        _("mini-program page"),
        max_length=100,
        default="pages/charge/index",
        help_text=_("Page opened by a mini-program code; the connector code is its scene."),
    )

    class Meta:
        verbose_name = _("station settings")
        verbose_name_plural = _("station settings")

    def __str__(self) -> str:
        return str(_("Station settings"))



class PartnerStation(models.Model):
    """A station of an interconnection partner (its piles, where our members may charge),
    as the partner platform describes it (T/CEC ``query_stations_info``), shown in our
    station search marked as a partner station. ``partner`` is the partner platform's
    OperatorID; ``our_operator_id`` ours at that partner (the prefix of the StartChargeSeq
    we send it). Written only by ``stations.services.partner_stations_save``."""

    partner = models.CharField(_("partner platform"), max_length=9, db_index=True)
    partner_name = models.CharField(_("partner"), max_length=100)
    our_operator_id = models.CharField(_("our OperatorID at the partner"), max_length=9)
    station_id = models.CharField(_("partner's station ID"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=200, blank=True)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    status = models.PositiveSmallIntegerField(_("status"), choices=Station.Status.choices, default=0)
    price_note = models.CharField(_("prices"), max_length=256, blank=True)
    opening_hours = models.CharField(_("opening hours"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    pulled_at = models.DateTimeField(_("pulled"))

    objects = TrackedQuerySet.as_manager()  # bulk writes invalidate the search snapshot

    class Meta:
        verbose_name = _("partner station")
        verbose_name_plural = _("partner stations")
        ordering = ["partner", "name"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "station_id"], name="partner_station_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class PartnerConnector(models.Model):
    """A connector of a partner's station with its live status (the platform's connector
    status words, mapped from the partner's codes at the protocol's edge); power kW."""

    station = models.ForeignKey(
        PartnerStation, on_delete=models.CASCADE, related_name="connectors", verbose_name=_("station")
    )
    partner = models.CharField(_("partner platform"), max_length=9)
    connector_id = models.CharField(_("partner's connector ID"), max_length=50)
    equipment_id = models.CharField(_("partner's pile ID"), max_length=50, blank=True)
    connector_type = models.PositiveSmallIntegerField(
        _("connector type"), choices=Connector.Type.choices, default=Connector.Type.OTHER
    )
    power_kw = models.DecimalField(_("power (kW)"), max_digits=7, decimal_places=1, default=Decimal("0"))
    status = models.CharField(
        _("status"), max_length=10, choices=Connector.Status.choices, default=Connector.Status.OFFLINE
    )
    status_at = models.DateTimeField(_("status since"), null=True, blank=True)

    class Meta:
        verbose_name = _("partner connector")
        verbose_name_plural = _("partner connectors")
        ordering = ["connector_id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "connector_id"], name="partner_connector_unique"),
        ]

    def __str__(self) -> str:
        return self.connector_id


def _firmware_path(instance: Firmware, filename: str) -> str:
    """``firmware/{token[:16]}.bin``: short (YKC 0x94's file path is 32 ASCII bytes) and
    unguessable; the uploaded name is kept in ``file_name``."""
    return f"firmware/{instance.token[:16]}.bin"


class Firmware(models.Model):
    """A firmware image staff uploaded; the platform hosts it for piles to download
    (``/firmware/{token}``, no login: the token is the secret)."""

    name = models.CharField(_("name"), max_length=100)
    version = models.CharField(_("version"), max_length=40)
    protocol = models.CharField(_("protocol"), max_length=8, choices=Pile.Protocol.choices,
                                default=Pile.Protocol.YKC)
    file = models.FileField(_("file"), upload_to=_firmware_path, max_length=200)
    file_name = models.CharField(_("uploaded file name"), max_length=200, blank=True)
    size_bytes = models.PositiveIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    token = models.CharField(_("download token"), max_length=64, unique=True, editable=False)
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("firmware image")
        verbose_name_plural = _("firmware images")
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class FirmwareUpdate(models.Model):
    """One firmware update sent to a pile and its progress as the pile reports it (OCPP
    FirmwareStatusNotification; YKC 0x93 远程更新应答)."""

    class Status(models.TextChoices):
        SENT = "sent", _("sent to the pile")
        FAILED_TO_SEND = "not_sent", _("not sent")
        ACCEPTED = "accepted", _("accepted by the pile")
        DOWNLOADING = "downloading", _("downloading")
        DOWNLOADED = "downloaded", _("downloaded")
        DOWNLOAD_FAILED = "download_failed", _("download failed")
        INSTALLING = "installing", _("installing")
        INSTALLED = "installed", _("installed")
        INSTALLATION_FAILED = "installation_failed", _("installation failed")
        REFUSED = "refused", _("refused by the pile")

    pile = models.ForeignKey(Pile, on_delete=models.CASCADE, related_name="firmware_updates",
                             verbose_name=_("pile"))
    firmware = models.ForeignKey(Firmware, on_delete=models.PROTECT, related_name="updates",
                                 verbose_name=_("firmware image"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.SENT)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    requested_by = models.CharField(_("requested by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("firmware update")
        verbose_name_plural = _("firmware updates")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.pile.code} → {self.firmware}"
