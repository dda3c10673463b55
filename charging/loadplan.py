"""Sharing a station's power limit among its sessions (load management). Pure: no Django.

:func:`allocate` takes the station's limit and one :class:`Demand` per pile with sessions
running, and returns each pile's cap in kW (0.1 kW steps, rounded down) such that

- the caps never add up to more than the limit;
- every cap lies between the pile's floor (the lowest cap it accepts) and its ceiling (its
  rating, or what its sessions can draw); a pile whose floor no longer fits is left out
  (``unserved``: the caller must not start it, or must stop it);
- the rest is shared by weight ("water filling"): with equal weights every pile gets the
  same unless its ceiling is lower, and what one cannot use goes to the others.

Piles are admitted in the order given (earliest session first), so a newcomer never takes
a floor from a session already running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

STEP = Decimal("0.1")
ZERO = Decimal("0")


@dataclass(frozen=True)
class Demand:
    """One pile with sessions: ``key`` names it, ``floor_kw`` ≤ ``ceiling_kw`` in kW,
    ``weight`` > 0 (1 for an equal share, more for priority)."""

    key: str
    floor_kw: Decimal
    ceiling_kw: Decimal
    weight: Decimal = Decimal("1")


@dataclass
class Allocation:
    """``caps``: key → kW for the piles served, in the demands' order; ``unserved``: the
    keys whose floor did not fit; ``total_kw``: Σ caps (≤ the limit)."""

    limit_kw: Decimal
    caps: dict[str, Decimal] = field(default_factory=dict)
    unserved: list[str] = field(default_factory=list)

    @property
    def total_kw(self) -> Decimal:
        return sum(self.caps.values(), ZERO)


def _down(value: Decimal) -> Decimal:
    return value.quantize(STEP, ROUND_DOWN)


def allocate(limit_kw: Decimal, demands: list[Demand]) -> Allocation:
    """Caps for ``demands`` under ``limit_kw`` (kW ≥ 0). Raises ValueError for a demand
    with floor > ceiling, a negative floor or a weight ≤ 0, or a repeated key."""
    limit_kw = _down(Decimal(limit_kw))
    if len({d.key for d in demands}) != len(demands):
        raise ValueError("repeated demand key")
    for d in demands:
        if d.floor_kw < 0 or d.floor_kw > d.ceiling_kw or d.weight <= 0:
            raise ValueError(f"bad demand {d!r}")
    result = Allocation(limit_kw=limit_kw)
    admitted: list[Demand] = []
    floors = ZERO
    for d in demands:
        floor = _up(d.floor_kw)
        if floor > _down(d.ceiling_kw) or floors + floor > limit_kw:
            result.unserved.append(d.key)
            continue
        floors += floor
        admitted.append(d)
    if not admitted:
        return result
    caps = {d.key: _up(d.floor_kw) for d in admitted}
    ceilings = {d.key: _down(d.ceiling_kw) for d in admitted}
    left = limit_kw - floors
    # Water filling: raise every pile still below its ceiling by weight until the power
    # left runs out or all are at their ceilings.
    open_ = [d for d in admitted if caps[d.key] < ceilings[d.key]]
    while left > 0 and open_:
        total_weight = sum((d.weight for d in open_), ZERO)
        given = ZERO
        still_open = []
        for d in open_:
            share = _down(left * d.weight / total_weight)
            room = ceilings[d.key] - caps[d.key]
            add = min(share, room)
            caps[d.key] += add
            given += add
            if caps[d.key] < ceilings[d.key]:
                still_open.append(d)
        left -= given
        open_ = still_open
        if given == 0:
            # Shares rounded to nothing: hand out the last steps one at a time, in order.
            for d in open_:
                if left < STEP:
                    break
                caps[d.key] += STEP
                left -= STEP
            break
    result.caps = {d.key: caps[d.key] for d in admitted}
    return result


def _up(value: Decimal) -> Decimal:
    """A floor rounded up to the step (a pile never gets less than its floor)."""
    down = _down(value)
    return down if down == value else down + STEP
