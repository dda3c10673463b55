"""Settlement statements (batches) per station owner, and paying them.

A statement gathers the owner's payable lines not yet on a statement that occurred before
its period's end (shares +, refund reversals −, amounts carried from earlier statements),
with the period's orders, energy by tariff period, gross, discounts, refunds, payment fees,
commission and the owner's net. It is built as a draft (``statement_build``; due ones by
``statements_build_due``, T+N days after the period per the owner's contract), confirmed by
the operator (``statement_confirm``: from then on immutable — a PostgreSQL trigger refuses
changes to its figures and lines), then paid:

- offline bank transfer with its reference (``statement_pay_offline``): owner payable →
  bank, at once;
- WeChat Pay merchant transfer (``billing.payments`` sends it): ``payout_open`` moves the
  net from the owner's payable to payouts in transit; ``payout_finish`` moves it on to WeChat
  clearing on success, or back to the payable on failure.

A confirmed statement with a net ≤ 0 (refunds after an earlier payout) pays nothing: its net
is carried to the owner's next statement (``carried_out`` here, ``carried_in`` there), so a
clawback nets off the next batch. Corrections always go into the next statement.

Amounts in yuan. Locks: the statement row, then the ledger's account locks.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.money import ZERO, kwh, yuan
from evplatform.queue import task_queue_on_commit

from . import services as ledger
from .models import Account, OrderSplit, OwnerContract, Payout, Posting, SplitLine, Statement
from .splits import SettlementError

Cycle = OwnerContract.Cycle
S = Statement.Status


def operator_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(getattr(connection.tenant, "time_zone", None) or "Asia/Shanghai")


def period_bounds(cycle: str, day: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) of the ``cycle`` period holding local ``day`` (weeks start Monday),
    as aware datetimes at local midnight."""
    if cycle == Cycle.DAILY:
        first, nxt = day, day + timedelta(days=1)
    elif cycle == Cycle.WEEKLY:
        first = day - timedelta(days=day.weekday())
        nxt = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, time(0), zone), datetime.combine(nxt, time(0), zone))


def _number(owner_id: int, end: datetime) -> str:
    sequence = Statement.objects.filter(owner_id=owner_id).count() + 1
    # Letters and digits only: it is part of the WeChat out_bill_no of its payouts.
    return f"ST{end.astimezone(operator_zone()):%Y%m%d}O{owner_id}S{sequence}"


@dataclass(frozen=True)
class StatementPeriodStats:
    orders: int
    energy_kwh: Decimal
    energy_by_period: dict[str, Decimal]


@transaction.atomic
def statement_build(
    *, owner_id: int, period_start: datetime, period_end: datetime, now: datetime | None = None
) -> Statement:
    """Build (or return the already built) statement of ``owner_id`` for the period: every
    open line of the owner that occurred before ``period_end``. Raises SettlementError
    ``period_open`` when the period has not ended."""
    if period_end > (now or timezone.now()):
        raise SettlementError("period_open", _("The period has not ended yet."), 409)
    # One statement per owner per period end; the owner's payable row serialises builders.
    ledger._lock([ledger.owner_account(owner_id)])
    if existing := Statement.objects.filter(owner_id=owner_id, period_end=period_end).first():
        return existing
    statement = Statement.objects.create(
        number=_number(owner_id, period_end), owner_id=owner_id, period_start=period_start, period_end=period_end
    )
    open_lines = SplitLine.objects.select_for_update().filter(
        owner_id=owner_id, statement__isnull=True, occurred_at__lt=period_end
    )
    ids = list(open_lines.values_list("pk", flat=True))
    SplitLine.objects.filter(pk__in=ids).update(statement=statement)
    _totals(statement)
    statement.save()
    return statement


def _totals(statement: Statement) -> None:
    lines = statement.lines.all()
    by_kind = dict(lines.values_list("kind").annotate(s=Sum("amount")).values_list("kind", "s"))
    shares = lines.filter(kind=SplitLine.Kind.SHARE)
    orders = OrderSplit.objects.filter(lines__in=shares).distinct()
    agg = orders.aggregate(
        n=Count("pk"), energy=Sum("energy_kwh"), gross=Sum("gross"), discounts=Sum("discount"),
        fees=Sum("payment_fee"), commission=Sum("commission"),
    )
    statement.orders = agg["n"] or 0
    statement.energy_kwh = kwh(agg["energy"] or 0)
    statement.gross = yuan(agg["gross"] or 0)
    statement.discounts = yuan(agg["discounts"] or 0)
    statement.payment_fees = yuan(agg["fees"] or 0)
    statement.commission = yuan(agg["commission"] or 0)
    statement.refunds = yuan(
        lines.filter(kind=SplitLine.Kind.REVERSAL).aggregate(s=Sum("refund"))["s"] or 0
    )
    statement.share = yuan(by_kind.get(SplitLine.Kind.SHARE, ZERO))
    statement.adjustments = yuan(
        by_kind.get(SplitLine.Kind.REVERSAL, ZERO) + by_kind.get(SplitLine.Kind.CARRIED_IN, ZERO)
    )
    statement.net = yuan(sum(by_kind.values(), ZERO))


def statement_period_stats(statement: Statement) -> StatementPeriodStats:
    """Orders and energy (kWh) of the statement, with energy by tariff period."""
    splits = OrderSplit.objects.filter(
        lines__statement=statement, lines__kind=SplitLine.Kind.SHARE
    ).distinct()
    by_period: dict[str, Decimal] = {}
    for row in splits.values_list("energy_by_period", flat=True):
        for period, value in (row or {}).items():
            by_period[period] = by_period.get(period, Decimal(0)) + Decimal(value)
    return StatementPeriodStats(
        orders=statement.orders, energy_kwh=statement.energy_kwh,
        energy_by_period={k: kwh(v) for k, v in sorted(by_period.items())},
    )


def statements_build_due(*, now: datetime | None = None) -> list[Statement]:
    """For every owner with a contract: build the statement of the last period that ended
    at least ``delay_days`` ago, if there is anything on it and it is not built yet."""
    now = now or timezone.now()
    zone = operator_zone()
    built = []
    for contract in OwnerContract.objects.all():
        cutoff = (now - timedelta(days=contract.delay_days)).astimezone(zone)
        start, end = period_bounds(contract.cycle, cutoff.date(), zone)
        start, end = period_bounds(contract.cycle, (start - timedelta(days=1)).date(), zone)
        has_lines = SplitLine.objects.filter(
            owner_id=contract.owner_id, statement__isnull=True, occurred_at__lt=end
        ).exists()
        built_before = Statement.objects.filter(owner_id=contract.owner_id, period_end=end).exists()
        if has_lines and not built_before:
            built.append(statement_build(
                owner_id=contract.owner_id, period_start=start, period_end=end, now=now
            ))
    return built


def _locked(statement_id: int) -> Statement:
    return Statement.objects.select_for_update().get(pk=statement_id)


@transaction.atomic
def statement_confirm(*, statement_id: int, user) -> Statement:
    """The operator confirms a draft; it is immutable from now on. A net ≤ 0 is carried
    to the owner's next statement and nothing is paid. Raises SettlementError
    ``statement_not_draft`` (409)."""
    statement = _locked(statement_id)
    if statement.status != S.DRAFT:
        raise SettlementError("statement_not_draft", _("Only a draft can be confirmed."), 409)
    now = timezone.now()
    if statement.net <= 0:
        if statement.net < 0:
            SplitLine.objects.bulk_create([
                SplitLine(owner_id=statement.owner_id, kind=SplitLine.Kind.CARRIED_OUT,
                          amount=-statement.net, statement=statement, occurred_at=now),
                SplitLine(owner_id=statement.owner_id, kind=SplitLine.Kind.CARRIED_IN,
                          amount=statement.net, occurred_at=now),
            ])
        statement.status = S.CARRIED
    else:
        statement.status = S.CONFIRMED
    statement.confirmed_by, statement.confirmed_at = user, now
    statement.save(update_fields=["status", "confirmed_by", "confirmed_at"])
    return statement


def _payable_ready(statement: Statement) -> None:
    if statement.status != S.CONFIRMED:
        raise SettlementError(
            "statement_not_confirmed", _("Only a confirmed, unpaid statement can be paid."), 409
        )


@transaction.atomic
def statement_pay_offline(*, statement_id: int, reference: str, user) -> Payout:
    """Record an offline bank transfer of the statement's net (with the bank's reference):
    owner payable → bank. Raises SettlementError ``statement_not_confirmed``,
    ``reference_required``."""
    if not reference.strip():
        raise SettlementError("reference_required", _("Give the bank transfer's reference."))
    statement = _locked(statement_id)
    _payable_ready(statement)
    payable, bank = ledger.owner_account(statement.owner_id), ledger.system_account(Account.Kind.BANK)
    ledger.posting_create(
        key=f"statement:{statement.number}:bank", kind=Posting.Kind.PAYOUT,
        lines=[(payable, statement.net), (bank, -statement.net)], ref=statement.number,
        memo=f"bank transfer {reference}"[:200],
    )
    payout = Payout.objects.create(
        statement=statement, method=OwnerContract.Method.BANK, amount=statement.net,
        out_bill_no=f"PO{statement.number}B", reference=reference.strip()[:64],
        status=Payout.Status.SUCCESS, created_by=user, finished_at=timezone.now(),
    )
    statement.status, statement.paid_at = S.PAID, payout.finished_at
    statement.save(update_fields=["status", "paid_at"])
    return payout


@transaction.atomic
def payout_open(*, statement_id: int, user) -> Payout:
    """Start a WeChat merchant transfer of the statement's net: owner payable → payouts in
    transit, statement ``paying``. Raises SettlementError ``statement_not_confirmed``,
    ``no_openid`` (the owner's contract has no WeChat openid)."""
    statement = _locked(statement_id)
    _payable_ready(statement)
    contract = OwnerContract.objects.filter(owner_id=statement.owner_id).first()
    if contract is None or not contract.openid:
        raise SettlementError("no_openid", _("The owner's contract has no WeChat openid."))
    payable = ledger.owner_account(statement.owner_id)
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    # A failed transfer may be sent again: each attempt has its own bill number.
    out_bill_no = f"PO{statement.number}N{statement.payouts.count() + 1}"
    ledger.posting_create(
        key=f"payout:{out_bill_no}", kind=Posting.Kind.PAYOUT,
        lines=[(payable, statement.net), (transit, -statement.net)], ref=out_bill_no,
    )
    payout = Payout.objects.create(
        statement=statement, method=OwnerContract.Method.WECHAT, amount=statement.net,
        out_bill_no=out_bill_no, created_by=user,
    )
    statement.status = S.PAYING
    statement.save(update_fields=["status"])
    return payout


@transaction.atomic
def statement_pay_wechat(*, statement_id: int, user) -> Payout:
    """Pay a confirmed statement by WeChat merchant transfer: the payout is opened here and
    sent after commit by billing (``billing.owner_payout_submit``). Raises as ``payout_open``."""
    payout = payout_open(statement_id=statement_id, user=user)
    task_queue_on_commit("billing.owner_payout_submit", payout.pk)
    return payout


@transaction.atomic
def payout_finish(*, payout_id: int, success: bool, reason: str = "") -> Payout:
    """WeChat's final answer on a transfer: success moves the money from transit to WeChat
    clearing (statement paid); failure returns it to the owner's payable (statement back to
    confirmed, to be paid again). Idempotent: a finished payout is returned unchanged."""
    payout = Payout.objects.select_for_update().select_related("statement").get(pk=payout_id)
    if payout.status not in Payout.OPEN:
        return payout
    statement = _locked(payout.statement_id)
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    now = timezone.now()
    if success:
        ledger.posting_create(
            key=f"wx:transfer:{payout.out_bill_no}", kind=Posting.Kind.PAYOUT_SUCCESS,
            lines=[(transit, payout.amount), (ledger.system_account(Account.Kind.CLEARING), -payout.amount)],
            ref=payout.out_bill_no,
        )
        payout.status, statement.status, statement.paid_at = Payout.Status.SUCCESS, S.PAID, now
    else:
        ledger.posting_create(
            key=f"payout:{payout.out_bill_no}:return", kind=Posting.Kind.PAYOUT_RETURN,
            lines=[(transit, payout.amount), (ledger.owner_account(statement.owner_id), -payout.amount)],
            ref=payout.out_bill_no,
        )
        payout.status, payout.fail_reason, statement.status = Payout.Status.FAILED, reason[:200], S.CONFIRMED
    payout.finished_at = now
    payout.save(update_fields=["status", "fail_reason", "finished_at"])
    statement.save(update_fields=["status", "paid_at"])
    return payout
