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

Cost at settlement (``benchmarks/settlement.py``): the rule comes from a per-process cache of
the station's immutable rule versions, checked against a shared generation token that
``split_rule_create`` moves; the split is one "already split?" query, one locking query for
the accounts, and one statement writing the posting, entries, balances, split and lines.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from evplatform.errors import DomainError
from evplatform.money import ZERO, yuan

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
    # Every process re-reads the station's rules: now, and again once this is visible to them.
    _rules_generation_bump()
    transaction.on_commit(_rules_generation_bump)
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


# Process-local: {(schema, station_id): (generation, [RuleTerms, newest first])}. The
# generation is a token in the shared cache that ``split_rule_create`` replaces (at once and
# again on commit), so every process sees a new version on its next settlement; a lost
# cache (Redis may lose everything) only means a fresh token and one re-read per station.
_RULES: dict[tuple[str, int], tuple[str, list[RuleTerms]]] = {}
_GENERATION_KEY = "settlement:split-rules:generation"


def _rules_generation() -> str:
    token = cache.get(_GENERATION_KEY)
    if token is None:
        cache.add(_GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        token = cache.get(_GENERATION_KEY) or ""
    return token


def _rules_generation_bump() -> None:
    cache.set(_GENERATION_KEY, uuid.uuid4().hex, timeout=None)


def rule_cache_clear() -> None:
    """Forget every cached rule in this process (tests roll the database back under it)."""
    _RULES.clear()


def _station_rules(station_id: int) -> list[RuleTerms]:
    """Every rule version of the station (its piles' too), newest first; from the process
    cache while no version was added since it was read. Costs one cache read when warm,
    two queries when not."""
    generation = _rules_generation()  # read before the rows: a bump in between re-reads later
    key = (connection.schema_name, station_id)
    cached = _RULES.get(key)
    if cached is not None and cached[0] == generation:
        return cached[1]
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
    _RULES[key] = (generation, rules)
    return rules


def split_terms_in_force(*, station_id: int, pile_id: int | None, at: datetime) -> RuleTerms | None:
    """What ``split_rule_in_force`` finds, from the rule cache: the pile's own rule in force
    at ``at`` (latest ``effective_from``, then version), else the station's; None when
    neither."""
    rules = [r for r in _station_rules(station_id) if r.effective_from <= at]
    if pile_id is not None:
        for rule in rules:
            if rule.pile_id == pile_id:
                return rule
    return next((r for r in rules if r.pile_id is None), None)


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
    posts the order's charge. Idempotent by ``order_ref``. None when nothing is split (no
    rule and no commission)."""
    if existing := OrderSplit.objects.filter(order_ref=order_ref).first():
        return existing
    rule = split_terms_in_force(station_id=station_id, pile_id=pile_id, at=started_at)
    commission = commission_percent()
    if rule is None and commission == 0:
        return None
    figures = split_compute(
        rule=rule, paid=paid, electricity=electricity, service=service, discount=discount,
        energy_kwh=energy_kwh, commission=commission,
    )
    owners = {oid: amount for oid, amount in figures.owner_parts().items() if amount}
    split = OrderSplit(
        order_ref=order_ref, station_id=station_id, rule_id=rule.pk if rule else None,
        energy_kwh=energy_kwh, energy_by_period=energy_by_period or {}, gross=figures.gross,
        discount=figures.discount, payment_fee=figures.payment_fee, base=figures.base,
        commission=figures.commission, commission_percent=figures.commission_percent,
        owners_total=sum(owners.values(), ZERO), operator_part=figures.parts[OPERATOR],
        refunded=ZERO, settled_at=settled_at or timezone.now(),
    )
    if not split.owners_total + split.commission:
        split.save()
        return split
    # The accounts in one locking query (primary-key order, as every posting takes them),
    # then the posting, its entries, the balances, the split and its lines in one statement:
    # three round trips on top of the charge (benchmarks/settlement.py).
    locked = ledger.accounts_locked(
        kinds=[Account.Kind.REVENUE, Account.Kind.COMMISSION], owner_ids=list(owners)
    )
    lines = {locked[Account.Kind.REVENUE].pk: split.owners_total + split.commission}
    lines[locked[Account.Kind.COMMISSION].pk] = -split.commission
    for oid, amount in owners.items():
        lines[locked[f"{Account.Kind.OWNER_PAYABLE}:{oid}"].pk] = -amount
    lines = {pk: amount for pk, amount in lines.items() if amount}
    by_pk = {a.pk: a for a in locked.values()}
    deltas = {pk: amount if by_pk[pk].debit_normal else -amount for pk, amount in lines.items()}
    for pk, delta in deltas.items():
        if not by_pk[pk].allow_negative and by_pk[pk].balance + delta < 0:
            raise ledger.InsufficientFunds(_("Not enough funds."))
    split.posting_id, split.pk = _split_write(split, lines=lines, deltas=deltas, owners=owners)
    split._state.adding = False
    return split


def _split_write(
    split: OrderSplit, *, lines: dict[int, Decimal], deltas: dict[int, Decimal],
    owners: dict[int, Decimal],
) -> tuple[int, int]:
    """Insert the split posting (key ``order:<no>:split``), its entries ({account pk: debit
    yuan}), the balance ``deltas``, the :class:`OrderSplit` and one SHARE line per owner, in
    one statement; (posting id, split id). The ledger's deferred trigger still checks at
    commit that the entries balance; the caller holds the account locks."""
    sql = f"""
        WITH p AS (
            INSERT INTO {Posting._meta.db_table} (key, kind, member_id, ref, memo, reverses_id, created_at)
            VALUES (%s, %s, NULL, %s, %s, NULL, %s) RETURNING id
        ), e AS (
            INSERT INTO {Entry._meta.db_table} (posting_id, account_id, amount)
            SELECT p.id, v.account_id, v.amount
            FROM p, unnest(%s::bigint[], %s::numeric[]) AS v(account_id, amount)
        ), u AS (
            UPDATE {Account._meta.db_table} AS a SET balance = a.balance + v.delta
            FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, delta) WHERE a.id = v.id
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
        SELECT p.id, s.id FROM p, s
    """
    ref = split.order_ref
    params = [
        f"order:{ref}:split", Posting.Kind.ORDER_SPLIT, ref[:64], f"split of order {ref}"[:200],
        timezone.now(),
        list(lines), list(lines.values()),
        list(deltas), list(deltas.values()),
        ref, split.station_id, split.rule_id, split.energy_kwh,
        json.dumps(split.energy_by_period), split.gross, split.discount, split.payment_fee,
        split.base, split.commission, split.commission_percent, split.owners_total,
        split.operator_part, split.refunded, split.settled_at,
        SplitLine.Kind.SHARE, split.settled_at, list(owners), list(owners.values()),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        posting_id, split_id = cursor.fetchone()
    return posting_id, split_id


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
