"""Maintaining the aggregates (writes). See :mod:`analytics.models` for what each row means.

Everything here recomputes whole rows from the source tables (settled orders, their meter
samples, faults, members, top-ups, wallet accounts) and replaces them in one transaction,
so a row is the same however often and in whatever order it is rebuilt.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum

from evplatform import money

from .models import PERIODS, ConnectorDay, ConnectorHour, MemberDay, StationDay

ZERO = Decimal("0")


def operator_zone() -> ZoneInfo:
    """The current operator's time zone (days and hours are counted in it)."""
    tenant = getattr(connection, "tenant", None)
    return ZoneInfo(getattr(tenant, "time_zone", None) or "Asia/Shanghai")


def day_bounds(day: date, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a local day as aware datetimes (23 or 25 h long across DST)."""
    zone = zone or operator_zone()
    return (datetime.combine(day, time(), zone), datetime.combine(day + timedelta(days=1), time(), zone))


@dataclass
class _Figures:
    station_id: int
    pile_id: int
    orders: int = 0
    energy: Decimal = ZERO
    period_energy: dict = field(default_factory=lambda: defaultdict(Decimal))
    period_revenue: dict = field(default_factory=lambda: defaultdict(Decimal))
    electricity: Decimal = ZERO
    service: Decimal = ZERO
    discount: Decimal = ZERO
    refund: Decimal = ZERO
    total: Decimal = ZERO
    charging_s: int = 0
    peak_power: Decimal = ZERO

    def add(self, order: dict, peak: Decimal | None) -> None:
        self.orders += 1
        self.energy += order["energy_kwh"]
        self.electricity += order["electricity_amount"]
        self.service += order["service_amount"]
        self.discount += order["discount_amount"]
        self.refund += order["refunded_amount"]
        self.total += order["total_amount"]
        if order["started_at"] and order["stopped_at"]:
            self.charging_s += max(0, int((order["stopped_at"] - order["started_at"]).total_seconds()))
        if peak is not None:
            self.peak_power = max(self.peak_power, peak)
        bill = order["bill"] or {}
        period_energy = {p: Decimal(e) for p, e in (bill.get("period_energy") or {}).items()}
        for p, e in period_energy.items():
            self.period_energy[p] += e
        for line in bill.get("lines") or ():
            line_total = Decimal(line["electricity_yuan"]) + Decimal(line["service_yuan"])
            line_energy = Decimal(line["energy_kwh"])
            for p in line["periods"]:
                if line_energy and p in period_energy:
                    self.period_revenue[p] += line_total * period_energy[p] / line_energy

    def values(self) -> dict:
        out = {
            "station_id": self.station_id,
            "pile_id": self.pile_id,
            "orders": self.orders,
            "energy_kwh": money.kwh(self.energy),
            "electricity_yuan": money.yuan(self.electricity),
            "service_yuan": money.yuan(self.service),
            "discount_yuan": money.yuan(self.discount),
            "refund_yuan": money.yuan(self.refund),
            "total_yuan": money.yuan(self.total),
            "charging_s": self.charging_s,
            "peak_power_kw": self.peak_power,
        }
        for p in PERIODS:
            out[f"energy_{p}_kwh"] = money.kwh(self.period_energy.get(p, ZERO))
            out[f"revenue_{p}_yuan"] = money.yuan(self.period_revenue.get(p, ZERO))
        return out


_ORDER_FIELDS = (
    "id", "station_id", "pile_id", "connector_id", "started_at", "stopped_at", "energy_kwh",
    "electricity_amount", "service_amount", "discount_amount", "refunded_amount", "total_amount",
    "bill",
)


def _order_rows(day: date, zone: ZoneInfo, connector_id: int | None):
    from charging.models import ChargingOrder, MeterSample, OrderState

    start, end = day_bounds(day, zone)
    orders = ChargingOrder.objects.filter(state=OrderState.SETTLED, stopped_at__gte=start, stopped_at__lt=end)
    if connector_id is not None:
        orders = orders.filter(connector_id=connector_id)
    rows = list(orders.values(*_ORDER_FIELDS))
    peaks = dict(
        MeterSample.objects.filter(order_id__in=[r["id"] for r in rows])
        .values("order_id").annotate(peak=Max("power_kw")).values_list("order_id", "peak")
    ) if rows else {}
    return rows, peaks


def _hour_of(at: datetime, zone: ZoneInfo) -> datetime:
    local = at.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(ZoneInfo("UTC"))


def _fault_figures(day: date, zone: ZoneInfo, connector_id: int | None) -> dict[int, tuple[int, int]]:
    """{connector id: (faults started that day, seconds offline within the day)}; a fault of a
    whole pile counts for each of its connectors."""
    from stations.models import Connector, Fault

    start, end = day_bounds(day, zone)
    faults = Fault.objects.filter(started_at__lt=end).filter(Q(cleared_at__isnull=True) | Q(cleared_at__gt=start))
    connectors = Connector.objects.all()
    if connector_id is not None:
        connectors = connectors.filter(pk=connector_id)
    by_pile = defaultdict(list)
    for cid, pile_id in connectors.values_list("id", "pile_id"):
        by_pile[pile_id].append(cid)
    faults = faults.filter(pile_id__in=list(by_pile))
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    now = datetime.now(ZoneInfo("UTC"))
    for f in faults.values("pile_id", "connector_id", "source", "started_at", "cleared_at"):
        targets = [f["connector_id"]] if f["connector_id"] else by_pile[f["pile_id"]]
        for cid in targets:
            if cid not in by_pile[f["pile_id"]]:
                continue
            if start <= f["started_at"] < end:
                out[cid][0] += 1
            if f["source"] == "offline":
                until = min(f["cleared_at"] or now, end)
                out[cid][1] += max(0, int((until - max(f["started_at"], start)).total_seconds()))
    return {cid: (n, min(s, 86400)) for cid, (n, s) in out.items()}


@transaction.atomic
def connector_days_rebuild(*, day: date, connector_id: int | None = None) -> int:
    """Recompute the hour and day rows of ``day`` (local) for one connector, or all of them.
    Returns the number of day rows written."""
    from stations.models import Connector

    zone = operator_zone()
    rows, peaks = _order_rows(day, zone, connector_id)
    days: dict[int, _Figures] = {}
    hours: dict[tuple[int, datetime], _Figures] = {}
    for r in rows:
        peak = peaks.get(r["id"])
        days.setdefault(r["connector_id"], _Figures(r["station_id"], r["pile_id"])).add(r, peak)
        key = (r["connector_id"], _hour_of(r["stopped_at"], zone))
        hours.setdefault(key, _Figures(r["station_id"], r["pile_id"])).add(r, peak)
    faults = _fault_figures(day, zone, connector_id)
    for cid in faults:
        if cid not in days:
            pile_id, station_id = Connector.objects.filter(pk=cid).values_list("pile_id", "pile__station_id")[0]
            days[cid] = _Figures(station_id, pile_id)
    hour_rows = ConnectorHour.objects.filter(day=day)
    day_rows = ConnectorDay.objects.filter(day=day)
    if connector_id is not None:
        hour_rows, day_rows = hour_rows.filter(connector_id=connector_id), day_rows.filter(connector_id=connector_id)
    hour_rows.delete()
    day_rows.delete()
    ConnectorHour.objects.bulk_create(
        ConnectorHour(connector_id=cid, day=day, hour=hour, **f.values()) for (cid, hour), f in hours.items()
    )
    ConnectorDay.objects.bulk_create(
        ConnectorDay(connector_id=cid, day=day, faults=faults.get(cid, (0, 0))[0],
                     offline_s=faults.get(cid, (0, 0))[1], **f.values())
        for cid, f in days.items()
    )
    station_days_rebuild(day=day, station_id=_station_of(connector_id) if connector_id is not None else None)
    return len(days)


def _station_of(connector_id: int) -> int | None:
    from stations.models import Connector

    return Connector.objects.filter(pk=connector_id).values_list("pile__station_id", flat=True).first()


def station_days_rebuild(*, day: date, station_id: int | None = None) -> int:
    """Recompute the station rows of ``day`` from its connector rows (one station, or all):
    sums, and the highest peak power. Returns the number of station rows written."""
    from django.db.models import Max

    rows = ConnectorDay.objects.filter(day=day)
    old = StationDay.objects.filter(day=day)
    if station_id is not None:
        rows, old = rows.filter(station_id=station_id), old.filter(station_id=station_id)
    sums = rows.values("station_id").annotate(
        peak=Max("peak_power_kw"), **{f: Sum(f) for f in StationDay.SUMMED}
    )
    old.delete()
    created = StationDay.objects.bulk_create(
        StationDay(day=day, station_id=r["station_id"], peak_power_kw=r["peak"],
                   **{f: r[f] for f in StationDay.SUMMED})
        for r in sums
    )
    return len(created)


@transaction.atomic
def member_day_rebuild(*, day: date) -> MemberDay:
    """Recompute the members' row of ``day`` (local)."""
    from accounts.models import Member
    from billing.payments.models import Payment
    from charging.models import ChargingOrder, OrderState
    from settlement.models import Account

    start, end = day_bounds(day)
    top_ups = Payment.objects.filter(
        purpose=Payment.Purpose.TOP_UP, status=Payment.Status.PAID, paid_at__gte=start, paid_at__lt=end
    ).aggregate(n=Count("id"), total=Sum("amount"))
    wallets = Account.objects.filter(kind__in=[
        Account.Kind.WALLET_CASH, Account.Kind.WALLET_BONUS, Account.Kind.HELD_CASH, Account.Kind.HELD_BONUS,
    ]).aggregate(total=Sum("balance"))["total"]
    values = {
        "new_members": Member.objects.filter(created_at__gte=start, created_at__lt=end).count(),
        "active_members": ChargingOrder.objects.filter(
            state=OrderState.SETTLED, stopped_at__gte=start, stopped_at__lt=end, member__isnull=False
        ).values("member_id").distinct().count(),
        "top_ups": top_ups["n"] or 0,
        "top_up_yuan": money.yuan(top_ups["total"] or 0),
        "wallet_yuan": money.yuan(wallets or 0),
    }
    row, _ = MemberDay.objects.update_or_create(day=day, defaults=values)
    return row


def operator_day_publish(*, day: date) -> None:
    """Copy the current operator's totals of ``day`` into the public rollup table."""
    from django_tenants.utils import schema_context

    from stations.models import Pile

    from .platform.models import OperatorDay

    tenant = connection.tenant
    totals = StationDay.objects.filter(day=day).aggregate(
        orders=Sum("orders"), energy=Sum("energy_kwh"), gmv=Sum("total_yuan"), refund=Sum("refund_yuan")
    )
    piles = Pile.objects.aggregate(n=Count("id"), online=Count("id", filter=Q(online=True)))
    with schema_context("public"):
        OperatorDay.objects.update_or_create(
            operator_id=tenant.pk, day=day,
            defaults={
                "orders": totals["orders"] or 0,
                "energy_kwh": totals["energy"] or ZERO,
                "gmv_yuan": totals["gmv"] or ZERO,
                "refund_yuan": totals["refund"] or ZERO,
                "piles": piles["n"],
                "piles_online": piles["online"],
            },
        )


def stats_day_rebuild(*, day: date) -> dict[str, int]:
    """Recompute every aggregate of one local day in the current operator (idempotent)."""
    connectors = connector_days_rebuild(day=day)
    member_day_rebuild(day=day)
    operator_day_publish(day=day)
    return {"connector_days": connectors}


def stats_order_update(*, order_id: int) -> None:
    """After an order settles or is refunded: recompute its connector's day and hour rows,
    the members' row and the operator's public rollup of the day it stopped."""
    from charging.models import ChargingOrder

    order = ChargingOrder.objects.filter(pk=order_id).values("connector_id", "stopped_at").first()
    if order is None or order["stopped_at"] is None:
        return
    day = order["stopped_at"].astimezone(operator_zone()).date()
    connector_days_rebuild(day=day, connector_id=order["connector_id"])
    member_day_rebuild(day=day)
    operator_day_publish(day=day)
