"""The domain's tariff ⇄ the YKC billing model (计费模型, 0x0A / 0x58): plain data the gateway
wraps in the codec's :class:`protocols.ykc.billing.BillingModel`.

Rates are yuan/kWh with 5 decimals (the wire's 0.00001 unit); periods 尖峰平谷 are slot codes
0..3; a pile holds one day map, so the map sent is the one of a given local date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from billing.tariffs.pricing import (
    MAX_UNIT_PRICE,
    PERIOD_ORDER,
    SLOTS_PER_DAY,
    OccupancyFee,
    Period,
    PeriodPrice,
    TariffError,
    TariffKind,
    TariffSnapshot,
    check_decimal,
    slot_label,
)
from evplatform import money

__all__ = ["YkcBillingModel", "from_ykc_billing_model", "to_ykc_billing_model", "ykc_wire_rates"]

_ZERO = Decimal("0")


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


def ykc_wire_rates(model: YkcBillingModel) -> tuple[Decimal, ...]:
    """The 8 rates in YKC 0x0A/0x58 byte order: sharp elec, sharp svc, peak elec, peak svc,
    flat elec, flat svc, valley elec, valley svc (yuan/kWh)."""
    rates = model["rates"]
    return tuple(rate for i in range(4) for rate in (rates[i], rates[i + 4]))


def to_ykc_billing_model(snapshot: TariffSnapshot, on_date: date | None = None) -> YkcBillingModel:
    """The YKC billing model for local date ``on_date`` (its special/season map), or the
    default map when ``on_date`` is None.

    Periods the tariff does not price are sent as rate 0 (no slot uses them). The pile holds
    one map, so push a new model before a day whose map differs (season start, critical-peak
    day). Never raises for a valid snapshot.
    """
    slots = snapshot.slots if on_date is None else snapshot.slots_on(on_date)
    prices = {price.period: price for price in snapshot.prices}
    electricity = []
    service = []
    for period in PERIOD_ORDER:
        price = prices.get(period)
        electricity.append(money.unit_price(price.electricity if price else _ZERO))
        service.append(money.unit_price(price.service if price else _ZERO))
    return YkcBillingModel(
        model_number=snapshot.model_number,
        rates=tuple(electricity + service),
        loss_ratio=snapshot.loss_ratio,
        slots=tuple(p.code for p in slots),
    )


def from_ykc_billing_model(
    model: Mapping[str, Any],
    *,
    timezone: str = "Asia/Shanghai",
    occupancy: OccupancyFee | None = None,
    minimum_charge: Decimal | None = None,
) -> TariffSnapshot:
    """Snapshot from a :class:`YkcBillingModel` (e.g. decoded from a pile's 0x0A/0x58).

    Only the periods the 48 slots use are priced; the kind is flat when one period is used,
    otherwise TOU. Raises :class:`TariffError` for a wrong number of rates or slots, slot
    codes outside 0..3, rates < 0 or with more than 5 dp, or an out-of-range model number /
    loss ratio.
    """
    rates = model.get("rates")
    if not isinstance(rates, Sequence) or len(rates) != 8:
        raise TariffError("rates", "YKC carries exactly 8 rates (4 electricity, 4 service)")
    raw_slots = model.get("slots")
    if not isinstance(raw_slots, Sequence) or len(raw_slots) != SLOTS_PER_DAY:
        raise TariffError("slots", f"YKC carries exactly {SLOTS_PER_DAY} slot codes")
    slots = []
    for i, code in enumerate(raw_slots):
        try:
            slots.append(Period.from_code(code))
        except ValueError:
            raise TariffError(
                f"slots[{i}]", f"slot {slot_label(i)} has code {code!r}, expected 0..3"
            ) from None
    for i, rate in enumerate(rates):
        name = f"rates[{i}] ({PERIOD_ORDER[i % 4].value} {'electricity' if i < 4 else 'service'})"
        check_decimal(rate, name, 5, MAX_UNIT_PRICE)
    used = [p for p in PERIOD_ORDER if p in slots]
    prices = tuple(PeriodPrice(p, rates[p.code], rates[p.code + 4]) for p in used)
    return TariffSnapshot(
        kind=TariffKind.FLAT if len(used) == 1 else TariffKind.TOU,
        prices=prices,
        slots=tuple(slots),
        timezone=timezone,
        occupancy=occupancy,
        minimum_charge=minimum_charge,
        model_number=model.get("model_number"),
        loss_ratio=model.get("loss_ratio", 0),
    )
