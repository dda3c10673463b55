"""Ledger reads: wallet balances, a member's history, the ledger's own check."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Member
from evplatform.money import ZERO

from .models import Account, Entry, Payout, Posting, SplitLine

Kind = Account.Kind


@dataclass(frozen=True)
class WalletBalance:
    """Yuan. ``cash`` and ``bonus`` include what is held for orders in progress;
    ``available`` = what a new order or a hold may use; ``arrears`` = what the member owes."""

    cash: Decimal
    bonus: Decimal
    held: Decimal
    available: Decimal
    arrears: Decimal
    free_cash: Decimal  # cash not held: what a refund or withdrawal may take


def wallet_balance(member: Member) -> WalletBalance:
    """The member's balances from the cached account balances (no lock)."""
    rows = dict(
        Account.objects.filter(member=member).values_list("kind", "balance")
    )
    get = lambda kind: rows.get(kind, ZERO)  # noqa: E731
    cash, bonus = get(Kind.WALLET_CASH), get(Kind.WALLET_BONUS)
    held_cash, held_bonus = get(Kind.HELD_CASH), get(Kind.HELD_BONUS)
    return WalletBalance(
        cash=cash + held_cash,
        bonus=bonus + held_bonus,
        held=held_cash + held_bonus,
        available=cash + bonus,
        arrears=get(Kind.ARREARS),
        free_cash=cash,
    )


def _delta(kinds) -> Coalesce:
    # Wallet accounts are credit-normal: a credit (negative entry) raises the balance.
    return Coalesce(
        -Sum("entries__amount", filter=Q(entries__account__kind__in=kinds)),
        Value(ZERO),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def wallet_history(member: Member) -> QuerySet[Posting]:
    """The member's postings that changed cash, bonus or arrears, newest first, each
    annotated ``cash_delta``, ``bonus_delta`` (yuan, + = to the member) and
    ``arrears_delta`` (+ = the member owes more). Holds (cash → held) net to zero and
    are left out."""
    cash_kinds = [Kind.WALLET_CASH, Kind.HELD_CASH]
    bonus_kinds = [Kind.WALLET_BONUS, Kind.HELD_BONUS]
    return (
        Posting.objects.filter(member=member, entries__account__member=member)
        .annotate(
            cash_delta=_delta(cash_kinds),
            bonus_delta=_delta(bonus_kinds),
            arrears_delta=Coalesce(
                Sum("entries__amount", filter=Q(entries__account__kind=Kind.ARREARS)),
                Value(ZERO),
                output_field=DecimalField(max_digits=14, decimal_places=2),
            ),
        )
        .exclude(cash_delta=0, bonus_delta=0, arrears_delta=0)
        .order_by("-id")
    )


@dataclass
class LedgerReport:
    drift: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)  # code, cached, entries
    unbalanced: list[tuple[str, Decimal]] = field(default_factory=list)  # key, sum
    single_entry: list[str] = field(default_factory=list)
    negative: list[tuple[str, Decimal]] = field(default_factory=list)
    # owner payables that differ from their split lines minus payouts: code, balance, expected
    payables: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    accounts: int = 0
    postings: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.drift or self.unbalanced or self.single_entry or self.negative or self.payables
        )


def ledger_check() -> LedgerReport:
    """Recompute every account balance from its entries and check every posting balances."""
    report = LedgerReport()
    sums = dict(Entry.objects.values("account_id").annotate(s=Sum("amount")).values_list("account_id", "s"))
    for account in Account.objects.order_by("pk"):
        report.accounts += 1
        raw = sums.get(account.pk) or ZERO
        computed = raw if account.debit_normal else -raw
        if computed != account.balance:
            report.drift.append((account.code, account.balance, computed))
        if not account.allow_negative and account.balance < 0:
            report.negative.append((account.code, account.balance))
    expected = owner_payable_expected()
    for account in Account.objects.filter(kind=Kind.OWNER_PAYABLE):
        want = expected.pop(account.owner_id, ZERO)
        if account.balance != want:
            report.payables.append((account.code, account.balance, want))
    for owner_id, want in expected.items():
        if want:
            report.payables.append((f"{Kind.OWNER_PAYABLE}:{owner_id}", ZERO, want))
    report.postings = Posting.objects.count()
    for key, total, count in (
        Posting.objects.annotate(s=Sum("entries__amount"), n=Count("entries"))
        .filter(Q(n=1) | ~Q(s=0))
        .values_list("key", "s", "n")
    ):
        if count == 1:
            report.single_entry.append(key)
        if total:
            report.unbalanced.append((key, total))
    return report


def owner_payable_expected() -> dict[int, Decimal]:
    """Per owner (user id): Σ payable lines (shares, refund reversals, carried amounts,
    withdrawals and their returns) − statements' payouts not failed, in yuan: what each owner's payable balance must be."""
    expected: dict[int, Decimal] = dict(
        SplitLine.objects.values_list("owner_id").annotate(s=Sum("amount")).values_list("owner_id", "s")
    )
    paid = (
        # A withdrawal's payout is already a line (−amount) when it is asked for.
        Payout.objects.exclude(status=Payout.Status.FAILED).filter(statement__isnull=False)
        .values_list("statement__owner_id").annotate(s=Sum("amount"))
        .values_list("statement__owner_id", "s")
    )
    for owner_id, amount in paid:
        expected[owner_id] = expected.get(owner_id, ZERO) - amount
    return expected


def partner_receivable(partner: str) -> Decimal:
    """What interconnection partner ``partner`` (OperatorID) owes us for its drivers'
    orders, yuan (0 before its first order)."""
    account = Account.objects.filter(code=f"{Account.Kind.PARTNER_RECEIVABLE}:{partner}").first()
    return account.balance if account is not None else ZERO
