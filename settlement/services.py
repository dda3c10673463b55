"""Ledger writes. Each public function is one transaction and idempotent by ``key``.

Amounts are yuan (``Decimal``, rounded once to 0.01 by ``evplatform.money.yuan``). A
posting written under a key is returned as is when the same key comes again (a retry,
a duplicate notification), whatever the other arguments: callers derive keys from what
makes the movement unique (``wx:txn:<transaction_id>``, ``order:<no>:charge``…).

Locks: the account rows a posting touches are locked with ``_lock`` in primary-key
order; a hold row, when involved, is locked before its accounts. The idempotency key is
checked after the locks are taken, so two concurrent calls with one key write once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.money import ZERO, yuan

from .models import Account, Entry, Hold, MoneyPolicy, Posting

Kind = Account.Kind
Line = tuple[Account, Decimal]


class LedgerError(Exception):
    """A refused movement; ``code`` is stable (e.g. ``insufficient_funds``)."""

    code = "ledger_error"

    def __init__(self, detail: str, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"


# --------------------------------------------------------------------------- accounts
def system_account(kind: str) -> Account:
    """The operator's single account of ``kind`` (clearing, revenue, transit…)."""
    account, _created = Account.objects.get_or_create(
        code=kind, defaults={"kind": kind, "allow_negative": kind in Account.MAY_GO_NEGATIVE}
    )
    return account


@dataclass(frozen=True)
class MemberAccounts:
    cash: Account
    bonus: Account
    held_cash: Account
    held_bonus: Account
    arrears: Account

    def all(self) -> list[Account]:
        return [self.cash, self.bonus, self.held_cash, self.held_bonus, self.arrears]


def member_accounts(member: Member) -> MemberAccounts:
    """The member's five wallet accounts, created on first use."""
    made = {}
    for kind in Account.MEMBER_KINDS:
        made[kind], _created = Account.objects.get_or_create(
            code=f"{kind}:{member.pk}", defaults={"kind": kind, "member": member}
        )
    return MemberAccounts(
        made[Kind.WALLET_CASH],
        made[Kind.WALLET_BONUS],
        made[Kind.HELD_CASH],
        made[Kind.HELD_BONUS],
        made[Kind.ARREARS],
    )


def _member_accounts_locked(member: Member, kind: str
                            ) -> tuple[MemberAccounts, Account, dict[int, Account]]:
    """The member's five wallet accounts and the operator's account of ``kind``, locked in
    primary-key order (as ``_lock``) and fresh, in one statement once they all exist (a
    settlement's hot path; issue #22): (accounts, that account, {pk: locked account})."""
    codes = [*(f"{k}:{member.pk}" for k in Account.MEMBER_KINDS), kind]
    rows = list(Account.objects.select_for_update().filter(code__in=codes).order_by("pk"))
    if len(rows) < len(codes):  # first use: made (outside the lock), then locked
        accounts, system = member_accounts(member), system_account(kind)
        return accounts, system, _lock([*accounts.all(), system])
    by_code = {a.code: a for a in rows}
    made = {k: by_code[f"{k}:{member.pk}"] for k in Account.MEMBER_KINDS}
    accounts = MemberAccounts(made[Kind.WALLET_CASH], made[Kind.WALLET_BONUS],
                              made[Kind.HELD_CASH], made[Kind.HELD_BONUS], made[Kind.ARREARS])
    return accounts, by_code[kind], {a.pk: a for a in rows}


def owner_account(owner_id: int) -> Account:
    account, _created = Account.objects.get_or_create(
        code=f"{Kind.OWNER_PAYABLE}:{owner_id}",
        defaults={"kind": Kind.OWNER_PAYABLE, "owner_id": owner_id, "allow_negative": True},
    )
    return account


def accounts_locked(*, kinds: Sequence[str] = (), owner_ids: Sequence[int] = ()) -> dict[str, Account]:
    """The operator's accounts of ``kinds`` and the payables of ``owner_ids``, made when
    missing, locked and fresh, in one query once they exist: {code: account}. Locks in
    primary-key order like ``_lock``. Caller holds a transaction."""
    codes = [*kinds, *(f"{Kind.OWNER_PAYABLE}:{oid}" for oid in owner_ids)]
    query = Account.objects.select_for_update().filter(code__in=codes).order_by("pk")
    found = {a.code: a for a in query}
    if len(found) < len(set(codes)):
        for kind in kinds:
            system_account(kind)
        for oid in owner_ids:
            owner_account(oid)
        found = {a.code: a for a in query.all()}
    return found


def partner_account(partner: str) -> Account:
    """The receivable of interconnection partner ``partner`` (its 9-character OperatorID):
    what the orders its drivers ran on our piles owe us (debit-normal)."""
    account, _created = Account.objects.get_or_create(
        code=f"{Kind.PARTNER_RECEIVABLE}:{partner}",
        defaults={"kind": Kind.PARTNER_RECEIVABLE, "allow_negative": True},
    )
    return account


def money_policy() -> MoneyPolicy:
    """This operator's money policy (made with defaults on first use)."""
    return MoneyPolicy.load()


# --------------------------------------------------------------------------- core
def _lock(accounts: Iterable[Account]) -> dict[int, Account]:
    """Lock the account rows in primary-key order (no deadlocks) and return them fresh."""
    ids = sorted({a.pk for a in accounts})
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def _existing(key: str) -> Posting | None:
    return Posting.objects.filter(key=key).first()


def _write(
    *,
    key: str,
    kind: str,
    lines: Sequence[Line],
    locked: Mapping[int, Account],
    member: Member | None = None,
    ref: str = "",
    memo: str = "",
    reverses: Posting | None = None,
) -> Posting:
    """Append a balanced posting. The caller holds the locks in ``locked`` and an atomic block.

    Zero lines are dropped. Raises InsufficientFunds if an account that may not go
    negative would, LedgerError if the lines do not balance.
    """
    merged: dict[int, Decimal] = {}
    for account, amount in lines:
        merged[account.pk] = merged.get(account.pk, ZERO) + yuan(amount)
    merged = {pk: amount for pk, amount in merged.items() if amount != 0}
    if sum(merged.values(), ZERO) != 0:
        raise LedgerError(f"unbalanced posting {key}: {merged}")
    if not merged:
        raise LedgerError(f"empty posting {key}")
    for pk, amount in merged.items():
        account = locked[pk]
        delta = amount if account.debit_normal else -amount
        if not account.allow_negative and account.balance + delta < 0:
            raise InsufficientFunds(_("Not enough funds."))
    posting = Posting.objects.create(
        key=key, kind=kind, member=member, ref=ref, memo=memo[:200], reverses=reverses
    )
    Entry.objects.bulk_create(
        Entry(posting=posting, account_id=pk, amount=amount) for pk, amount in merged.items()
    )
    deltas = []
    for pk, amount in merged.items():
        account = locked[pk]
        delta = amount if account.debit_normal else -amount
        deltas.append((pk, delta))
        account.balance += delta  # keep the locked copy current for later postings
    # One statement for every account the posting touches (the rows are locked already).
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Account._meta.db_table} AS a SET balance = a.balance + v.delta "
            "FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, delta) WHERE a.id = v.id",
            [[pk for pk, _d in deltas], [d for _pk, d in deltas]],
        )
    return posting


def _split(available: Sequence[Decimal], amount: Decimal) -> list[Decimal]:
    """Take ``amount`` from the sources in order, each up to what it has."""
    taken, left = [], amount
    for have in available:
        part = min(have, left) if left > 0 else ZERO
        taken.append(part)
        left -= part
    return taken


# --------------------------------------------------------------------------- generic
@transaction.atomic
def posting_create(
    *,
    key: str,
    kind: str,
    lines: Sequence[Line],
    member: Member | None = None,
    ref: str = "",
    memo: str = "",
) -> Posting:
    """Write any balanced posting (debit positive). Idempotent by ``key``."""
    locked = _lock(account for account, _amount in lines)
    return _existing(key) or _write(
        key=key, kind=kind, lines=lines, locked=locked, member=member, ref=ref, memo=memo
    )


@transaction.atomic
def posting_reverse(
    *, posting: Posting, key: str, amount: Decimal | None = None, memo: str = ""
) -> Posting:
    """A correction: the opposite of ``posting``, in full or for ``amount`` yuan.

    Partial: the money is given back to the debited side in the order its lines were
    written (for an order charge: arrears first, then cash, then bonus) and taken from
    the credited side in proportion (largest remainder). Several partial reversals may
    follow each other up to the original amount; more raises LedgerError
    (``reversal_exceeds``). Raises InsufficientFunds if a credited account (e.g. a
    wallet that received a top-up) no longer holds the money.
    """
    original = Posting.objects.select_for_update().get(pk=posting.pk)
    entries = list(original.entries.select_related("account").order_by("id"))
    locked = _lock(e.account for e in entries)
    if existing := _existing(key):
        return existing
    # What earlier partial reversals already gave back, per account (one line per account).
    prior = dict(
        Entry.objects.filter(posting__reverses=original)
        .values("account_id")
        .annotate(s=Sum("amount"))
        .values_list("account_id", "s")
    )
    debits = [(e.account, e.amount + prior.get(e.account_id, ZERO)) for e in entries if e.amount > 0]
    credits = [(e.account, -e.amount - prior.get(e.account_id, ZERO)) for e in entries if e.amount < 0]
    left = sum((have for _account, have in debits), ZERO)
    amount = left if amount is None else yuan(amount)
    if amount <= 0 or amount > left:
        raise LedgerError(_("More than what is left to reverse."), "reversal_exceeds")
    back = _split([have for _account, have in debits], amount)
    lines = [(account, -part) for (account, _have), part in zip(debits, back, strict=True)]
    lines += _proportional(credits, amount)
    return _write(
        key=key,
        kind=Posting.Kind.REVERSAL,
        lines=lines,
        locked=locked,
        member=original.member,
        ref=original.ref,
        memo=memo or original.memo,
        reverses=original,
    )


def _proportional(credits: Sequence[tuple[Account, Decimal]], amount: Decimal) -> list[Line]:
    """Debit the credited lines (account, what is left) by ``amount`` in proportion; the
    remainder cents go to the largest fractions."""
    whole = sum((have for _account, have in credits), ZERO)
    raw = [have * amount / whole for _account, have in credits]
    parts = [r.quantize(Decimal("0.01"), rounding="ROUND_DOWN") for r in raw]
    left = int((amount - sum(parts, ZERO)) * 100)
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[:left]:
        parts[i] += Decimal("0.01")
    return [(account, part) for (account, _have), part in zip(credits, parts, strict=True)]


# --------------------------------------------------------------------------- wallet
@transaction.atomic
def wallet_top_up(
    *, member: Member, amount: Decimal, key: str, bonus: Decimal = ZERO, ref: str = "", memo: str = ""
) -> Posting:
    """Credit a paid top-up: ``amount`` yuan cash (from WeChat clearing) and ``bonus`` yuan
    gift balance (a promotion expense). Then pays off arrears from the new cash."""
    accounts = member_accounts(member)
    clearing, promotion = system_account(Kind.CLEARING), system_account(Kind.PROMOTION)
    locked = _lock([*accounts.all(), clearing, promotion])
    if existing := _existing(key):
        return existing
    amount, bonus = yuan(amount), yuan(bonus)
    lines = [(clearing, amount), (accounts.cash, -amount)]
    if bonus > 0:
        lines += [(promotion, bonus), (accounts.bonus, -bonus)]
    posting = _write(
        key=key, kind=Posting.Kind.TOP_UP, lines=lines, locked=locked, member=member, ref=ref,
        memo=memo,
    )
    _arrears_settle(accounts, locked, key=f"{key}:arrears", member=member, ref=ref)
    return posting


def _arrears_settle(
    accounts: MemberAccounts, locked: Mapping[int, Account], *, key: str, member: Member, ref: str
) -> None:
    owed = locked[accounts.arrears.pk].balance
    pay = min(owed, locked[accounts.cash.pk].balance)
    if pay > 0:
        _write(
            key=key,
            kind=Posting.Kind.ARREARS_SETTLE,
            lines=[(accounts.cash, pay), (accounts.arrears, -pay)],
            locked=locked,
            member=member,
            ref=ref,
        )


def _spend_sources(accounts: MemberAccounts, locked: Mapping[int, Account]) -> list[Account]:
    cash, bonus = locked[accounts.cash.pk], locked[accounts.bonus.pk]
    bonus_first = money_policy().spend_order == MoneyPolicy.SpendOrder.BONUS_FIRST
    return [bonus, cash] if bonus_first else [cash, bonus]


@transaction.atomic
def wallet_hold(*, member: Member, amount: Decimal, key: str) -> Hold:
    """Reserve ``amount`` yuan of the member's available balance for an order in progress.

    Takes cash and bonus in the policy's spend order. Idempotent by ``key`` (the same
    hold comes back). Raises InsufficientFunds when the available balance is smaller.
    """
    amount = yuan(amount)
    if amount <= 0:
        raise LedgerError(_("The amount must be positive."), "invalid_amount")
    accounts = member_accounts(member)
    locked = _lock(accounts.all())
    if existing := Hold.objects.filter(key=key).first():
        return existing
    sources = _spend_sources(accounts, locked)
    if sum((s.balance for s in sources), ZERO) < amount:
        raise InsufficientFunds(_("Not enough balance."))
    parts = dict(zip((s.pk for s in sources), _split([s.balance for s in sources], amount), strict=True))
    cash, bonus = parts[accounts.cash.pk], parts[accounts.bonus.pk]
    posting = _write(
        key=f"hold:{key}",
        kind=Posting.Kind.HOLD,
        lines=[
            (accounts.cash, cash), (accounts.held_cash, -cash),
            (accounts.bonus, bonus), (accounts.held_bonus, -bonus),
        ],
        locked=locked,
        member=member,
        ref=key[:64],
    )
    return Hold.objects.create(key=key, member=member, cash=cash, bonus=bonus, posting=posting)


def _hold_release(hold: Hold, accounts: MemberAccounts, locked, *, status: str) -> None:
    _write(
        key=f"hold:{hold.key}:release",
        kind=Posting.Kind.HOLD_RELEASE,
        lines=[
            (accounts.held_cash, hold.cash), (accounts.cash, -hold.cash),
            (accounts.held_bonus, hold.bonus), (accounts.bonus, -hold.bonus),
        ],
        locked=locked,
        member=hold.member,
        ref=hold.key[:64],
    )
    hold.status = status
    hold.closed_at = timezone.now()
    hold.save(update_fields=["status", "closed_at"])


@transaction.atomic
def wallet_hold_release(*, key: str) -> Hold:
    """Give a hold back to the member's balance (an order failed to start). Idempotent;
    a hold already released or consumed is returned unchanged. Raises Hold.DoesNotExist."""
    hold = Hold.objects.select_for_update().select_related("member").get(key=key)
    if hold.status != Hold.Status.HELD:
        return hold
    accounts = member_accounts(hold.member)
    locked = _lock(accounts.all())
    _hold_release(hold, accounts, locked, status=Hold.Status.RELEASED)
    return hold


@transaction.atomic
def order_charge(
    *,
    member: Member,
    amount: Decimal,
    key: str,
    hold_key: str | None = None,
    memo: str = "",
    ref: str = "",
) -> Posting:
    """The member pays ``amount`` yuan for an order.

    The hold ``hold_key`` (if any, and still held) is released first, then the amount is
    taken from the wallet in the policy's spend order (default cash, then bonus); what the
    wallet cannot cover is booked as the member's arrears (cash never goes negative) and
    paid off by the next top-up. It is credited to operator revenue; the station owners' and
    the platform's shares move out of it in the split posting (``settlement.splits``), in the
    same transaction. Idempotent by ``key``.
    """
    amount = yuan(amount)
    if amount < 0:
        raise LedgerError(_("The amount must not be negative."), "invalid_amount")
    hold = Hold.objects.select_for_update().get(key=hold_key) if hold_key else None
    if hold is not None and hold.member_id == member.pk:
        hold.member = member  # its release posting names the member: no second read
    accounts, revenue, locked = _member_accounts_locked(member, Kind.REVENUE)
    if existing := _existing(key):
        return existing
    if hold is not None and hold.status == Hold.Status.HELD:
        _hold_release(hold, accounts, locked, status=Hold.Status.CONSUMED)
    sources = _spend_sources(accounts, locked)
    taken = _split([s.balance for s in sources], amount)
    by_pk = dict(zip((s.pk for s in sources), taken, strict=True))
    owed = amount - sum(taken, ZERO)
    lines: list[Line] = [
        (accounts.arrears, owed),
        (accounts.cash, by_pk[accounts.cash.pk]),
        (accounts.bonus, by_pk[accounts.bonus.pk]),
    ]
    lines.append((revenue, -amount))
    if amount == 0:
        return _zero_posting(key=key, member=member, ref=ref, memo=memo)
    return _write(
        key=key, kind=Posting.Kind.ORDER_CHARGE, lines=lines, locked=locked, member=member,
        ref=ref, memo=memo,
    )


@transaction.atomic
def partner_order_charge(
    *, partner: str, amount: Decimal, key: str, memo: str = "", ref: str = ""
) -> Posting | None:
    """A partner platform's order of ``amount`` yuan: debited to the partner's receivable,
    credited to operator revenue (the split moves the shares out as for any order; the
    partner pays the receivable by transfer). Idempotent by ``key``; None for a free order."""
    amount = yuan(amount)
    if amount < 0:
        raise LedgerError(_("The amount must not be negative."), "invalid_amount")
    receivable = partner_account(partner)
    revenue = system_account(Kind.REVENUE)
    locked = _lock([receivable, revenue])
    if existing := _existing(key):
        return existing
    if amount == 0:
        return None
    return _write(
        key=key, kind=Posting.Kind.PARTNER_ORDER, lines=[(receivable, amount), (revenue, -amount)],
        locked=locked, ref=ref, memo=memo,
    )


@transaction.atomic
def roaming_order_charge(
    *, member: Member, partner: str, amount: Decimal, key: str, hold_key: str | None = None,
    memo: str = "", ref: str = "",
) -> Posting:
    """Our member pays ``amount`` yuan for an order on interconnection partner ``partner``'s
    pile: taken from the wallet as :func:`order_charge` takes it (the hold ``hold_key``
    consumed first; what the wallet cannot cover is the member's arrears) and credited to
    the partner's account (we owe the partner; its receivable goes down). No revenue and no
    split: the charge is the partner's. Idempotent by ``key``."""
    amount = yuan(amount)
    if amount < 0:
        raise LedgerError(_("The amount must not be negative."), "invalid_amount")
    hold = Hold.objects.select_for_update().get(key=hold_key) if hold_key else None
    accounts = member_accounts(member)
    partner_acc = partner_account(partner)
    locked = _lock([*accounts.all(), partner_acc])
    if existing := _existing(key):
        return existing
    if hold is not None and hold.status == Hold.Status.HELD:
        _hold_release(hold, accounts, locked, status=Hold.Status.CONSUMED)
    if amount == 0:
        return _zero_posting(key=key, member=member, ref=ref, memo=memo)
    sources = _spend_sources(accounts, locked)
    taken = _split([s.balance for s in sources], amount)
    by_pk = dict(zip((s.pk for s in sources), taken, strict=True))
    lines: list[Line] = [
        (accounts.arrears, amount - sum(taken, ZERO)),
        (accounts.cash, by_pk[accounts.cash.pk]),
        (accounts.bonus, by_pk[accounts.bonus.pk]),
        (partner_acc, -amount),
    ]
    return _write(
        key=key, kind=Posting.Kind.ROAMING_ORDER, lines=lines, locked=locked, member=member,
        ref=ref, memo=memo,
    )


def _zero_posting(*, key: str, member: Member, ref: str, memo: str) -> Posting:
    # A free order leaves a trace without entries (nothing moved).
    return Posting.objects.create(
        key=key, kind=Posting.Kind.ORDER_CHARGE, member=member, ref=ref, memo=memo
    )


@transaction.atomic
def wallet_cash_out(
    *, member: Member, amount: Decimal, transit: str, kind: str, key: str, ref: str = ""
) -> Posting:
    """Move ``amount`` yuan of free wallet cash to a transit account (refund or
    withdrawal requested). Raises InsufficientFunds."""
    accounts = member_accounts(member)
    transit_account = system_account(transit)
    locked = _lock([*accounts.all(), transit_account])
    if existing := _existing(key):
        return existing
    amount = yuan(amount)
    return _write(
        key=key, kind=kind, lines=[(accounts.cash, amount), (transit_account, -amount)],
        locked=locked, member=member, ref=ref,
    )


@transaction.atomic
def bonus_forfeit(*, member: Member, key: str, ref: str = "") -> Posting | None:
    """Forfeit the member's whole free bonus balance (back to promotion expense)."""
    accounts = member_accounts(member)
    promotion = system_account(Kind.PROMOTION)
    locked = _lock([*accounts.all(), promotion])
    if existing := _existing(key):
        return existing
    bonus = locked[accounts.bonus.pk].balance
    if bonus <= 0:
        return None
    return _write(
        key=key, kind=Posting.Kind.BONUS_FORFEIT,
        lines=[(accounts.bonus, bonus), (promotion, -bonus)],
        locked=locked, member=member, ref=ref,
    )


@transaction.atomic
def transit_settle(
    *, transit: str, amount: Decimal, kind: str, key: str, member: Member | None, ref: str = ""
) -> Posting:
    """Money in transit has left through WeChat: debit transit, credit clearing."""
    transit_account, clearing = system_account(transit), system_account(Kind.CLEARING)
    locked = _lock([transit_account, clearing])
    if existing := _existing(key):
        return existing
    amount = yuan(amount)
    return _write(
        key=key, kind=kind, lines=[(transit_account, amount), (clearing, -amount)],
        locked=locked, member=member, ref=ref,
    )


@transaction.atomic
def transit_return(
    *, member: Member, transit: str, amount: Decimal, kind: str, key: str, ref: str = ""
) -> Posting:
    """A refund or withdrawal failed: the money goes back to the member's wallet cash."""
    accounts = member_accounts(member)
    transit_account = system_account(transit)
    locked = _lock([*accounts.all(), transit_account])
    if existing := _existing(key):
        return existing
    amount = yuan(amount)
    posting = _write(
        key=key, kind=kind, lines=[(transit_account, amount), (accounts.cash, -amount)],
        locked=locked, member=member, ref=ref,
    )
    _arrears_settle(accounts, locked, key=f"{key}:arrears", member=member, ref=ref)
    return posting


@transaction.atomic
def prepay_received(*, member: Member, amount: Decimal, key: str, ref: str = "") -> Posting:
    """A pay-per-order prepayment arrived: debit clearing, credit prepaid orders."""
    clearing, prepaid = system_account(Kind.CLEARING), system_account(Kind.PREPAID)
    locked = _lock([clearing, prepaid])
    if existing := _existing(key):
        return existing
    amount = yuan(amount)
    return _write(
        key=key, kind=Posting.Kind.PREPAY_RECEIVED,
        lines=[(clearing, amount), (prepaid, -amount)],
        locked=locked, member=member, ref=ref,
    )


@transaction.atomic
def prepay_consume(
    *, member: Member, paid: Decimal, used: Decimal, key: str, ref: str = "", memo: str = ""
) -> Posting:
    """Settle a prepayment of ``paid`` yuan for an order that used ``used`` yuan: the used
    part goes to revenue (beyond ``paid``: the member's arrears), the rest to refunds in
    transit (the caller refunds it through WeChat)."""
    accounts = member_accounts(member)
    prepaid, revenue = system_account(Kind.PREPAID), system_account(Kind.REVENUE)
    refund_transit = system_account(Kind.REFUND_TRANSIT)
    locked = _lock([*accounts.all(), prepaid, revenue, refund_transit])
    if existing := _existing(key):
        return existing
    paid, used = yuan(paid), yuan(used)
    covered = min(paid, used)
    rest = paid - covered
    lines = [
        (prepaid, covered), (accounts.arrears, used - covered), (revenue, -used),
        (prepaid, rest), (refund_transit, -rest),
    ]
    return _write(
        key=key, kind=Posting.Kind.PREPAY_SETTLE, lines=lines, locked=locked, member=member,
        ref=ref, memo=memo,
    )
