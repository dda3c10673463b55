"""Money in yuan as Decimal with 2 places; the one rounding helper of the ledger."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    """``value`` in yuan rounded once to 0.01 with ROUND_HALF_UP (never a float)."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def to_fen(yuan: Decimal) -> int:
    """Yuan (2 places) → integer fen, as WeChat Pay wants amounts."""
    return int(money(yuan) * 100)


def from_fen(fen: int) -> Decimal:
    return money(Decimal(fen) / 100)
