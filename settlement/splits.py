"""Revenue split: rule versions, and the split of every settled order in the ledger.

An order's split is posted in the same transaction as its charge (the caller's, e.g.
``charging.funds.capture_for_order``): the charge credits operator revenue with what the
member pays, and the split posting (key ``order:<no>:split``) moves the owners' shares and
the platform commission out of it — debit operator revenue, credit each
``owner_payable:<user>`` and ``platform_commission``. A refund of the order reverses the split
in proportion to what was refunded, cumulatively (``order:<no>:split:refund:<refunded>``),
so a full refund reverses it exactly; an owner already paid goes negative and the next
statement nets it off.

Which rule: the pile's own rule in force when the order started, else the station's
(``split_rule_in_force``); the version used is recorded on the :class:`OrderSplit`. Rule
versions are not edited once used: ``split_rule_create`` writes the next version.

Rounding: ``settlement.allocation.allocate`` (largest remainder, fen to the operator), the
payment fee and proportional parts once each through ``evplatform.money``.
Locks: the :class:`OrderSplit` row (refunds), then the ledger's own account locks.

Cost at settlement (``benchmarks/settlement.py``): one statement. The rule comes from a
per-process cache of the station's immutable rule versions, stamped with how many there are
and the newest id; the statement that writes the split confirms the stamp, that the order
has no split yet and that the accounts exist, locks the accounts and writes the posting,
entries, balances, split and lines — or writes nothing and says which check failed. It is a
prepared statement (``evplatform.prepared``: not planned again per order) and finds the
accounts by their cached ids, confirmed by code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from evplatform.errors import DomainError
from evplatform.money import ZERO, yuan
from evplatform.prepared import execute_prepared_one

from . import services as ledger
from .allocation import OPERATOR, Party, allocate, proportional_part
from .models import Account, Entry, OrderSplit, Posting, SplitLine, SplitRule, SplitShare

HUNDRED = Decimal(100)
PLATFORM = "platform"


class SettlementError(DomainError):
    """A refused settlement action (split rules, statements, payouts)."""

    code = "settlement_refused"
    status = 400


def commission_percent() -> Decimal:
    """The current operator's platform commission (%), set by the super admin."""
    return Decimal(getattr(connection.tenant, "commission_percent", 0) or 0)


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class ShareInput:
    owner_id: int
    kind: str  # SplitShare.Kind
    value: Decimal


def split_rule_validate(
    *, shares: Sequence[ShareInput], commission: Decimal | None = None
) -> None:
    """Refuse shares that cannot be split: SettlementError ``shares_exceed_base`` (the
    owners' percentages plus the platform commission above 100 %), ``share_negative``,
    ``owner_twice``."""
    commission = commission_percent() if commission is None else commission
    owners = [s.owner_id for s in shares]
    if len(set(owners)) != len(owners):
        raise SettlementError("owner_twice", _("An owner appears twice in the rule."))
    if any(Decimal(s.value) < 0 for s in shares):
        raise SettlementError("share_negative", _("A share must not be negative."))
    percent = sum((Decimal(s.value) for s in shares if s.kind == SplitShare.Kind.PERCENT), ZERO)
    if percent + commission > HUNDRED:
        raise SettlementError(
            "shares_exceed_base",
            _("The owners' shares (%(owners)s%%) and the platform commission (%(platform)s%%) "
              "exceed 100%%.") % {"owners": percent, "platform": commission},
        )


@transaction.atomic
def split_rule_create(
    *,
    station_id: int,
    pile_id: int | None = None,
    effective_from: datetime | None = None,
    base: str = SplitRule.Base.SERVICE,
    fee_bearer: str = SplitRule.FeeBearer.OPERATOR,
    payment_fee_percent: Decimal = Decimal("0.60"),
    discounts_reduce_base: bool = True,
    profit_sharing: bool = False,
    shares: Sequence[ShareInput] = (),
    note: str = "",
    user=None,
) -> SplitRule:
    """Write the next version of the station's (or pile's) split rule, in force from
    ``effective_from`` (default now). Raises SettlementError (see ``split_rule_validate``)."""
    split_rule_validate(shares=shares)
    # The station's rule rows are serialised by locking the newest version, if any.
    scope = SplitRule.objects.filter(station_id=station_id, pile_id=pile_id)
    list(scope.select_for_update().order_by("-version")[:1])
    version = (scope.aggregate(v=Max("version"))["v"] or 0) + 1
    rule = SplitRule.objects.create(
        station_id=station_id, pile_id=pile_id, version=version,
        effective_from=effective_from or timezone.now(), base=base, fee_bearer=fee_bearer,
        payment_fee_percent=payment_fee_percent, discounts_reduce_base=discounts_reduce_base,
        profit_sharing=profit_sharing, note=note[:200], created_by=user,
    )
    SplitShare.objects.bulk_create(
        SplitShare(rule=rule, owner_id=s.owner_id, kind=s.kind, value=s.value) for s in shares
    )
    if user is not None:
        audit.record(user, "split_rule.change", rule, detail=note[:200], changes={
            "version": [version - 1 or None, version],
            "shares": [None, [f"{s.owner_id}:{s.kind}:{s.value}" for s in shares]]})
    return rule


def split_rule_in_force(*, station_id: int, pile_id: int | None, at: datetime) -> SplitRule | None:
    """The pile's own rule in force at ``at``, else the station's; None when neither."""
    candidates = (
        SplitRule.objects.filter(station_id=station_id, effective_from__lte=at)
        .filter(Q(pile_id=pile_id) | Q(pile__isnull=True) if pile_id else Q(pile__isnull=True))
        .order_by("pile_id", "-effective_from", "-version")  # NULLS LAST: pile rules first
    )
    return candidates.prefetch_related("shares").first()


# --------------------------------------------------------------------------- rule cache
@dataclass(frozen=True)
class ShareTerms:
    owner_id: int
    kind: str  # SplitShare.Kind
    value: Decimal


@dataclass(frozen=True)
class RuleTerms:
    """One rule version as settlement reads it (immutable: versions are never edited once
    written, so a cached copy stays right until a newer version appears)."""

    pk: int
    pile_id: int | None
    version: int
    effective_from: datetime
    base: str
    fee_bearer: str
    payment_fee_percent: Decimal
    discounts_reduce_base: bool
    profit_sharing: bool
    shares: tuple[ShareTerms, ...]


# Process-local: {(schema, station_id): (stamp, [RuleTerms, newest first])}. The stamp is
# (how many versions, the highest id) as read with them. Versions are only ever added
# (``split_rule_create``; never edited or deleted), so a copy is right while the station's
# stamp in the database is the same: the settlement's writing statement compares it and
# writes nothing when it moved (a version written by any process), and the rules are read
# again. No shared token to read per order, nothing to lose when Redis loses everything.
RulesStamp = tuple[int, int]
_RULES: dict[tuple[str, int], tuple[RulesStamp, list[RuleTerms]]] = {}


# Process-local: {(schema, account code): account id} for the accounts a split posts to
# (operator revenue, platform commission, each owner's payable). Accounts are never deleted
# and their codes never change, so the writing statement finds them by primary key (cheap
# even while the hot revenue row carries many dead versions) and confirms the code: an id
# that no longer names that code (a rolled-back test database) finds nothing, and the ids
# are read again.
_ACCOUNT_IDS: dict[tuple[str, str], int] = {}


def rule_cache_clear() -> None:
    """Forget every cached rule and account id in this process (tests roll the database
    back under it)."""
    _RULES.clear()
    _ACCOUNT_IDS.clear()


def _rules_stamp(station_id: int) -> RulesStamp:
    """The station's rule stamp in the database (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(max(id), 0) FROM {SplitRule._meta.db_table} "
            "WHERE station_id = %s", [station_id])
        count, top = cursor.fetchone()
    return int(count), int(top)


def _station_rules_read(station_id: int) -> tuple[RulesStamp, list[RuleTerms]]:
    _RULES.pop((connection.schema_name, station_id), None)
    return _station_rules(station_id, checked=False)


def _station_rules(station_id: int, *, checked: bool = True) -> tuple[RulesStamp, list[RuleTerms]]:
    """Every rule version of the station (its piles' too), newest first, with their stamp:
    from the process cache (no query) when ``checked`` is False and the caller compares the
    stamp itself, else checked against the database (one query); two queries to read them."""
    key = (connection.schema_name, station_id)
    cached = _RULES.get(key)
    if cached is not None and (not checked or cached[0] == _rules_stamp(station_id)):
        return cached
    rules = [
        RuleTerms(
            pk=r.pk, pile_id=r.pile_id, version=r.version, effective_from=r.effective_from,
            base=r.base, fee_bearer=r.fee_bearer, payment_fee_percent=r.payment_fee_percent,
            discounts_reduce_base=r.discounts_reduce_base, profit_sharing=r.profit_sharing,
            shares=tuple(ShareTerms(s.owner_id, s.kind, s.value) for s in r.shares.all()),
        )
        for r in SplitRule.objects.filter(station_id=station_id)
        .order_by("-effective_from", "-version").prefetch_related("shares")
    ]
    _RULES[key] = entry = ((len(rules), max((r.pk for r in rules), default=0)), rules)
    return entry


def _in_force(rules: Sequence[RuleTerms], *, pile_id: int | None, at: datetime) -> RuleTerms | None:
    rules = [r for r in rules if r.effective_from <= at]
    if pile_id is not None:
        for rule in rules:
            if rule.pile_id == pile_id:
                return rule
    return next((r for r in rules if r.pile_id is None), None)


def split_terms_in_force(*, station_id: int, pile_id: int | None, at: datetime) -> RuleTerms | None:
    """What ``split_rule_in_force`` finds, from the rule cache: the pile's own rule in force
    at ``at`` (latest ``effective_from``, then version), else the station's; None when
    neither. Checks the cache against the database (one query; three when not cached)."""
    return _in_force(_station_rules(station_id)[1], pile_id=pile_id, at=at)


@dataclass(frozen=True)
class SplitFigures:
    """One order's split, in yuan: what it is computed from and who gets what."""

    gross: Decimal
    discount: Decimal
    payment_fee: Decimal
    base: Decimal
    commission_percent: Decimal
    parts: dict[str, Decimal]  # "platform", "owner:<id>", "operator"

    @property
    def commission(self) -> Decimal:
        return self.parts.get(PLATFORM, ZERO)

    def owner_parts(self) -> dict[int, Decimal]:
        return {int(k.split(":")[1]): v for k, v in self.parts.items() if k.startswith("owner:")}


def split_compute(
    *,
    rule: SplitRule | RuleTerms | None,
    paid: Decimal,
    electricity: Decimal,
    service: Decimal,
    discount: Decimal,
    energy_kwh: Decimal,
    commission: Decimal | None = None,
) -> SplitFigures:
    """Apply ``rule`` to one order (yuan; ``paid`` is what the member pays after discounts).

    Base: the service fee, or electricity + service, less the discount when the rule says
    discounts reduce it (at most down to 0), less the payment fee (``paid`` × fee %) when the
    base is net of it or the parties share it in proportion; never more than ``paid``. With
    no rule the base is what was paid and only the platform commission is taken.
    """
    commission = commission_percent() if commission is None else Decimal(commission)
    paid, discount = yuan(paid), yuan(discount)
    if rule is None:
        fee = ZERO
        base = paid
        parties: list[Party] = []
    else:
        fee = yuan(paid * rule.payment_fee_percent / HUNDRED)
        gross = yuan(service) if rule.base == SplitRule.Base.SERVICE else yuan(electricity + service)
        if rule.discounts_reduce_base:
            gross = max(gross - discount, ZERO)
        base = min(gross, paid)
        if rule.base == SplitRule.Base.NET:
            base = max(base - fee, ZERO)
        elif rule.fee_bearer == SplitRule.FeeBearer.SHARED and paid > 0:
            base = max(base - proportional_part(fee, base, paid), ZERO)
        parties = [
            Party(
                f"owner:{s.owner_id}",
                percent=s.value if s.kind == SplitShare.Kind.PERCENT else None,
                per_kwh=s.value if s.kind == SplitShare.Kind.PER_KWH else None,
            )
            for s in (rule.shares if isinstance(rule, RuleTerms) else rule.shares.all())
        ]
    parts = allocate(
        base=base, energy_kwh=energy_kwh, parties=[Party(PLATFORM, percent=commission), *parties]
    )
    return SplitFigures(
        gross=yuan(electricity + service), discount=discount, payment_fee=fee, base=base,
        commission_percent=commission, parts=parts,
    )


def profit_sharing_in_force(*, station_id: int, pile_id: int | None, at: datetime) -> bool:
    """Whether the rule in force says pay-per-order payments are split by WeChat 分账."""
    terms = split_terms_in_force(station_id=station_id, pile_id=pile_id, at=at)
    return bool(terms and terms.profit_sharing and terms.shares)


# --------------------------------------------------------------------------- orders
_ATTEMPTS = 5  # a stale rule cache, then an owner's first order (accounts made): each one more


@transaction.atomic(savepoint=False)
def order_split_settle(
    *,
    order_ref: str,
    station_id: int,
    pile_id: int | None,
    started_at: datetime,
    paid: Decimal,
    electricity: Decimal,
    service: Decimal,
    discount: Decimal,
    energy_kwh: Decimal,
    energy_by_period: dict[str, str] | None = None,
    settled_at: datetime | None = None,
) -> OrderSplit | None:
    """Split a settled order's revenue (yuan) and post it. Call it in the transaction that
    posts the order's charge. Idempotent by ``order_ref`` (a repeat returns the split made
    first and writes nothing). None when nothing is split (no rule and no commission).

    The rule is the version in force at ``started_at`` (``split_terms_in_force``), taken from
    the process cache and confirmed by the writing statement itself: when a version was added
    since (by any process) nothing is written, the rules are read again and the split
    computed again. Cost once warm: that one statement (``_split_write``)."""
    commission = commission_percent()
    settled_at = settled_at or timezone.now()
    stamp, rules = _station_rules(station_id, checked=False)
    for _attempt in range(_ATTEMPTS):
        rule = _in_force(rules, pile_id=pile_id, at=started_at)
        if rule is None and commission == 0:
            split = None
        else:
            figures = split_compute(
                rule=rule, paid=paid, electricity=electricity, service=service,
                discount=discount, energy_kwh=energy_kwh, commission=commission,
            )
            owners = {oid: amount for oid, amount in figures.owner_parts().items() if amount}
            split = OrderSplit(
                order_ref=order_ref, station_id=station_id, rule_id=rule.pk if rule else None,
                energy_kwh=energy_kwh, energy_by_period=energy_by_period or {},
                gross=figures.gross, discount=figures.discount, payment_fee=figures.payment_fee,
                base=figures.base, commission=figures.commission,
                commission_percent=figures.commission_percent,
                owners_total=sum(owners.values(), ZERO), operator_part=figures.parts[OPERATOR],
                refunded=ZERO, settled_at=settled_at,
            )
        if split is None or not split.owners_total + split.commission:
            # Nothing to post: the repeat and the rules checked in one query, the split saved.
            existing, current = _split_found(order_ref, station_id)
            if existing is not None:
                return existing
            if current != stamp:
                stamp, rules = _station_rules_read(station_id)
                continue
            if split is not None:
                split.save()
            return split
        debits = _split_debits(split, owners)
        schema = connection.schema_name
        if any((schema, code) not in _ACCOUNT_IDS for code in debits):
            _account_ids_read(owners)  # an owner's first order (here): the accounts made
        written = _split_write(
            split, owners=owners, stamp=stamp, debits=debits,
            account_ids=[_ACCOUNT_IDS.get((schema, code)) for code in debits],
        )
        if written.existing is not None:
            return written.existing
        if not written.rules_current:
            stamp, rules = _station_rules_read(station_id)
        elif not written.accounts_found:  # a stale id: read them again
            _account_ids_read(owners)
        elif not written.covered:
            raise ledger.InsufficientFunds(_("Not enough funds."))
        elif written.posting_id is None:  # the same order split by a concurrent transaction
            return OrderSplit.objects.get(order_ref=order_ref)
        else:
            split.posting_id, split.pk = written.posting_id, written.split_id
            split._state.adding = False
            return split
    raise ledger.LedgerError(f"split of order {order_ref} not settled: rules kept changing")


@dataclass(frozen=True)
class _Written:
    """What ``_split_write`` found and did: the split already made (``existing``), else
    whether the rules matched the stamp, every account existed and could take its line;
    the new posting and split ids when it wrote."""

    existing: OrderSplit | None
    rules_current: bool
    accounts_found: bool
    covered: bool
    posting_id: int | None
    split_id: int | None


@cache
def _split_write_sql() -> str:
    """``_split_write``'s statement (built once per process: table names, split columns)."""
    columns = _split_columns()
    return " ".join(f"""
        WITH old AS (
            SELECT {columns} FROM {OrderSplit._meta.db_table} AS o WHERE o.order_ref = %s
        ), acc AS (
            SELECT a.id, a.allow_negative, a.balance, v.amount, v.delta, v.n
            FROM {Account._meta.db_table} AS a
            JOIN unnest(%s::bigint[], %s::varchar[], %s::numeric[], %s::numeric[])
                WITH ORDINALITY AS v(id, code, amount, delta, n) ON a.id = v.id AND a.code = v.code
            ORDER BY a.id FOR UPDATE OF a
        ), ok AS (
            SELECT NOT EXISTS (SELECT FROM old) AS fresh,
                (SELECT count(*) = %s AND coalesce(max(id), 0) = %s
                 FROM {SplitRule._meta.db_table} WHERE station_id = %s) AS rules_current,
                (SELECT count(*) FROM acc) = %s AS accounts_found,
                (SELECT coalesce(bool_and(allow_negative OR balance + delta >= 0), true)
                 FROM acc) AS covered
        ), p AS (
            INSERT INTO {Posting._meta.db_table} (key, kind, member_id, ref, memo, reverses_id, created_at)
            SELECT %s, %s, NULL, %s, %s, NULL, %s FROM ok
            WHERE ok.fresh AND ok.rules_current AND ok.accounts_found AND ok.covered
            ON CONFLICT (key) DO NOTHING
            RETURNING id
        ), e AS (
            INSERT INTO {Entry._meta.db_table} (posting_id, account_id, amount)
            SELECT p.id, acc.id, acc.amount FROM p, acc ORDER BY acc.n
        ), u AS (
            UPDATE {Account._meta.db_table} AS a SET balance = a.balance + acc.delta
            FROM p, acc WHERE a.id = acc.id
        ), s AS (
            INSERT INTO {OrderSplit._meta.db_table} (order_ref, station_id, rule_id, energy_kwh,
                energy_by_period, gross, discount, payment_fee, base, commission,
                commission_percent, owners_total, operator_part, refunded, posting_id, settled_at)
            SELECT %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, p.id, %s FROM p
            RETURNING id
        ), l AS (
            INSERT INTO {SplitLine._meta.db_table} (owner_id, kind, withdrawal_id, split_id,
                posting_id, amount, refund, statement_id, occurred_at)
            SELECT v.owner_id, %s, NULL, s.id, p.id, v.amount, 0, NULL, %s
            FROM s, p, unnest(%s::bigint[], %s::numeric[]) AS v(owner_id, amount)
        )
        SELECT ok.rules_current, ok.accounts_found, ok.covered,
            (SELECT id FROM p), (SELECT id FROM s), old.*
        FROM ok LEFT JOIN old ON true
    """.split())


def _split_debits(split: OrderSplit, owners: dict[int, Decimal]) -> dict[str, Decimal]:
    """The split posting's lines, {account code: yuan, debit positive}, zero lines left out."""
    debits = {
        str(Account.Kind.REVENUE): split.owners_total + split.commission,
        str(Account.Kind.COMMISSION): -split.commission,
        **{f"{Account.Kind.OWNER_PAYABLE}:{oid}": -amount for oid, amount in owners.items()},
    }
    return {code: amount for code, amount in debits.items() if amount}


def _account_ids_read(owners: dict[int, Decimal]) -> None:
    """Make (when missing) and lock the split's accounts, and cache their ids (one query once
    they exist)."""
    found = ledger.accounts_locked(
        kinds=[Account.Kind.REVENUE, Account.Kind.COMMISSION], owner_ids=list(owners)
    )
    schema = connection.schema_name
    _ACCOUNT_IDS.update(((schema, code), account.pk) for code, account in found.items())


def _split_write(
    split: OrderSplit, *, owners: dict[int, Decimal], stamp: RulesStamp,
    debits: dict[str, Decimal], account_ids: list[int | None],
) -> _Written:
    """Post ``split`` (key ``order:<no>:split``) in one prepared statement: lock the accounts
    (``debits``: {code: yuan}, found by their ``account_ids`` in the same order and confirmed
    by code; primary-key order as the ledger's ``_lock``), then, only if the order has no
    split yet, the station's rules still have ``stamp``, every account was found and none
    that may not go negative would: insert the posting, its entries, the balances, the
    :class:`OrderSplit` and one SHARE line per owner (``owners``: {user id: yuan}). The
    ledger's deferred trigger still checks at commit that the entries balance."""
    debit_normal = {str(kind) for kind in Account.DEBIT_NORMAL}
    deltas = [a if code.partition(":")[0] in debit_normal else -a for code, a in debits.items()]
    ref = split.order_ref
    params = [
        ref,
        account_ids, list(debits), list(debits.values()), deltas,
        stamp[0], stamp[1], split.station_id, len(debits),
        f"order:{ref}:split", Posting.Kind.ORDER_SPLIT, ref[:64], f"split of order {ref}"[:200],
        timezone.now(),
        ref, split.station_id, split.rule_id, split.energy_kwh,
        json.dumps(split.energy_by_period), split.gross, split.discount, split.payment_fee,
        split.base, split.commission, split.commission_percent, split.owners_total,
        split.operator_part, split.refunded, split.settled_at,
        SplitLine.Kind.SHARE, split.settled_at, list(owners), list(owners.values()),
    ]
    rules_current, accounts_found, covered, posting_id, split_id, *old = execute_prepared_one(
        _split_write_sql(), params)
    return _Written(
        existing=_split_from_row(old) if old[0] is not None else None,
        rules_current=rules_current, accounts_found=accounts_found, covered=covered,
        posting_id=posting_id, split_id=split_id,
    )


def _split_columns() -> str:
    return ", ".join(f"o.{f.column}" for f in OrderSplit._meta.concrete_fields)


def _split_found(order_ref: str, station_id: int) -> tuple[OrderSplit | None, RulesStamp]:
    """The order's split if made already, and the station's rule stamp (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.n, r.top, {_split_columns()} FROM (SELECT count(*) AS n, "
            f"coalesce(max(id), 0) AS top FROM {SplitRule._meta.db_table} WHERE station_id = %s) "
            f"AS r LEFT JOIN {OrderSplit._meta.db_table} AS o ON o.order_ref = %s",
            [station_id, order_ref])
        count, top, *row = cursor.fetchone()
    return (_split_from_row(row) if row[0] is not None else None), (int(count), int(top))


def _split_from_row(values: list) -> OrderSplit:
    """An :class:`OrderSplit` from its columns as ``_split_write`` selects them."""
    fields = OrderSplit._meta.concrete_fields
    values = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    return OrderSplit.from_db(connection.alias, None, values)


@transaction.atomic
def order_split_refund(*, order_ref: str, paid: Decimal, refunded: Decimal) -> Posting | None:
    """The order ``order_ref`` (``paid`` yuan) has now been refunded ``refunded`` yuan in all:
    reverse the same fraction of its split (owners and commission in proportion). Call it in
    the refund's transaction. Idempotent: a repeated call with the same total does nothing.
    None when the order was not split or nothing more is due back."""
    split = OrderSplit.objects.select_for_update().filter(order_ref=order_ref).first()
    if split is None or split.posting_id is None or yuan(refunded) <= split.refunded:
        return None
    total = split.owners_total + split.commission
    due = proportional_part(total, min(yuan(refunded), yuan(paid)), yuan(paid))
    done = proportional_part(total, split.refunded, yuan(paid))
    refund_now = yuan(refunded) - split.refunded
    split.refunded = yuan(refunded)
    split.save(update_fields=["refunded"])
    if due - done <= 0:
        return None
    posting = ledger.posting_reverse(
        posting=split.posting, key=f"order:{order_ref}:split:refund:{split.refunded}",
        amount=due - done, memo=f"refund of order {order_ref}",
    )
    owner_lines = [
        e for e in posting.entries.select_related("account")
        if e.account.kind == Account.Kind.OWNER_PAYABLE
    ]
    share_total = sum((-e.amount for e in owner_lines), ZERO) or Decimal(1)
    now = timezone.now()
    SplitLine.objects.bulk_create(
        SplitLine(
            owner_id=e.account.owner_id, kind=SplitLine.Kind.REVERSAL, split=split, posting=posting,
            amount=-e.amount, refund=proportional_part(refund_now, -e.amount, share_total)
            if len(owner_lines) > 1 else refund_now, occurred_at=now,
        )
        for e in owner_lines
    )
    return posting
