"""Report tables from the aggregates: charging (energy by tariff period), revenue, members,
and the reports other apps register (marketing's SVIP, points and coupons).

Each report is ``(columns, rows)``: column titles (translated) and rows of plain values
(dates, ints, Decimals), one row per day (members) or per station and day (charging,
revenue), over an inclusive local date range. Never reads raw orders.

Apps beside analytics add their reports with :func:`report_register` at start (their
``AppConfig.ready``) rather than analytics importing them: the report page then lists them
with the same date range and XLSX export, for users holding the report's permission.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from io import BytesIO

from django.db.models import F, QuerySet, Sum
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from stations.models import Station

from .models import MemberDay, StationDay

KINDS = ("charging", "revenue", "members")
MAX_DAYS = 366


Table = tuple[list[str], list[list]]


@dataclass(frozen=True)
class Registered:
    title: Callable[[], str]  # translated when asked
    build: Callable[[QuerySet[Station], date, date], Table]  # (visible stations, first day, last day)
    permission: str  # e.g. "marketing.view_svippurchase"
    by_station: bool = False  # whether the station and owner filters apply


_registered: dict[str, Registered] = {}


def report_register(kind: str, *, title: Callable[[], str], build: Callable[[QuerySet[Station], date, date], Table],
                    permission: str, by_station: bool = False) -> None:
    """Add a report to the report page (idempotent by ``kind``)."""
    _registered[kind] = Registered(title, build, permission, by_station)


def registered(kind: str) -> Registered | None:
    return _registered.get(kind)


def kind_titles(user=None) -> dict[str, str]:
    """The reports ``user`` may open (all, without a user), kind → translated title."""
    titles = {"charging": pgettext("report", "Charging"), "revenue": _("Revenue"),
              "members": _("Members and top-ups")}
    for kind, entry in _registered.items():
        if user is None or user.has_perm(entry.permission):
            titles[kind] = entry.title()
    return titles


def _station_days(stations: QuerySet[Station], start: date, end: date, **sums):
    return (StationDay.objects.filter(day__gte=start, day__lte=end, station__in=stations)
            .values("day", "station_id").annotate(station_name=F("station__name"), **sums)
            .order_by("day", "station_name"))


def report(kind: str, stations: QuerySet[Station], start: date, end: date) -> tuple[list[str], list[list]]:
    """Raises ValueError for an unknown ``kind``."""
    if kind in _registered:
        return _registered[kind].build(stations, start, end)
    if kind == "charging":
        columns = [_("Day"), _("Station"), _("Orders"), _("Energy (kWh)"),
                   _("sharp energy (kWh)"), _("peak energy (kWh)"), _("flat energy (kWh)"),
                   _("valley energy (kWh)"),
                   _("Charging time (h)"), _("Faults")]
        rows = []
        for r in _station_days(stations, start, end, orders=Sum("orders"), energy=Sum("energy_kwh"),
                               sharp=Sum("energy_sharp_kwh"), peak=Sum("energy_peak_kwh"),
                               flat=Sum("energy_flat_kwh"), valley=Sum("energy_valley_kwh"),
                               charging=Sum("charging_s"), faults=Sum("faults")):
            rows.append([r["day"], r["station_name"], r["orders"], r["energy"], r["sharp"], r["peak"],
                         r["flat"], r["valley"], round(r["charging"] / 3600, 2), r["faults"]])
        return columns, rows
    if kind == "revenue":
        columns = [_("Day"), _("Station"), _("Orders"), _("Electricity (yuan)"), _("Service fee (yuan)"),
                   _("Discounts (yuan)"), _("Refunds (yuan)"), _("Revenue (yuan)")]
        rows = [[r["day"], r["station_name"], r["orders"], r["electricity"], r["service"], r["discount"],
                 r["refund"], r["total"]]
                for r in _station_days(stations, start, end, orders=Sum("orders"),
                                       electricity=Sum("electricity_yuan"), service=Sum("service_yuan"),
                                       discount=Sum("discount_yuan"), refund=Sum("refund_yuan"),
                                       total=Sum("total_yuan"))]
        return columns, rows
    if kind == "members":
        columns = [_("Day"), _("New members"), _("Active members"), _("Top-ups"), _("Top-ups (yuan)"),
                   _("Wallet balance total (yuan)")]
        rows = [[m.day, m.new_members, m.active_members, m.top_ups, m.top_up_yuan, m.wallet_yuan]
                for m in MemberDay.objects.filter(day__gte=start, day__lte=end).order_by("day")]
        return columns, rows
    raise ValueError(kind)


def xlsx(title: str, columns: list[str], rows: list[list]) -> bytes:
    """The table as an .xlsx workbook (one sheet, header row frozen)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(columns)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    for i, _c in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = 16
    out = BytesIO()
    book.save(out)
    return out.getvalue()
