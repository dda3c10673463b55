"""The discount plan of one order: pure arithmetic on Decimals, no database.

An order's discounts are at most one SVIP line (a percentage of the service fee) and at
most one coupon line. The plan picks the combination that takes off the most (or the
coupon the driver chose, when it applies); a coupon that does not stack with SVIP is
weighed against the SVIP discount alone. Invariants (tested with hypothesis): every line
is ≥ 0 with 2 places; the SVIP line ≤ the service fee; a service-fee coupon ≤ what SVIP
left of the service fee; the lines sum to at most the order's gross amount, so
``paid = gross − Σ lines`` is never negative and no yuan is taken off twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from evplatform.money import ZERO, yuan

HUNDRED = Decimal("100")


@dataclass(frozen=True)
class OrderFacts:
    """What a coupon's scope looks at. Amounts in yuan; ``current`` is ``"ac"`` or ``"dc"``;
    ``hour`` the start hour (0–23) in the operator's time zone."""

    gross: Decimal
    service: Decimal
    station_id: int | None
    current: str
    hour: int


@dataclass(frozen=True)
class CouponTerms:
    """A coupon as the plan sees it (from its template); ``remaining_budget`` None: no budget."""

    coupon_id: int
    kind: str  # fixed | threshold | percent
    amount: Decimal
    threshold: Decimal
    percent: Decimal
    base: str  # service | total
    cap: Decimal | None
    stacks_with_svip: bool
    station_ids: frozenset[int]
    current: str  # any | ac | dc
    hour_from: int | None
    hour_to: int | None
    remaining_budget: Decimal | None = None


@dataclass(frozen=True)
class Line:
    kind: str  # svip | coupon
    amount: Decimal
    coupon_id: int | None = None


def applies(terms: CouponTerms, facts: OrderFacts) -> bool:
    """Whether the coupon's scope (stations, AC/DC, time of day, threshold) covers the order."""
    if terms.station_ids and facts.station_id not in terms.station_ids:
        return False
    if terms.current != "any" and terms.current != facts.current:
        return False
    if terms.hour_from is not None and terms.hour_to is not None and terms.hour_from != terms.hour_to:
        if terms.hour_from < terms.hour_to:
            inside = terms.hour_from <= facts.hour < terms.hour_to
        else:  # across midnight, e.g. 22 → 6
            inside = facts.hour >= terms.hour_from or facts.hour < terms.hour_to
        if not inside:
            return False
    if terms.kind == "threshold" and facts.gross < terms.threshold:
        return False
    return True


def svip_amount(service: Decimal, percent: Decimal) -> Decimal:
    """The SVIP line: ``percent`` % of the service fee, rounded once, never above it."""
    if percent <= 0 or service <= 0:
        return ZERO
    return min(yuan(service), yuan(service * min(percent, HUNDRED) / HUNDRED))


def coupon_amount(terms: CouponTerms, *, service_left: Decimal, total_left: Decimal) -> Decimal:
    """What the coupon takes off what is left of the order (after SVIP), in yuan."""
    base = service_left if terms.base == "service" else total_left
    base = max(base, ZERO)
    if terms.kind == "percent":
        off = yuan(base * min(terms.percent, HUNDRED) / HUNDRED)
        if terms.cap is not None:
            off = min(off, terms.cap)
    else:
        off = terms.amount
    off = min(off, base)
    if terms.remaining_budget is not None:
        off = min(off, max(terms.remaining_budget, ZERO))
    return yuan(max(off, ZERO))


def plan(
    facts: OrderFacts,
    *,
    svip_percent: Decimal | None,
    coupons: Sequence[CouponTerms],
    chosen_id: int | None = None,
) -> list[Line]:
    """The order's discount lines. ``coupons`` come soonest-expiring first (a tie goes to
    the coupon that would expire first); ``chosen_id`` is the driver's pick, used when it
    applies. Returns [] when nothing applies."""
    gross, service = yuan(facts.gross), yuan(min(facts.service, facts.gross))
    if gross <= 0:
        return []
    svip = svip_amount(service, svip_percent or ZERO)
    options: list[list[Line]] = [[Line("svip", svip)] if svip > 0 else []]
    usable = [c for c in coupons if applies(c, facts)]
    chosen = [c for c in usable if c.coupon_id == chosen_id]
    if chosen:
        usable, options = chosen, []
    for terms in usable:
        with_svip = svip > 0 and terms.stacks_with_svip
        taken = svip if with_svip else ZERO
        off = coupon_amount(terms, service_left=service - taken, total_left=gross - taken)
        if off <= 0:
            continue
        lines = [Line("svip", svip)] if with_svip else []
        options.append([*lines, Line("coupon", off, terms.coupon_id)])
    if not options:  # the chosen coupon took nothing off: SVIP alone
        options = [[Line("svip", svip)] if svip > 0 else []]
    best = max(options, key=lambda lines: sum((x.amount for x in lines), ZERO))  # first max wins
    return [line for line in best if line.amount > 0]
