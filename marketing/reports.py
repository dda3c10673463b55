"""Marketing's statistics reports, by day over an inclusive local date range: SVIP (members,
renewals, revenue, refunds, discounts given), points (earned, spent, expired, outstanding —
the points liability) and coupons (issued, redeemed, discount cost, per template).

They are shown on the operator's report page (``/reports/?kind=svip|points|coupons``, with
its date range and XLSX export) through :func:`analytics.reports.report_register`, called
in ``MarketingConfig.ready``; each needs the marketing view permission named there. Days
are the operator's local days (:func:`marketing.common.operator_zone`). They read
marketing's own tables (purchases, SVIP discount lines, points entries, coupons), grouped
by day in the database, never charging orders. Amounts in yuan (Decimal), points as ints.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils.translation import gettext as _

from .common import operator_zone
from .models import Coupon, PointsEntry, SvipDiscount, SvipPurchase

ZERO = Decimal("0.00")
K = PointsEntry.Kind


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    zone = operator_zone()
    return datetime.combine(start, time.min, zone), datetime.combine(end + timedelta(days=1), time.min, zone)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _by_day(qs, field: str, **sums) -> dict[date, dict]:
    rows = (qs.filter(**{f"{field}__isnull": False}).annotate(day=TruncDate(field, tzinfo=operator_zone()))
            .values("day").annotate(**sums).order_by("day"))
    return {r["day"]: r for r in rows}


def svip_report(_stations, start: date, end: date) -> tuple[list[str], list[list]]:
    """One row a day: new members (first purchase), renewals, purchases' revenue, refunds,
    SVIP discounts given on bills, and members with an SVIP period at the day's end."""
    lo, hi = _bounds(start, end)
    bought = SvipPurchase.objects.filter(
        status__in=(SvipPurchase.Status.PAID, SvipPurchase.Status.REFUNDED), created_at__gte=lo, created_at__lt=hi,
    ).annotate(renewal=Exists(SvipPurchase.objects.filter(
        member=OuterRef("member"), pk__lt=OuterRef("pk"),
        status__in=(SvipPurchase.Status.PAID, SvipPurchase.Status.REFUNDED))))
    sales = _by_day(bought, "created_at", new=Count("pk", filter=Q(renewal=False)),
                    renewals=Count("pk", filter=Q(renewal=True)), revenue=Sum("amount"))
    refunds = _by_day(SvipPurchase.objects.filter(refunded_at__gte=lo, refunded_at__lt=hi), "refunded_at",
                      n=Count("pk"), amount=Sum("amount"))
    discounts = _by_day(SvipDiscount.objects.filter(created_at__gte=lo, created_at__lt=hi), "created_at",
                        amount=Sum("amount"), orders=Count("pk"))
    paid = SvipPurchase.objects.filter(status=SvipPurchase.Status.PAID)
    columns = [_("Day"), _("New SVIP members"), _("Renewals"), _("SVIP revenue (yuan)"), _("Refunds"),
               _("Refunded (yuan)"), _("Orders with an SVIP discount"), _("SVIP discounts given (yuan)"),
               _("SVIP members at day end")]
    rows = []
    zone = operator_zone()
    for day in _days(start, end):
        s, r, d = sales.get(day, {}), refunds.get(day, {}), discounts.get(day, {})
        day_end = datetime.combine(day + timedelta(days=1), time.min, zone)
        active = paid.filter(starts_at__lt=day_end, ends_at__gte=day_end).values("member").distinct().count()
        rows.append([day, s.get("new", 0), s.get("renewals", 0), s.get("revenue") or ZERO, r.get("n", 0),
                     r.get("amount") or ZERO, d.get("orders", 0), d.get("amount") or ZERO, active])
    return columns, rows


def points_report(_stations, start: date, end: date) -> tuple[list[str], list[list]]:
    """One row a day: points earned (charging, prizes, referrals), spent in the mall (net of
    cancelled redemptions), expired, other changes (refunded orders, staff adjustments), and
    the points outstanding at the day's end (the points liability)."""
    lo, hi = _bounds(start, end)
    entries = PointsEntry.objects.filter(created_at__gte=lo, created_at__lt=hi)
    by_day = _by_day(
        entries, "created_at",
        earned=Sum("points", filter=Q(kind__in=(K.EARN, K.PRIZE, K.REFERRAL))),
        spent=Sum("points", filter=Q(kind__in=(K.SPEND, K.RETURN))),
        expired=Sum("points", filter=Q(kind=K.EXPIRE)),
        other=Sum("points", filter=Q(kind__in=(K.REVERSE, K.ADJUST))),
        net=Sum("points"),
    )
    outstanding = PointsEntry.objects.filter(created_at__lt=lo).aggregate(s=Sum("points"))["s"] or 0
    columns = [_("Day"), _("Points earned"), _("Points spent"), _("Points expired"), _("Other changes"),
               _("Points outstanding at day end")]
    rows = []
    for day in _days(start, end):
        r = by_day.get(day, {})
        outstanding += r.get("net") or 0
        rows.append([day, r.get("earned") or 0, -(r.get("spent") or 0), -(r.get("expired") or 0),
                     r.get("other") or 0, outstanding])
    return columns, rows


def coupon_report(_stations, start: date, end: date) -> tuple[list[str], list[list]]:
    """One row per day and coupon template with any movement: coupons issued (by any
    source), redeemed on orders (and still used), and what they took off (the discount
    cost, yuan). A last row totals the range."""
    lo, hi = _bounds(start, end)
    zone = operator_zone()
    issued = (Coupon.objects.filter(granted_at__gte=lo, granted_at__lt=hi)
              .annotate(day=TruncDate("granted_at", tzinfo=zone)).values("day", "template_id", "template__name")
              .annotate(n=Count("pk")))
    used = (Coupon.objects.filter(status=Coupon.Status.USED, used_at__gte=lo, used_at__lt=hi)
            .annotate(day=TruncDate("used_at", tzinfo=zone)).values("day", "template_id", "template__name")
            .annotate(n=Count("pk"), cost=Sum("used_amount")))
    table: dict[tuple, list] = {}
    for r in issued:
        table.setdefault((r["day"], r["template__name"], r["template_id"]), [0, 0, ZERO])[0] = r["n"]
    for r in used:
        row = table.setdefault((r["day"], r["template__name"], r["template_id"]), [0, 0, ZERO])
        row[1], row[2] = r["n"], r["cost"] or ZERO
    columns = [_("Day"), _("Coupon"), _("Coupons issued"), _("Coupons redeemed"), _("Discount cost (yuan)")]
    rows = [[day, name, *figures] for (day, name, _pk), figures in sorted(table.items())]
    if rows:
        rows.append([_("Total"), "", sum(r[2] for r in rows), sum(r[3] for r in rows),
                     sum((r[4] for r in rows), ZERO)])
    return columns, rows


def register() -> None:
    """Put the three reports on the operator's report page (``MarketingConfig.ready``)."""
    from analytics import reports

    reports.report_register("svip", title=lambda: _("SVIP members"), build=svip_report,
                            permission="marketing.view_svippurchase")
    reports.report_register("points", title=lambda: _("Points"), build=points_report,
                            permission="marketing.view_pointsentry")
    reports.report_register("coupons", title=lambda: _("Coupons"), build=coupon_report,
                            permission="marketing.view_coupon")
