"""The revenue split of one order, as pure arithmetic (no Django, no I/O).

``allocate(base=…, energy_kwh=…, parties=…)`` divides ``base`` yuan between parties:

- percentage parties (the platform's commission, owners with a percentage) and the operator,
  who holds what the percentages leave (100 % − Σ), share the base by the **largest
  remainder** method (Hamilton): each gets its exact share rounded down to the fen, and the
  fen left over go one each to the largest fractions, the operator first on a tie — so the
  parts sum to the base exactly and no rounding ever favours anyone by more than one fen;
- per-kWh parties (an investor paid ``rate`` yuan per kWh) are then paid, in order, out of
  the operator's part, each at most what the operator still has: the operator's part never
  goes below zero.

Every part is rounded to the fen (``evplatform.money``: integer fen arithmetic, then
``from_fen``). For a base ≥ 0 every part is ≥ 0; for a negative base (never produced by
settlement, allowed for corrections) the signs mirror. Raises ``ValueError`` when the
percentages exceed 100 % or a value is negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from evplatform.money import from_fen, kwh, to_fen, yuan

HUNDRED = Decimal(100)
OPERATOR = "operator"


@dataclass(frozen=True)
class Party:
    """One receiver: ``key`` names it (``platform``, ``owner:<user id>``); ``percent`` of the
    base (0–100), or ``per_kwh`` yuan per kWh charged (not both)."""

    key: str
    percent: Decimal | None = None
    per_kwh: Decimal | None = None


def allocate(
    *, base: Decimal, energy_kwh: Decimal, parties: Sequence[Party]
) -> dict[str, Decimal]:
    """Split ``base`` yuan; returns {party key: yuan} with the ``operator`` key last.

    The parts sum to ``base`` (rounded to the fen) exactly. Keys must be unique and must not
    be ``operator``.
    """
    base_fen = to_fen(yuan(base))
    sign = -1 if base_fen < 0 else 1
    base_fen = abs(base_fen)
    keys = [p.key for p in parties]
    if len(set(keys)) != len(keys) or OPERATOR in keys:
        raise ValueError("party keys must be unique and not 'operator'")
    percents = [(p.key, Decimal(p.percent)) for p in parties if p.percent is not None]
    if any(v < 0 for _k, v in percents) or any(
        p.per_kwh is not None and Decimal(p.per_kwh) < 0 for p in parties
    ):
        raise ValueError("shares must not be negative")
    total_percent = sum((v for _k, v in percents), Decimal(0))
    if total_percent > HUNDRED:
        raise ValueError("percentages exceed 100")
    weights = [*percents, (OPERATOR, HUNDRED - total_percent)]
    exact = [base_fen * v / HUNDRED for _k, v in weights]
    floors = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in exact]
    left = base_fen - sum(floors)
    # Largest fraction first; on a tie the operator (last in ``weights``) comes first.
    n = len(weights)
    order = sorted(range(n), key=lambda i: (exact[i] - floors[i], i == n - 1), reverse=True)
    for i in order[:left]:
        floors[i] += 1
    fen = dict(zip((k for k, _v in weights), floors, strict=True))
    operator_fen = fen.pop(OPERATOR)
    energy = kwh(energy_kwh)
    for party in parties:
        if party.per_kwh is None:
            continue
        owed = to_fen(yuan(Decimal(party.per_kwh) * energy))
        paid = min(owed, operator_fen)
        fen[party.key] = fen.get(party.key, 0) + paid
        operator_fen -= paid
    fen[OPERATOR] = operator_fen
    return {key: from_fen(sign * value) for key, value in fen.items()}


def proportional_part(total: Decimal, numerator: Decimal, denominator: Decimal) -> Decimal:
    """``total × numerator / denominator`` yuan rounded once (the share of a partial refund);
    0 when the denominator is 0."""
    if not denominator:
        return yuan(0)
    return yuan(Decimal(total) * Decimal(numerator) / Decimal(denominator))
