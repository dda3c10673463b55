"""Charging orders, their transitions, the piles' transaction records, reservations.

Tenant schema. Amounts in yuan (2 dp), energy in kWh (4 dp), times in UTC.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from evplatform.singleton import SingletonModel

ZERO = Decimal("0.00")


class OccupancyState(models.TextChoices):
    """How an order's occupancy fee ended: ``charged`` (a follow-up posting on the order),
    ``free`` (the car left within the grace minutes, or the tariff has no fee), ``unreported``
    (the pile never reported the car leaving: nothing charged), ``waived`` (the order was
    rejected in review)."""

    CHARGED = "charged", _("Charged")
    FREE = "free", _("Free")
    UNREPORTED = "unreported", _("Not reported")
    WAIVED = "waived", _("Waived")


class OrderState(models.TextChoices):
    CREATED = "created", _("Created")
    STARTING = "starting", _("Starting")
    CHARGING = "charging", _("Charging")
    STOPPING = "stopping", _("Stopping")
    FINISHED = "finished", _("Finished")
    # Priced but not charged: a suspicious record waits for staff to approve or reject it.
    REVIEW = "review", _("Under review")
    SETTLED = "settled", _("Settled")
    FAILED = "failed", _("Failed")
    ABNORMAL = "abnormal", _("Abnormal")


ACTIVE_STATES = (OrderState.CREATED, OrderState.STARTING, OrderState.CHARGING, OrderState.STOPPING)


class PaymentMode(models.TextChoices):
    WALLET = "wallet", _("Wallet")
    PREPAY = "prepay", _("Pay per order")
    CARD = "card", _("Card / VIN")
    PARTNER = "partner", _("Partner platform")


class StopReason(models.TextChoices):
    """Why a charge ended, in our words (the pile's own code is kept beside it)."""

    DRIVER = "driver", _("Stopped by the driver")
    FULL = "full", _("Battery full or target reached")
    AT_PILE = "at_pile", _("Stopped at the pile")
    BALANCE = "balance", _("Insufficient balance")
    UNPLUGGED = "unplugged", _("Connector unplugged")
    EMERGENCY = "emergency", _("Emergency stop")
    FAULT = "fault", _("Fault")
    PLATFORM = "platform", _("Stopped by the platform")
    START_FAILED = "start_failed", _("Start failed")
    UNKNOWN = "unknown", _("Unknown")


class ChargingOrder(models.Model):
    """One charging session (充电订单), from start request to settlement."""

    number = models.CharField(_("order number"), max_length=32, unique=True)
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="orders",
        null=True,
        blank=True,
        verbose_name=_("member"),
    )
    connector = models.ForeignKey(
        "stations.Connector", on_delete=models.PROTECT, related_name="orders", verbose_name=_("connector")
    )
    pile = models.ForeignKey(
        "stations.Pile", on_delete=models.PROTECT, related_name="orders", verbose_name=_("pile")
    )
    station = models.ForeignKey(
        "stations.Station", on_delete=models.PROTECT, related_name="orders", verbose_name=_("station")
    )
    trade_no = models.CharField(_("pile trade number"), max_length=32, unique=True)
    mode = models.CharField(_("payment mode"), max_length=8, choices=PaymentMode.choices)
    state = models.CharField(
        _("state"), max_length=10, choices=OrderState.choices, default=OrderState.CREATED, db_index=True
    )
    # The tariff version locked at start (billing.TariffVersion id) and its snapshot, which
    # alone prices the order: later tariff edits never re-price it.
    tariff_version_id = models.PositiveIntegerField(_("tariff version"), null=True, blank=True)
    tariff_snapshot = models.JSONField(_("tariff snapshot"), null=True, blank=True)
    prepay_amount = models.DecimalField(
        _("prepaid amount"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    hold_amount = models.DecimalField(_("funds held"), max_digits=10, decimal_places=2, default=ZERO)
    card_no = models.CharField(_("card number"), max_length=20, blank=True)
    vin = models.CharField(_("VIN"), max_length=17, blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    start_deadline = models.DateTimeField(_("start deadline"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    stop_requested_at = models.DateTimeField(_("stop requested"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True)
    last_progress_at = models.DateTimeField(_("last progress"), null=True, blank=True)

    meter_start_kwh = models.DecimalField(
        _("meter start (kWh)"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    meter_stop_kwh = models.DecimalField(
        _("meter stop (kWh)"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4, default=Decimal("0"))
    bill = models.JSONField(_("bill"), null=True, blank=True, help_text=_("Bill lines and totals."))
    progress = models.JSONField(_("latest readings"), default=dict, blank=True)

    electricity_amount = models.DecimalField(_("electricity"), max_digits=10, decimal_places=2, default=ZERO)
    service_amount = models.DecimalField(_("service"), max_digits=10, decimal_places=2, default=ZERO)
    occupancy_amount = models.DecimalField(_("occupancy fee"), max_digits=10, decimal_places=2, default=ZERO)
    discount_amount = models.DecimalField(_("discount"), max_digits=10, decimal_places=2, default=ZERO)
    total_amount = models.DecimalField(_("total"), max_digits=10, decimal_places=2, default=ZERO)
    paid_amount = models.DecimalField(_("paid"), max_digits=10, decimal_places=2, default=ZERO)
    refunded_amount = models.DecimalField(_("refunded"), max_digits=10, decimal_places=2, default=ZERO)
    pile_amount = models.DecimalField(
        _("pile's amount"), max_digits=12, decimal_places=4, null=True, blank=True
    )

    stop_reason = models.CharField(
        _("stop reason"), max_length=14, choices=StopReason.choices, blank=True
    )
    pile_stop_code = models.PositiveSmallIntegerField(_("pile's stop code"), null=True, blank=True)
    soc_start = models.PositiveSmallIntegerField(_("SOC at start (%)"), null=True, blank=True)
    soc_end = models.PositiveSmallIntegerField(_("SOC at end (%)"), null=True, blank=True)

    amount_mismatch = models.BooleanField(_("amount differs from pile"), default=False)
    abnormal = models.BooleanField(_("abnormal"), default=False, db_index=True)
    pile_initiated = models.BooleanField(_("started at the pile"), default=False)
    notified_at = models.DateTimeField(_("member notified"), null=True, blank=True)
    # The remote stop is sent until the pile confirms it or reports the connector idle.
    stop_attempts = models.PositiveSmallIntegerField(_("stop commands sent"), default=0)
    stop_sent_at = models.DateTimeField(_("last stop sent"), null=True, blank=True)
    stop_result = models.CharField(_("last stop result"), max_length=20, blank=True)
    stop_confirmed_at = models.DateTimeField(_("stop confirmed by the pile"), null=True, blank=True)
    review_reason = models.CharField(
        _("needs review"), max_length=500, blank=True,
        help_text=_("Why staff should look at this order (empty: nothing to review)."),
    )
    # Occupancy after charging (占位费, see services.occupancy): when the car left as the
    # pile reported it (the connector idle; or the moment the pile went offline), and how
    # the tariff's fee was settled ("" while the car may still be on the connector).
    unplugged_at = models.DateTimeField(_("unplugged"), null=True, blank=True)
    # The driver's requested departure (for sharing a station's power by priority).
    departure_at = models.DateTimeField(_("requested departure"), null=True, blank=True)
    unplug_basis = models.CharField(
        _("unplug reported by"), max_length=12, blank=True,
        help_text=_("unplugged: the pile reported the connector idle; pile_offline: the pile "
                    "went offline (the fee runs to then)."),
    )
    occupancy_state = models.CharField(
        _("occupancy"), max_length=10, choices=OccupancyState.choices, blank=True, db_index=True
    )
    # The driver app's Idempotency-Key of the start request (a retried POST finds this order).
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, blank=True)
    # An interconnection partner's order (T/CEC query_start_charge): the partner platform's
    # OperatorID and its StartChargeSeq; billed to the partner's receivable, no member.
    partner = models.CharField(_("partner platform"), max_length=9, blank=True, db_index=True)
    partner_seq = models.CharField(_("partner's order number"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("charging order")
        verbose_name_plural = _("charging orders")
        ordering = ["-created_at"]
        constraints = [
            # A member has at most one active order; a connector serves one at a time.
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(state__in=[s.value for s in ACTIVE_STATES]),
                name="order_one_active_per_member",
            ),
            models.UniqueConstraint(
                fields=["connector"],
                condition=models.Q(state__in=[s.value for s in ACTIVE_STATES]),
                name="order_one_active_per_connector",
            ),
            models.UniqueConstraint(
                fields=["member", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="order_idempotency_key_per_member",
            ),
            models.UniqueConstraint(
                fields=["partner", "partner_seq"],
                condition=~models.Q(partner_seq=""),
                name="order_partner_seq_unique",
            ),
        ]
        indexes = [
            # The statistics' day rollups and rebuilds read settled orders by stop time.
            models.Index(fields=["stopped_at"], condition=models.Q(state="settled"),
                         name="order_settled_stopped_at"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class OrderTransition(models.Model):
    """One step of an order's state machine: who, why and when."""

    class Actor(models.TextChoices):
        MEMBER = "member", _("Member")
        STAFF = "staff", _("Staff")
        PILE = "pile", _("Pile")
        SYSTEM = "system", _("System")

    order = models.ForeignKey(
        ChargingOrder, on_delete=models.CASCADE, related_name="transitions", verbose_name=_("order")
    )
    from_state = models.CharField(_("from"), max_length=10, choices=OrderState.choices)
    to_state = models.CharField(_("to"), max_length=10, choices=OrderState.choices)
    actor = models.CharField(_("by"), max_length=8, choices=Actor.choices)
    actor_id = models.CharField(_("by (id)"), max_length=64, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order transition")
        verbose_name_plural = _("order transitions")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_from_state_display()} → {self.get_to_state_display()}"


class Period(models.TextChoices):
    """Tariff periods (尖峰平谷), as ``billing.pricing.Period`` names them."""

    SHARP = "sharp", _("sharp (尖)")
    PEAK = "peak", _("peak (峰)")
    FLAT = "flat", _("flat (平)")
    VALLEY = "valley", _("valley (谷)")
    # A non-standard record's extra price groups (YKC 0x3B of length 0xB2: a fifth group).
    GROUP5 = "group5", _("pile's 5th group")
    GROUP6 = "group6", _("pile's 6th group")
    GROUP7 = "group7", _("pile's 7th group")
    GROUP8 = "group8", _("pile's 8th group")
    GROUP9 = "group9", _("pile's 9th group")


class TransactionRecord(models.Model):
    """A pile's final record of a session (YKC 0x3B, OCPP StopTransaction), stored before the
    pile is acknowledged and exactly once per trade number; settlement reads it as stored.

    Energy in kWh (4 dp), amounts in yuan (2 dp), times UTC. ``stop_reason`` is the pile's
    reason in the platform's words; ``protocol_stop_code`` the protocol's own code (for
    staff). Per-period energy and amount, when the pile splits them, are :class:`RecordPeriod`
    rows (``periods``).
    """

    trade_no = models.CharField(_("trade number"), max_length=32, unique=True)
    pile_code = models.CharField(_("pile code"), max_length=14, db_index=True)
    connector_no = models.PositiveSmallIntegerField(_("connector"))
    started_at = models.DateTimeField(_("started"))
    stopped_at = models.DateTimeField(_("stopped"))
    meter_start_kwh = models.DecimalField(_("meter start (kWh)"), max_digits=14, decimal_places=4)
    meter_stop_kwh = models.DecimalField(_("meter stop (kWh)"), max_digits=14, decimal_places=4)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4)
    pile_amount_yuan = models.DecimalField(
        _("pile's amount (yuan)"), max_digits=12, decimal_places=2, null=True, blank=True,
        help_text=_("Empty when the pile does not price sessions (OCPP)."),
    )
    stop_reason = models.CharField(_("stop reason"), max_length=14, choices=StopReason.choices)
    protocol_stop_code = models.PositiveSmallIntegerField(_("pile's stop code"), null=True, blank=True)
    vin = models.CharField(_("VIN"), max_length=17, blank=True)
    card_no = models.CharField(_("card number"), max_length=20, blank=True)
    raw_hex = models.TextField(_("raw frame (hex)"), blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    duplicates = models.PositiveIntegerField(_("repeats received"), default=0)
    # The tariff version the pile had confirmed holding, and since when (None: never).
    pile_tariff_version = models.PositiveIntegerField(
        _("tariff version on the pile"), null=True, blank=True
    )
    pile_tariff_since = models.DateTimeField(_("held since"), null=True, blank=True)
    order = models.OneToOneField(
        ChargingOrder,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="record",
        verbose_name=_("order"),
    )

    class Meta:
        verbose_name = _("transaction record")
        verbose_name_plural = _("transaction records")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return self.trade_no

    def energy_by_period(self) -> dict[str, Decimal]:
        """Period name → kWh for the periods with energy (empty when the pile did not split)."""
        return {p.period: p.energy_kwh for p in self.periods.all() if p.energy_kwh}


class RecordPeriod(models.Model):
    """One tariff period's share of a transaction record (YKC 0x3B 尖/峰/平/谷 groups)."""

    record = models.ForeignKey(
        TransactionRecord, on_delete=models.CASCADE, related_name="periods", verbose_name=_("record")
    )
    period = models.CharField(_("period"), max_length=6, choices=Period.choices)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4)
    amount_yuan = models.DecimalField(
        _("amount (yuan)"), max_digits=12, decimal_places=2, null=True, blank=True
    )

    class Meta:
        verbose_name = _("record period")
        verbose_name_plural = _("record periods")
        constraints = [
            models.UniqueConstraint(fields=["record", "period"], name="record_period_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_period_display()} {self.energy_kwh} kWh"


class TransactionRecordConflict(models.Model):
    """A retransmitted record whose content differs from the stored one (same trade number).
    The first record stays the one that bills; this copy is kept for staff review."""

    record = models.ForeignKey(
        TransactionRecord, on_delete=models.CASCADE, related_name="conflicts", verbose_name=_("record")
    )
    data = models.JSONField(_("decoded"))
    raw_hex = models.TextField(_("raw frame (hex)"), blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("conflicting record copy")
        verbose_name_plural = _("conflicting record copies")
        ordering = ["received_at"]

    def __str__(self) -> str:
        return f"{self.record.trade_no} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class MeterSample(models.Model):
    """A connector's readings at one moment: kept by the pile gateways every few seconds per
    connector and on every status change, and for an order at the operator's sample
    interval; linked to the order that ran then. Units: V, A, kW, kWh (cumulative for the
    session), yuan, %, minutes. Pricing from meter readings uses an order's samples."""

    order = models.ForeignKey(
        ChargingOrder,
        on_delete=models.CASCADE,
        related_name="samples",
        null=True,
        blank=True,
        verbose_name=_("order"),
    )
    pile_code = models.CharField(_("pile code"), max_length=14)
    connector_no = models.PositiveSmallIntegerField(_("connector"))
    at = models.DateTimeField(_("at"))
    status = models.CharField(_("status"), max_length=12, blank=True)
    trade_no = models.CharField(_("trade number"), max_length=32, blank=True)
    plugged = models.BooleanField(_("plugged in"), null=True)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4)
    amount_yuan = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=4, null=True)
    power_kw = models.DecimalField(_("power (kW)"), max_digits=8, decimal_places=2, null=True)
    voltage_v = models.DecimalField(_("voltage (V)"), max_digits=8, decimal_places=1, null=True)
    current_a = models.DecimalField(_("current (A)"), max_digits=8, decimal_places=1, null=True)
    soc_percent = models.PositiveSmallIntegerField(_("SOC (%)"), null=True)
    elapsed_min = models.PositiveIntegerField(_("charged (min)"), null=True)
    remaining_min = models.PositiveIntegerField(_("remaining (min)"), null=True)
    fault_code = models.CharField(_("fault code"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("meter sample")
        verbose_name_plural = _("meter samples")
        ordering = ["at"]
        indexes = [
            models.Index(fields=["order", "at"], name="sample_order_at"),
            models.Index(fields=["pile_code", "connector_no", "-at"], name="msample_conn_at"),
            models.Index(fields=["trade_no"], name="msample_trade"),
            models.Index(fields=["at"], name="msample_at"),
        ]

    def __str__(self) -> str:
        return f"{self.pile_code}-{self.connector_no:02d} {self.at:%H:%M:%S} {self.energy_kwh} kWh"


class Reservation(models.Model):
    """A member holds a free connector for a while (预约)."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        USED = "used", _("Used")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="reservations", verbose_name=_("member")
    )
    connector = models.ForeignKey(
        "stations.Connector",
        on_delete=models.PROTECT,
        related_name="reservations",
        verbose_name=_("connector"),
    )
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.ACTIVE, db_index=True
    )
    fee = models.DecimalField(_("fee"), max_digits=8, decimal_places=2, default=ZERO)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    order = models.OneToOneField(
        ChargingOrder,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reservation",
        verbose_name=_("order"),
    )

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector"], condition=models.Q(state="active"), name="reservation_one_per_connector"
            ),
            models.UniqueConstraint(
                fields=["member"], condition=models.Q(state="active"), name="reservation_one_per_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connector} ({self.get_state_display()})"


class ChargingPolicy(SingletonModel):
    """The operator's charging rules (one row per operator schema)."""

    start_timeout_s = models.PositiveIntegerField(_("start timeout (s)"), default=60)
    stop_timeout_s = models.PositiveIntegerField(_("record deadline after stop (s)"), default=300)
    progress_timeout_s = models.PositiveIntegerField(
        _("silence before asking the pile (s)"), default=180
    )
    sample_interval_s = models.PositiveIntegerField(_("meter sample interval (s)"), default=60)
    balance_guard_margin = models.DecimalField(
        _("stop when funds left fall below (yuan)"), max_digits=8, decimal_places=2, default=Decimal("1.00")
    )
    reservation_minutes = models.PositiveIntegerField(_("reservation length (min)"), default=15)
    reservation_fee = models.DecimalField(
        _("reservation fee (yuan)"), max_digits=8, decimal_places=2, default=ZERO
    )
    notify_template_id = models.CharField(
        _("subscribe message template (order settled)"), max_length=64, blank=True
    )
    queue_hold_minutes = models.PositiveIntegerField(
        _("queue: minutes to take an offered connector"), default=5,
        validators=[MinValueValidator(1)],
    )
    queue_template_id = models.CharField(
        _("subscribe message template (your connector is free)"), max_length=64, blank=True
    )
    typical_dc_minutes = models.PositiveIntegerField(
        _("typical DC session (min)"), default=45,
        help_text=_("For queue wait estimates when a pile reports no remaining time."),
    )
    typical_ac_minutes = models.PositiveIntegerField(_("typical AC session (min)"), default=240)
    power_floor_percent = models.PositiveSmallIntegerField(
        _("lowest power cap (percent of a pile's rating)"), default=30,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Piles take no lower cap (YKC: 30 percent). A session whose share would fall "
                    "below it is not started."),
    )
    # Sharing by priority (stations whose power_sharing is "priority"): a session's weight
    # is the largest that applies to it, 1 when none does.
    priority_svip_weight = models.DecimalField(
        _("priority weight: SVIP member"), max_digits=4, decimal_places=1, default=Decimal("2.0"),
        validators=[MinValueValidator(Decimal("1"))],
    )
    priority_fleet_weight = models.DecimalField(
        _("priority weight: fleet vehicle"), max_digits=4, decimal_places=1, default=Decimal("2.0"),
        validators=[MinValueValidator(Decimal("1"))],
    )
    priority_departure_weight = models.DecimalField(
        _("priority weight: leaving soon"), max_digits=4, decimal_places=1, default=Decimal("3.0"),
        validators=[MinValueValidator(Decimal("1"))],
        help_text=_("For a driver whose requested departure is within the window below."),
    )
    priority_departure_minutes = models.PositiveIntegerField(
        _("leaving soon: within (min)"), default=60,
    )

    class Meta:
        verbose_name = _("charging policy")
        verbose_name_plural = _("charging policy")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    @classmethod
    def current(cls) -> ChargingPolicy:
        return cls.load()


class QueueEntry(models.Model):
    """A driver waiting at a full station (排队) for a connector of a kind (AC, DC or any).

    Waiting entries are served first come, first served. When a connector of the kind frees,
    the first one is *offered* it: the offer is a :class:`Reservation` of
    ``ChargingPolicy.queue_hold_minutes`` (the one rule for who may start on a connector);
    the driver starts on it (``served``), declines or lets it expire (``passed``: a no-show
    leaves the queue) and the next one is offered it.
    """

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Offered a connector")
        SERVED = "served", _("Started charging")
        PASSED = "passed", _("Passed (declined or no-show)")
        CANCELLED = "cancelled", _("Cancelled")

    class Kind(models.TextChoices):
        ANY = "", _("Any connector")
        AC = "ac", _("AC")
        DC = "dc", _("DC")

    OPEN = (State.WAITING, State.OFFERED)

    station = models.ForeignKey(
        "stations.Station", on_delete=models.CASCADE, related_name="queue_entries",
        verbose_name=_("station"),
    )
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="queue_entries",
        verbose_name=_("member"),
    )
    kind = models.CharField(_("connector kind"), max_length=2, choices=Kind.choices, blank=True,
                            default=Kind.ANY)
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.WAITING, db_index=True)
    joined_at = models.DateTimeField(_("joined"), db_index=True)
    offered_at = models.DateTimeField(_("offered"), null=True, blank=True)
    reservation = models.OneToOneField(
        Reservation, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="queue_entry", verbose_name=_("offer"),
    )
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("why it ended"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("queue entry")
        verbose_name_plural = _("queue")
        ordering = ["joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["member"], condition=models.Q(state__in=["waiting", "offered"]),
                name="queue_one_open_per_member",
            ),
        ]
        indexes = [models.Index(fields=["station", "state", "joined_at"], name="queue_station_open")]

    def __str__(self) -> str:
        return f"{self.station} · {self.member} ({self.get_state_display()})"


class PowerPlan(models.Model):
    """One re-plan of a station's power limit: what each pile was given and what it
    acknowledged. ``caps``: [{"pile", "order", "cap_kw", "sent", "ok", "error",
    "applied_kw"}]; ``assumed_kw`` the power counted for piles that did not answer (their
    last acknowledged cap, else their rating)."""

    station = models.ForeignKey(
        "stations.Station", on_delete=models.CASCADE, related_name="power_plans",
        verbose_name=_("station"),
    )
    at = models.DateTimeField(_("planned"), db_index=True)
    reason = models.CharField(_("reason"), max_length=100, blank=True)
    limit_kw = models.DecimalField(_("limit (kW)"), max_digits=8, decimal_places=1)
    total_kw = models.DecimalField(_("caps, total (kW)"), max_digits=8, decimal_places=1)
    assumed_kw = models.DecimalField(_("unanswered piles (kW)"), max_digits=8, decimal_places=1,
                                     default=ZERO)
    caps = models.JSONField(_("caps"), default=list)
    unserved = models.JSONField(_("not served"), default=list)

    class Meta:
        verbose_name = _("power plan")
        verbose_name_plural = _("power plans")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.station} {self.at:%Y-%m-%d %H:%M:%S} {self.total_kw}/{self.limit_kw} kW"


class MemberCredential(models.Model):
    """A charging card or a car's VIN bound to a member, for starts at the pile (YKC 0x31)."""

    class Kind(models.TextChoices):
        CARD = "card", _("Card")
        VIN = "vin", _("VIN")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="credentials", verbose_name=_("member")
    )
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices)
    value = models.CharField(_("card number or VIN"), max_length=20)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("card or VIN")
        verbose_name_plural = _("cards and VINs")
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="credential_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}"


class RoamingOrder(models.Model):
    """Our member's charge on an interconnection partner's pile (T/CEC, we are the
    customer-owning operator): started and stopped through the partner's platform, followed
    by its notifications, billed once to the member's wallet from the partner's final order.

    ``seq`` is our StartChargeSeq (our OperatorID at the partner + 18 digits). Money yuan
    (2 dp), energy kWh, times UTC. The member's balance is held at start and the hold is
    consumed when the partner's bill arrives (or released when the start fails).
    """

    class State(models.TextChoices):
        STARTING = "starting", _("Starting")
        CHARGING = "charging", _("Charging")
        STOPPING = "stopping", _("Stopping")
        FINISHED = "finished", _("Finished, waiting for the partner's bill")
        SETTLED = "settled", _("Settled")
        FAILED = "failed", _("Failed")

    number = models.CharField(_("order number"), max_length=32, unique=True)
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="roaming_orders",
        verbose_name=_("member"),
    )
    partner = models.CharField(_("partner platform"), max_length=9, db_index=True)
    partner_name = models.CharField(_("partner"), max_length=100, blank=True)
    seq = models.CharField(_("StartChargeSeq"), max_length=27, unique=True)
    connector = models.ForeignKey(
        "stations.PartnerConnector", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("partner connector"),
    )
    connector_code = models.CharField(_("partner's connector ID"), max_length=50)
    station_name = models.CharField(_("station"), max_length=100, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.STARTING, db_index=True
    )
    hold_amount = models.DecimalField(_("funds held"), max_digits=10, decimal_places=2, default=ZERO)
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4, default=Decimal("0"))
    electricity_amount = models.DecimalField(_("electricity"), max_digits=10, decimal_places=2, default=ZERO)
    service_amount = models.DecimalField(_("service"), max_digits=10, decimal_places=2, default=ZERO)
    total_amount = models.DecimalField(_("total"), max_digits=10, decimal_places=2, default=ZERO)
    paid_amount = models.DecimalField(_("paid"), max_digits=10, decimal_places=2, default=ZERO)
    soc_percent = models.PositiveSmallIntegerField(_("SOC (%)"), null=True, blank=True)
    fail_reason = models.SmallIntegerField(
        _("partner's FailReason"), null=True, blank=True,
        help_text=_("-1: the partner could not be reached."),
    )
    stop_reason = models.PositiveSmallIntegerField(_("partner's StopReason"), null=True, blank=True)
    bill = models.JSONField(_("partner's final order"), null=True, blank=True)
    # The partner's bill lines as the member sees them: [{"start", "end": ISO 8601 UTC or
    # null, "energy_kwh", "electricity_price", "service_price": decimal text as the partner
    # sent them, "electricity_yuan", "service_yuan": yuan, 2 dp}] (charging.roaming).
    bill_lines = models.JSONField(_("bill lines"), default=list, blank=True)
    dispute = models.CharField(
        _("reconciliation"), max_length=120, blank=True,
        help_text=_("What the partner's daily reconciliation disagreed on (empty: nothing)."),
    )
    reconciled_at = models.DateTimeField(_("reconciled"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    stop_requested_at = models.DateTimeField(_("stop requested"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True, db_index=True)
    last_progress_at = models.DateTimeField(_("last progress"), null=True, blank=True)

    class Meta:
        verbose_name = _("order on a partner's pile")
        verbose_name_plural = _("orders on partners' piles")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number


ROAMING_ACTIVE = (RoamingOrder.State.STARTING, RoamingOrder.State.CHARGING, RoamingOrder.State.STOPPING)
