"""Points: an append-only ledger of whole points per member.

Every movement is a :class:`PointsEntry` written once under a unique ``key`` with the
balance after it; the member's :class:`PointsAccount` row is locked while it is written, so
``balance`` always equals the sum of the entries (``points_verify``). Earned points expire
``expire_months`` after they were earned, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from .common import MarketingError, local
from .models import PointsAccount, PointsEntry, PointsRule

K = PointsEntry.Kind
EARNING = (K.EARN, K.PRIZE, K.ADJUST, K.RETURN)


def points_rule() -> PointsRule:
    return PointsRule.load()


def points_account(member) -> PointsAccount:
    account, _created = PointsAccount.objects.get_or_create(member=member)
    return account


def points_balance(member) -> int:
    return PointsAccount.objects.filter(member=member).values_list("balance", flat=True).first() or 0


@transaction.atomic
def points_post(
    *, member, points: int, kind: str, key: str, ref: str = "", expires_at: datetime | None = None,
    rule: PointsRule | None = None,
) -> PointsEntry:
    """Add (``points`` > 0) or take (< 0) points. Idempotent by ``key`` (the first entry
    comes back). Raises MarketingError ``insufficient_points`` when the balance would go
    below zero. ``rule``: the points rule when the caller has read it (its expiry)."""
    account = PointsAccount.objects.select_for_update().filter(member=member).first()
    if account is None:  # first points: the account is made, then locked
        account = PointsAccount.objects.select_for_update().get(pk=points_account(member).pk)
    if existing := PointsEntry.objects.filter(key=key).first():
        return existing
    if points == 0:
        raise MarketingError("invalid_points", _("The number of points must not be zero."))
    if account.balance + points < 0:
        raise MarketingError("insufficient_points", _("Not enough points."))
    account.balance += points
    account.save(update_fields=["balance"])
    if points > 0 and expires_at is None and kind in (K.EARN, K.PRIZE, K.REFERRAL):
        months = (rule or points_rule()).expire_months
        expires_at = timezone.now() + relativedelta(months=months) if months else None
    return PointsEntry.objects.create(
        account=account, kind=kind, points=points, balance_after=account.balance, key=key,
        ref=ref[:64], expires_at=expires_at,
    )


def points_for_order(*, paid: Decimal, energy_kwh: Decimal, at: datetime, rule: PointsRule) -> int:
    """Points an order earns: ``per_yuan`` × paid + ``per_kwh`` × energy, × the bonus-day
    multiplier on a bonus weekday (ISO, 1 = Monday, operator's zone), rounded down."""
    raw = rule.per_yuan * max(paid, Decimal(0)) + rule.per_kwh * max(energy_kwh, Decimal(0))
    days = {d.strip() for d in rule.bonus_weekdays.split(",") if d.strip()}
    if str(local(at).isoweekday()) in days:
        raw *= rule.bonus_multiplier
    return int(raw.to_integral_value(rounding=ROUND_DOWN))


def points_earn_for_order(*, member, order_ref: str, paid: Decimal, energy_kwh: Decimal, at: datetime) -> PointsEntry | None:
    """Credit the points of a settled order (once per order)."""
    rule = points_rule()
    earned = points_for_order(paid=paid, energy_kwh=energy_kwh, at=at, rule=rule)
    if earned <= 0:
        return None
    return points_post(member=member, points=earned, kind=K.EARN, key=f"order:{order_ref}:earn",
                       ref=order_ref, rule=rule)


def points_reverse_for_order(*, member, order_ref: str, paid: Decimal, refunded: Decimal) -> PointsEntry | None:
    """After a refund: take back the same fraction of the order's earned points (rounded
    down), as far as the balance allows. Idempotent per refunded total."""
    earned = PointsEntry.objects.filter(key=f"order:{order_ref}:earn").first()
    if earned is None or paid <= 0:
        return None
    due = int((Decimal(earned.points) * min(refunded, paid) / paid).to_integral_value(rounding=ROUND_DOWN))
    done = -(PointsEntry.objects.filter(ref=order_ref, kind=K.REVERSE).aggregate(s=Sum("points"))["s"] or 0)
    take = min(due - done, points_balance(member))
    if take <= 0:
        return None
    return points_post(member=member, points=-take, kind=K.REVERSE, key=f"order:{order_ref}:reverse:{refunded}", ref=order_ref)


def points_expire(*, now: datetime | None = None) -> int:
    """Expire what is left of points earned before now (oldest first: everything spent or
    expired so far is counted against the oldest points). Returns the points expired."""
    now = now or timezone.now()
    total = 0
    for account in PointsAccount.objects.filter(entries__expires_at__lte=now).distinct():
        with transaction.atomic():
            account = PointsAccount.objects.select_for_update().get(pk=account.pk)
            entries = account.entries
            old = entries.filter(points__gt=0, expires_at__lte=now).aggregate(s=Sum("points"))["s"] or 0
            used = -(entries.filter(points__lt=0).aggregate(s=Sum("points"))["s"] or 0)
            due = min(old - used, account.balance)
            if due > 0:
                points_post(member=account.member, points=-due, kind=K.EXPIRE, key=f"expire:{account.pk}:{old}")
                total += due
    return total


@dataclass
class PointsReport:
    accounts: int = 0
    entries: int = 0
    drift: list[tuple[int, int, int]] = field(default_factory=list)  # (member id, balance, Σ entries)
    broken_chain: list[int] = field(default_factory=list)  # entry ids whose balance_after is wrong

    @property
    def ok(self) -> bool:
        return not (self.drift or self.broken_chain)


def points_verify() -> PointsReport:
    """Recompute every points balance from its entries and check each entry's running
    balance (``balance_after``) follows from the one before."""
    report = PointsReport()
    sums = dict(PointsEntry.objects.values("account_id").annotate(s=Sum("points")).values_list("account_id", "s"))
    for account in PointsAccount.objects.order_by("pk"):
        report.accounts += 1
        if (sums.get(account.pk) or 0) != account.balance:
            report.drift.append((account.member_id, account.balance, sums.get(account.pk) or 0))
        running = 0
        for entry_id, points, after in account.entries.order_by("pk").values_list("pk", "points", "balance_after"):
            report.entries += 1
            running += points
            if after != running:
                report.broken_chain.append(entry_id)
    return report


def points_expiring(member, *, within_days: int = 30) -> int:
    """Points the member will lose within ``within_days`` (shown in the app)."""
    now = timezone.now()
    account = PointsAccount.objects.filter(member=member).first()
    if account is None:
        return 0
    soon = account.entries.filter(Q(points__gt=0), expires_at__lte=now + relativedelta(days=within_days))
    old = soon.aggregate(s=Sum("points"))["s"] or 0
    used = -(account.entries.filter(points__lt=0).aggregate(s=Sum("points"))["s"] or 0)
    return max(0, min(old - used, account.balance))
