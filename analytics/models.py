"""Aggregates of settled charging orders, members and faults (tenant schema).

Every figure the dashboards, reports and the big screen show is read from these tables,
never from raw orders. An order counts in the hour and the day (operator's local time) in
which it stopped; ``hour`` is the UTC instant the local hour starts. Amounts in yuan (2 dp),
energy in kWh (4 dp), power in kW, times in seconds. Rows are rebuilt, never incremented:
the per-order update and ``stats_rebuild`` recompute a whole connector-day (or day) from the
source rows, so running either twice gives the same rows.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0")
PERIODS = ("sharp", "peak", "flat", "valley")


def _kwh(label):
    return models.DecimalField(label, max_digits=14, decimal_places=4, default=ZERO)


def _yuan(label):
    return models.DecimalField(label, max_digits=14, decimal_places=2, default=ZERO)


class Figures(models.Model):
    """The order-derived sums every aggregate row carries (connector hour and day, station
    day)."""

    orders = models.PositiveIntegerField(_("orders"), default=0)
    energy_kwh = _kwh(_("energy (kWh)"))
    energy_sharp_kwh = _kwh(_("sharp energy (kWh)"))
    energy_peak_kwh = _kwh(_("peak energy (kWh)"))
    energy_flat_kwh = _kwh(_("flat energy (kWh)"))
    energy_valley_kwh = _kwh(_("valley energy (kWh)"))
    revenue_sharp_yuan = _yuan(_("sharp revenue (yuan)"))
    revenue_peak_yuan = _yuan(_("peak revenue (yuan)"))
    revenue_flat_yuan = _yuan(_("flat revenue (yuan)"))
    revenue_valley_yuan = _yuan(_("valley revenue (yuan)"))
    electricity_yuan = _yuan(_("electricity (yuan)"))
    service_yuan = _yuan(_("service fee (yuan)"))
    discount_yuan = _yuan(_("discounts (yuan)"))
    refund_yuan = _yuan(_("refunds (yuan)"))
    total_yuan = _yuan(_("revenue (yuan)"))
    charging_s = models.PositiveIntegerField(_("charging time (s)"), default=0)
    peak_power_kw = models.DecimalField(_("peak power (kW)"), max_digits=8, decimal_places=2, default=ZERO)

    class Meta:
        abstract = True

    @property
    def average_power_kw(self) -> Decimal:
        """kWh delivered / hours charging (0 when nothing charged)."""
        if not self.charging_s:
            return ZERO
        return self.energy_kwh * 3600 / self.charging_s


class OrderFigures(Figures):
    """The figures of one connector over an hour or a day."""

    station = models.ForeignKey("stations.Station", on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("station"))
    pile = models.ForeignKey("stations.Pile", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("pile"))
    connector = models.ForeignKey("stations.Connector", on_delete=models.CASCADE, related_name="+",
                                  verbose_name=_("connector"))
    day = models.DateField(_("day"))

    class Meta:
        abstract = True


class ConnectorHour(OrderFigures):
    hour = models.DateTimeField(_("hour (UTC start)"))

    class Meta:
        verbose_name = _("connector hour")
        verbose_name_plural = _("connector hours")
        constraints = [models.UniqueConstraint(fields=["connector", "hour"], name="stats_connector_hour")]
        indexes = [models.Index(fields=["day", "station"], name="stats_hour_day_station")]

    def __str__(self) -> str:
        return f"{self.connector_id} {self.hour:%Y-%m-%d %H:%M}"


class ConnectorDay(OrderFigures):
    """Also: utilisation = charging_s / available_s, available = the day minus offline time."""

    faults = models.PositiveIntegerField(_("faults"), default=0)
    offline_s = models.PositiveIntegerField(_("offline time (s)"), default=0)

    class Meta:
        verbose_name = _("connector day")
        verbose_name_plural = _("connector days")
        constraints = [models.UniqueConstraint(fields=["connector", "day"], name="stats_connector_day")]
        indexes = [models.Index(fields=["day", "station"], name="stats_day_day_station")]

    def __str__(self) -> str:
        return f"{self.connector_id} {self.day}"


class StationDay(Figures):
    """One station's day: the sums of its connector days (peak power the highest of them),
    rebuilt with them; the home page, rankings and reports read these rows, a fiftieth as
    many as connector days at 50 connectors a station."""

    station = models.ForeignKey("stations.Station", on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("station"))
    day = models.DateField(_("day"))
    # A station's day sums many connectors' seconds: wider than a connector's.
    charging_s = models.PositiveBigIntegerField(_("charging time (s)"), default=0)
    faults = models.PositiveIntegerField(_("faults"), default=0)
    offline_s = models.PositiveBigIntegerField(_("offline time (s)"), default=0)

    SUMMED = (
        "orders", "energy_kwh", "energy_sharp_kwh", "energy_peak_kwh", "energy_flat_kwh", "energy_valley_kwh",
        "revenue_sharp_yuan", "revenue_peak_yuan", "revenue_flat_yuan", "revenue_valley_yuan",
        "electricity_yuan", "service_yuan", "discount_yuan", "refund_yuan", "total_yuan", "charging_s",
        "faults", "offline_s",
    )

    class Meta:
        verbose_name = _("station day")
        verbose_name_plural = _("station days")
        constraints = [models.UniqueConstraint(fields=["station", "day"], name="stats_station_day")]
        indexes = [models.Index(fields=["day", "station"], name="stats_sday_day_station")]

    def __str__(self) -> str:
        return f"{self.station_id} {self.day}"


class MemberDay(models.Model):
    """Members and their money on one local day; ``wallet_yuan`` is the total of all wallets
    (cash + bonus, held included) when the day was last rebuilt."""

    day = models.DateField(_("day"), unique=True)
    new_members = models.PositiveIntegerField(_("new members"), default=0)
    active_members = models.PositiveIntegerField(_("active members"), default=0)
    top_ups = models.PositiveIntegerField(_("top-ups"), default=0)
    top_up_yuan = _yuan(_("top-ups (yuan)"))
    wallet_yuan = _yuan(_("wallet balance total (yuan)"))

    class Meta:
        verbose_name = _("member day")
        verbose_name_plural = _("member days")

    def __str__(self) -> str:
        return str(self.day)
