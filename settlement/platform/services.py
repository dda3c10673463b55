"""Commission statements for the super admin: per operator and month, from the operator's
ledger — the credits to its ``platform_commission`` account in the month (taken on order
splits) and the debits (reversed by refunds), with the month's split orders and their base,
and (service-provider mode) what the platform already collected by profit sharing.
Months are the operator's local calendar months. Amounts in yuan."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context

from evplatform.money import ZERO, yuan
from settlement.models import Account, Entry, OrderSplit, Posting
from settlement.splits import SettlementError
from tenants.models import Operator

from .models import CommissionStatement

S = CommissionStatement.Status


def month_bounds(month: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    first = month.replace(day=1)
    nxt = first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
    return datetime.combine(first, time(0), zone), datetime.combine(nxt, time(0), zone)


def _figures(operator: Operator, month: date) -> dict:
    zone = zoneinfo.ZoneInfo(operator.time_zone or "Asia/Shanghai")
    start, end = month_bounds(month, zone)
    with tenant_context(operator):
        # Commission paid to the platform by service-provider profit sharing (and returned
        # for refunds) moves the payable too: counted apart, not as taken or reversed.
        paid_kinds = [Posting.Kind.PAYOUT_SUCCESS, Posting.Kind.PAYOUT_RETURN]
        entries = Entry.objects.filter(
            account__code=Account.Kind.COMMISSION, posting__created_at__gte=start,
            posting__created_at__lt=end,
        ).aggregate(
            credit=Sum("amount", filter=Q(amount__lt=0) & ~Q(posting__kind__in=paid_kinds)),
            debit=Sum("amount", filter=Q(amount__gt=0) & ~Q(posting__kind__in=paid_kinds)),
            collected=Sum("amount", filter=Q(posting__kind__in=paid_kinds)),
        )
        splits = OrderSplit.objects.filter(settled_at__gte=start, settled_at__lt=end).aggregate(
            n=Count("pk"), base=Sum("base"))
    accrued, reversed_ = yuan(-(entries["credit"] or ZERO)), yuan(entries["debit"] or ZERO)
    return {"orders": splits["n"] or 0, "base": yuan(splits["base"] or 0), "accrued": accrued,
            "reversed": reversed_, "net": accrued - reversed_,
            "collected": yuan(entries["collected"] or ZERO),
            "commission_percent": operator.commission_percent or ZERO}


@transaction.atomic
def commission_statement_build(*, operator: Operator, month: date) -> CommissionStatement:
    """Build (or rebuild, while a draft) ``operator``'s statement for ``month``. A confirmed
    one is returned unchanged."""
    month = month.replace(day=1)
    statement, _created = CommissionStatement.objects.select_for_update().get_or_create(
        operator=operator, month=month
    )
    if statement.status == S.CONFIRMED:
        return statement
    for field, value in _figures(operator, month).items():
        setattr(statement, field, value)
    statement.save()
    return statement


def commission_statements_build(*, month: date) -> list[CommissionStatement]:
    """Every operator's statement for ``month`` (the template schema left out)."""
    operators = Operator.objects.exclude(schema_name__in=["public", "tenant_template"]).order_by("pk")
    return [commission_statement_build(operator=op, month=month) for op in operators]


@transaction.atomic
def commission_statement_confirm(*, statement_id: int, user) -> CommissionStatement:
    """The super admin confirms a draft (from then on it is not rebuilt). Raises
    SettlementError ``statement_not_draft`` (409), ``month_not_over`` (409)."""
    statement = CommissionStatement.objects.select_for_update().select_related("operator").get(pk=statement_id)
    if statement.status != S.DRAFT:
        raise SettlementError("statement_not_draft", _("Only a draft can be confirmed."), 409)
    zone = zoneinfo.ZoneInfo(statement.operator.time_zone or "Asia/Shanghai")
    if month_bounds(statement.month, zone)[1] > timezone.now():
        raise SettlementError("month_not_over", _("The month is not over yet."), 409)
    commission_statement_build(operator=statement.operator, month=statement.month)
    statement.refresh_from_db()
    statement.status, statement.confirmed_by, statement.confirmed_at = S.CONFIRMED, user, timezone.now()
    statement.save()
    return statement
