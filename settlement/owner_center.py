"""Reads for the station-owner center (the owner's part of the mini-program): who is an
owner, their stations with live connector status, energy, orders and earnings today and this
month, statements, payable, and their stations' open faults. Everything is scoped to the
owner's own stations and lines; amounts in yuan, energy in kWh, days in the operator's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.money import ZERO, kwh, yuan
from stations import selectors as station_selectors
from stations.models import Fault, Station

from .models import Account, OrderSplit, OwnerContract, OwnerWithdrawal, SplitLine, Statement
from .splits import SettlementError
from .statements import operator_zone
from .withdrawals import owner_available


def owner_for_member(member: Member):
    """The staff user (station owner) this member is; SettlementError ``not_station_owner``
    (403) when the member is not one."""
    contract = OwnerContract.objects.select_related("owner").filter(member=member).first()
    if contract is None or not contract.owner.is_active:
        raise SettlementError("not_station_owner", _("This account is not a station owner."), 403)
    return contract.owner


def owner_stations(owner) -> QuerySet[Station]:
    return Station.objects.filter(owners=owner).order_by("name")


@dataclass(frozen=True)
class Figures:
    orders: int
    energy_kwh: Decimal
    earnings: Decimal  # the owner's shares less refund reversals


def _figures(owner, since: datetime) -> Figures:
    splits = OrderSplit.objects.filter(lines__owner=owner, lines__kind=SplitLine.Kind.SHARE,
                                       settled_at__gte=since)
    agg = splits.aggregate(n=Count("pk", distinct=True), energy=Sum("energy_kwh"))
    earned = SplitLine.objects.filter(
        owner=owner, occurred_at__gte=since,
        kind__in=[SplitLine.Kind.SHARE, SplitLine.Kind.REVERSAL],
    ).aggregate(s=Sum("amount"))["s"]
    return Figures(orders=agg["n"] or 0, energy_kwh=kwh(agg["energy"] or 0), earnings=yuan(earned or 0))


def owner_overview(owner, *, now: datetime | None = None) -> dict:
    """Today's and this month's figures, the payable (balance of the owner's payable account)
    and the part of it not yet on any statement."""
    now = (now or timezone.now()).astimezone(operator_zone())
    today = datetime.combine(now.date(), time(0), now.tzinfo)
    month = today.replace(day=1)
    payable = Account.objects.filter(kind=Account.Kind.OWNER_PAYABLE, owner=owner).first()
    unbilled = SplitLine.objects.filter(owner=owner, statement__isnull=True).aggregate(s=Sum("amount"))["s"]
    return {
        "today": _figures(owner, today),
        "month": _figures(owner, month),
        "payable": payable.balance if payable else ZERO,
        "not_yet_on_a_statement": yuan(unbilled or 0),
        "available": owner_available(owner.pk),
    }


def owner_station_list(owner) -> list[dict]:
    """The owner's stations, each with its connectors' live status. Guns are named by id,
    their pile's name (else "Pile <n>", its place in the station) and number (1号枪), never
    by pile or connector code (those belong to the operator's staff)."""
    stations = list(owner_stations(owner).prefetch_related("piles__connectors"))
    connectors = [c for s in stations for p in s.piles.all() for c in p.connectors.all()]
    for c in connectors:
        c.pile = next(p for s in stations for p in s.piles.all() if p.pk == c.pile_id)
    live = station_selectors.connectors_live(connectors) if connectors else {}
    return [
        {
            "id": s.pk, "name": s.name, "address": s.address,
            "connectors": [
                {"id": c.pk, "pile": p.name or _("Pile %(n)s") % {"n": i}, "number": c.number,
                 "status": live.get(c.pk, {}).get("status", c.status),
                 "power_kw": live.get(c.pk, {}).get("power_kw")}
                for i, p in enumerate(s.piles.all(), 1) for c in p.connectors.all()
            ],
        }
        for s in stations
    ]


def owner_orders(owner) -> QuerySet[OrderSplit]:
    """Settled orders at the owner's stations with the owner's share, newest first."""
    return (
        OrderSplit.objects.filter(lines__owner=owner, lines__kind=SplitLine.Kind.SHARE)
        .annotate(my_share=Sum("lines__amount"))
        .select_related("station").order_by("-settled_at")
    )


def owner_statements(owner) -> QuerySet[Statement]:
    return Statement.objects.filter(owner=owner).order_by("-period_end")


def owner_faults(owner) -> QuerySet[Fault]:
    """Open faults of the owner's stations' piles, newest first."""
    return (
        Fault.objects.filter(pile__station__owners=owner, cleared_at__isnull=True)
        .select_related("pile__station", "connector").order_by("-started_at")
    )




def owner_withdrawals(owner) -> QuerySet[OwnerWithdrawal]:
    return OwnerWithdrawal.objects.filter(owner=owner).order_by("-requested_at")
