"""Money, unit prices and energy as ``Decimal``: the platform's one rounding helper.

- amounts in yuan, 2 places (``yuan``), as stored and shown;
- unit prices in yuan/kWh, 5 places (``unit_price``), the YKC wire precision;
- energy in kWh, 4 places (``kwh``).

Every rounding is ROUND_HALF_UP, applied once per bill line by the caller. A float is refused
(``TypeError``): money never passes through binary floating point.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.00001")
KWH_QUANTUM = Decimal("0.0001")
ZERO = Decimal("0.00")
ZERO_KWH = Decimal("0.0000")

__all__ = [
    "CENT", "PRICE_QUANTUM", "KWH_QUANTUM", "ZERO", "ZERO_KWH",
    "yuan", "unit_price", "kwh", "to_fen", "from_fen",
]


def _decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return value if isinstance(value, Decimal) else Decimal(value)


def yuan(value: Decimal | int | str) -> Decimal:
    """``value`` (yuan, any precision) rounded to 0.01 yuan, ROUND_HALF_UP."""
    return _decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def unit_price(value: Decimal | int | str) -> Decimal:
    """``value`` (yuan/kWh) rounded to 0.00001 yuan/kWh, ROUND_HALF_UP."""
    return _decimal(value).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def kwh(value: Decimal | int | str) -> Decimal:
    """``value`` (kWh) rounded to 0.0001 kWh, ROUND_HALF_UP."""
    return _decimal(value).quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)


def to_fen(amount: Decimal) -> int:
    """Yuan → integer fen (rounded to 0.01 yuan first), as WeChat Pay wants amounts."""
    return int(yuan(amount) * 100)


def from_fen(fen: int) -> Decimal:
    """Integer fen → yuan with 2 places."""
    return yuan(Decimal(fen) / 100)
