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
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.money import kwh
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


def _numbers(owner_ids: list[int], end: datetime) -> dict[int, str]:
    """The next statement number of each owner (one grouped count)."""
    counts = dict(
        Statement.objects.filter(owner_id__in=owner_ids).values_list("owner_id")
        .annotate(n=Count("pk")).values_list("owner_id", "n")
    )
    day = f"{end.astimezone(operator_zone()):%Y%m%d}"
    # Letters and digits only: it is part of the WeChat out_bill_no of its payouts.
    return {oid: f"ST{day}O{oid}S{counts.get(oid, 0) + 1}" for oid in owner_ids}


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
    built = _build_many([owner_id], period_start, period_end, only_with_lines=False)
    return built[0] if built else Statement.objects.get(owner_id=owner_id, period_end=period_end)


def _build_many(
    owner_ids: list[int], period_start: datetime, period_end: datetime, *, only_with_lines: bool
) -> list[Statement]:
    """Build the statements of ``owner_ids`` for one period, set-based: a handful of
    statements whatever the number of owners and lines (the daily batch of 100,000 orders
    across 500 owners is one pass). Owners who already have this period's statement are
    skipped; with ``only_with_lines`` so are owners with no open line before the end.
    Locks every owner's payable row (primary-key order), which serialises builders with each
    other and with settlements posting to the same owners. Caller holds a transaction."""
    accounts = [ledger.owner_account(oid) for oid in owner_ids] if len(owner_ids) < 20 else (
        _owner_accounts(owner_ids)
    )
    ledger._lock(accounts)
    done = set(Statement.objects.filter(owner_id__in=owner_ids, period_end=period_end)
               .values_list("owner_id", flat=True))
    todo = [oid for oid in owner_ids if oid not in done]
    if only_with_lines and todo:
        with_lines = set(
            SplitLine.objects.filter(owner_id__in=todo, statement__isnull=True,
                                     occurred_at__lt=period_end)
            .values_list("owner_id", flat=True).distinct()
        )
        todo = [oid for oid in todo if oid in with_lines]
    if not todo:
        return []
    numbers = _numbers(todo, period_end)
    made = Statement.objects.bulk_create(
        Statement(number=numbers[oid], owner_id=oid, period_start=period_start,
                  period_end=period_end)
        for oid in todo
    )
    ids = [s.pk for s in made]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE settlement_splitline AS l SET statement_id = s.id
              FROM settlement_statement AS s
             WHERE s.id = ANY(%s) AND l.owner_id = s.owner_id
               AND l.statement_id IS NULL AND l.occurred_at < s.period_end
            """,
            [ids],
        )
        cursor.execute(_TOTALS_SQL, {"ids": ids, "share": SplitLine.Kind.SHARE,
                                     "reversal": SplitLine.Kind.REVERSAL})
    return list(Statement.objects.filter(pk__in=ids).order_by("owner_id"))


# The statement's figures from its lines, for many statements at once: the orders behind its
# share lines (each once), the shares, everything else as adjustments (refund reversals,
# carried amounts, withdrawals paid ahead), the refunds behind its reversals.
_TOTALS_SQL = """
WITH lines AS (
    SELECT statement_id,
           COALESCE(SUM(amount) FILTER (WHERE kind = %(share)s), 0) AS share,
           COALESCE(SUM(amount) FILTER (WHERE kind <> %(share)s), 0) AS adjustments,
           COALESCE(SUM(refund) FILTER (WHERE kind = %(reversal)s), 0) AS refunds,
           SUM(amount) AS net
      FROM settlement_splitline WHERE statement_id = ANY(%(ids)s) GROUP BY statement_id
), orders AS (
    SELECT o.statement_id, COUNT(*) AS n, SUM(x.energy_kwh) AS energy, SUM(x.gross) AS gross,
           SUM(x.discount) AS discounts, SUM(x.payment_fee) AS fees, SUM(x.commission) AS commission
      FROM (SELECT DISTINCT statement_id, split_id FROM settlement_splitline
             WHERE statement_id = ANY(%(ids)s) AND kind = %(share)s AND split_id IS NOT NULL) AS o
      JOIN settlement_ordersplit AS x ON x.id = o.split_id
     GROUP BY o.statement_id
)
UPDATE settlement_statement AS s
   SET orders = COALESCE(orders.n, 0), energy_kwh = COALESCE(orders.energy, 0),
       gross = COALESCE(orders.gross, 0), discounts = COALESCE(orders.discounts, 0),
       payment_fees = COALESCE(orders.fees, 0), commission = COALESCE(orders.commission, 0),
       refunds = COALESCE(lines.refunds, 0), share = COALESCE(lines.share, 0),
       adjustments = COALESCE(lines.adjustments, 0), net = COALESCE(lines.net, 0)
  FROM settlement_statement AS t
  LEFT JOIN lines ON lines.statement_id = t.id
  LEFT JOIN orders ON orders.statement_id = t.id
 WHERE s.id = t.id AND t.id = ANY(%(ids)s)
"""


def _owner_accounts(owner_ids: list[int]) -> list[Account]:
    """The owners' payable accounts, made for the few owners who have none yet."""
    found = list(Account.objects.filter(kind=Account.Kind.OWNER_PAYABLE, owner_id__in=owner_ids))
    have = {a.owner_id for a in found}
    return found + [ledger.owner_account(oid) for oid in owner_ids if oid not in have]


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
    at least ``delay_days`` ago, if there is anything on it and it is not built yet. Owners
    whose contracts give the same period are built together, set-based (``_build_many``),
    in one transaction per period."""
    now = now or timezone.now()
    zone = operator_zone()
    periods: dict[tuple[datetime, datetime], list[int]] = {}
    for owner_id, cycle, delay in OwnerContract.objects.values_list("owner_id", "cycle", "delay_days"):
        cutoff = (now - timedelta(days=delay)).astimezone(zone)
        start, _end = period_bounds(cycle, cutoff.date(), zone)
        periods.setdefault(period_bounds(cycle, (start - timedelta(days=1)).date(), zone), []).append(owner_id)
    built: list[Statement] = []
    for (start, end), owner_ids in sorted(periods.items()):
        with transaction.atomic():
            built += _build_many(sorted(owner_ids), start, end, only_with_lines=True)
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
    payout = Payout.objects.select_for_update(of=("self",)).select_related("statement").get(pk=payout_id)
    if payout.status not in Payout.OPEN:
        return payout
    now = timezone.now()
    if payout.withdrawal_id:  # an owner's withdrawal, not a statement
        from .withdrawals import payout_finished

        payout_finished(payout, success=success, reason=reason)
        payout.status = Payout.Status.SUCCESS if success else Payout.Status.FAILED
        payout.fail_reason, payout.finished_at = ("" if success else reason[:200]), now
        payout.save(update_fields=["status", "fail_reason", "finished_at"])
        return payout
    statement = _locked(payout.statement_id)
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
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
