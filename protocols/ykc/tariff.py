"""A pile's tariff day (``charging.port.TariffDay``) ⇄ the YKC billing model (计费模型,
0x0A / 0x58): plain data the gateway wraps in the codec's :class:`protocols.ykc.billing.BillingModel`.

Rates are yuan/kWh with 5 decimals (the wire's 0.00001 unit); periods 尖峰平谷 are slot codes
0..3 (:class:`protocols.ykc.enums.TariffPeriod`); a pile holds one day map, so the map sent is
that of the day the port answered for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, TypedDict

from charging.port import TariffDay
from evplatform import money

from .enums import TariffPeriod

__all__ = [
    "YkcBillingModel",
    "YkcTariffError",
    "from_ykc_billing_model",
    "to_ykc_billing_model",
    "ykc_wire_rates",
]

_ZERO = Decimal("0")
SLOTS_PER_DAY = 48
MAX_UNIT_PRICE = Decimal("42949.67295")  # UINT32 in 0.00001 yuan
MAX_MODEL_NUMBER = 9999  # 2 BCD bytes
_PERIODS = tuple(TariffPeriod)  # sharp, peak, flat, valley: codes 0..3


class YkcTariffError(ValueError):
    """A YKC billing model that is not a valid tariff day: ``field`` names the bad part
    (``"rates"``, ``"slots[5]"``, ``"rates[5] (peak service)"``, ...)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class YkcBillingModel(TypedDict):
    """Plain-data billing model for YKC 0x0A / 0x58 (the codec in protocols/ykc/ wraps it).

    * ``model_number``: int 0..9999 (the wire carries it as 2 BCD bytes);
    * ``rates``: 8 Decimals, yuan/kWh, 5 dp, in the order sharp, peak, flat, valley
      electricity, then sharp, peak, flat, valley service. NOTE the wire interleaves them
      (sharp elec, sharp svc, peak elec, ...): use :func:`ykc_wire_rates` for wire order;
    * ``loss_ratio``: int 0..255 (计损比例, normally 0);
    * ``slots``: 48 ints 0..3 (0 sharp, 1 peak, 2 flat, 3 valley), from 00:00 local.
    """

    model_number: int
    rates: tuple[Decimal, ...]
    loss_ratio: int
    slots: tuple[int, ...]


def _name(period: TariffPeriod) -> str:
    return period.name.lower()


def ykc_wire_rates(model: YkcBillingModel) -> tuple[Decimal, ...]:
    """The 8 rates in YKC 0x0A/0x58 byte order: sharp elec, sharp svc, peak elec, peak svc,
    flat elec, flat svc, valley elec, valley svc (yuan/kWh)."""
    rates = model["rates"]
    return tuple(rate for i in range(4) for rate in (rates[i], rates[i + 4]))


def to_ykc_billing_model(day: TariffDay) -> YkcBillingModel:
    """The YKC billing model of a pile's tariff day: the version number as model number,
    prices rounded to the wire's 5 dp, the day's 48 slots as codes 0..3.

    Periods the day does not price are sent as rate 0 (no slot uses them). The pile holds
    one map, so push a new model before a day whose map differs (season start, critical-peak
    day). Raises KeyError when a slot names something other than sharp/peak/flat/valley.
    """
    electricity, service = [], []
    for period in _PERIODS:
        price = day.prices.get(_name(period), (_ZERO, _ZERO))
        electricity.append(money.unit_price(price[0]))
        service.append(money.unit_price(price[1]))
    return YkcBillingModel(
        model_number=day.version_number,
        rates=tuple(electricity + service),
        loss_ratio=day.loss_ratio,
        slots=tuple(TariffPeriod[name.upper()].value for name in day.slots),
    )


def _check_rate(value: Any, field: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise YkcTariffError(field, f"must be a finite Decimal, got {value!r}")
    if value < 0 or value > MAX_UNIT_PRICE:
        raise YkcTariffError(field, f"must be within 0..{MAX_UNIT_PRICE}, got {value}")
    if value != money.unit_price(value):
        raise YkcTariffError(field, f"at most 5 decimals, got {value}")


def _check_int(value: Any, field: str, maximum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise YkcTariffError(field, f"must be an int 0..{maximum}, got {value!r}")


def from_ykc_billing_model(model: Mapping[str, Any]) -> TariffDay:
    """The tariff day a :class:`YkcBillingModel` describes (e.g. decoded from a pile's
    0x0A/0x58): only the periods the 48 slots use are priced.

    Raises :class:`YkcTariffError` for a wrong number of rates or slots, slot codes outside
    0..3, rates < 0, too large or with more than 5 dp, or an out-of-range model number /
    loss ratio.
    """
    rates = model.get("rates")
    if not isinstance(rates, Sequence) or len(rates) != 8:
        raise YkcTariffError("rates", "YKC carries exactly 8 rates (4 electricity, 4 service)")
    raw_slots = model.get("slots")
    if not isinstance(raw_slots, Sequence) or len(raw_slots) != SLOTS_PER_DAY:
        raise YkcTariffError("slots", f"YKC carries exactly {SLOTS_PER_DAY} slot codes")
    slots = []
    for i, code in enumerate(raw_slots):
        try:
            slots.append(TariffPeriod(code))
        except ValueError:
            start = i * 30
            raise YkcTariffError(
                f"slots[{i}]", f"slot at {start // 60:02d}:{start % 60:02d} has code {code!r}, "
                "expected 0..3") from None
    for i, rate in enumerate(rates):
        kind = "electricity" if i < 4 else "service"
        _check_rate(rate, f"rates[{i}] ({_name(_PERIODS[i % 4])} {kind})")
    _check_int(model.get("model_number"), "model_number", MAX_MODEL_NUMBER)
    _check_int(model.get("loss_ratio", 0), "loss_ratio", 255)
    return TariffDay(
        version_number=model["model_number"],
        prices={_name(p): (rates[p.value], rates[p.value + 4]) for p in _PERIODS if p in slots},
        slots=tuple(_name(p) for p in slots),
        loss_ratio=model.get("loss_ratio", 0),
    )
