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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from evplatform.errors import DomainError
from evplatform.money import ZERO, yuan

from . import services as ledger
from .allocation import OPERATOR, Party, allocate, proportional_part
from .models import Account, OrderSplit, Posting, SplitLine, SplitRule, SplitShare

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
        note=note[:200], created_by=user,
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
    rule: SplitRule | None,
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
            for s in rule.shares.all()
        ]
    parts = allocate(
        base=base, energy_kwh=energy_kwh, parties=[Party(PLATFORM, percent=commission), *parties]
    )
    return SplitFigures(
        gross=yuan(electricity + service), discount=discount, payment_fee=fee, base=base,
        commission_percent=commission, parts=parts,
    )


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
    rule = split_rule_in_force(station_id=station_id, pile_id=pile_id, at=started_at)
    commission = commission_percent()
    if rule is None and commission == 0:
        return None
    figures = split_compute(
        rule=rule, paid=paid, electricity=electricity, service=service, discount=discount,
        energy_kwh=energy_kwh, commission=commission,
    )
    owners = {oid: amount for oid, amount in figures.owner_parts().items() if amount}
    moved = sum(owners.values(), ZERO) + figures.commission
    posting = None
    if moved:
        # The accounts in one locking query, the posting written without a savepoint: the
        # split costs a few statements on top of the charge (benchmarks/settlement.py).
        locked = ledger.accounts_locked(
            kinds=[Account.Kind.REVENUE, Account.Kind.COMMISSION], owner_ids=list(owners)
        )
        lines = [(locked[Account.Kind.REVENUE], moved),
                 (locked[Account.Kind.COMMISSION], -figures.commission)]
        lines += [(locked[f"{Account.Kind.OWNER_PAYABLE}:{oid}"], -amount)
                  for oid, amount in owners.items()]
        key = f"order:{order_ref}:split"
        posting = ledger._existing(key) or ledger._write(
            key=key, kind=Posting.Kind.ORDER_SPLIT, lines=[(a, v) for a, v in lines if v],
            locked={a.pk: a for a in locked.values()}, ref=order_ref[:64],
            memo=f"split of order {order_ref}",
        )
    now = settled_at or timezone.now()
    split = OrderSplit.objects.create(
        order_ref=order_ref, station_id=station_id, rule=rule, energy_kwh=energy_kwh,
        energy_by_period=energy_by_period or {}, gross=figures.gross, discount=figures.discount,
        payment_fee=figures.payment_fee, base=figures.base, commission=figures.commission,
        commission_percent=figures.commission_percent,
        owners_total=sum(owners.values(), ZERO), operator_part=figures.parts[OPERATOR],
        posting=posting, settled_at=now,
    )
    SplitLine.objects.bulk_create(
        SplitLine(owner_id=oid, kind=SplitLine.Kind.SHARE, split=split, posting=posting,
                  amount=amount, occurred_at=now)
        for oid, amount in owners.items()
    )
    return split


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
