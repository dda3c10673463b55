"""Tariff constructors: flat, and the Guangdong TOU pattern."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from evplatform import money

from .periods import (
    SLOTS_PER_DAY,
    OccupancyFee,
    Period,
    PeriodPrice,
    Season,
    SpecialDate,
    TariffKind,
)
from .snapshot import TariffSnapshot


def flat_tariff(
    electricity: Decimal,
    service: Decimal,
    *,
    period: Period = Period.FLAT,
    timezone: str = "Asia/Shanghai",
    occupancy: OccupancyFee | None = None,
    minimum_charge: Decimal | None = None,
    model_number: int = 1,
) -> TariffSnapshot:
    """One price pair (yuan/kWh, ≤ 5 dp) for all hours: all 48 slots set to ``period``.

    Raises :class:`TariffError`.
    """
    return TariffSnapshot(
        kind=TariffKind.FLAT,
        prices=(PeriodPrice(period, electricity, service),),
        slots=(period,) * SLOTS_PER_DAY,
        timezone=timezone,
        occupancy=occupancy,
        minimum_charge=minimum_charge,
        model_number=model_number,
    )


def _slot_map(default: Period, ranges: Iterable[tuple[float, float, Period]]) -> tuple[Period, ...]:
    slots = [default] * SLOTS_PER_DAY
    for start_hour, end_hour, period in ranges:
        for i in range(int(start_hour * 2), int(end_hour * 2)):
            slots[i] = period
    return tuple(slots)


_P, _F, _V, _S = Period.PEAK, Period.FLAT, Period.VALLEY, Period.SHARP

#: Guangdong (粤发改价格〔2021〕331号): 峰 10–12 & 14–19, 谷 0–8, 平 other hours.
GUANGDONG_DEFAULT_SLOTS: tuple[Period, ...] = _slot_map(
    _F, [(0, 8, _V), (10, 12, _P), (14, 19, _P)]
)
#: Guangdong July–September and critical-peak days: 尖 11–12 & 15–17 on top of the default.
GUANGDONG_SUMMER_SLOTS: tuple[Period, ...] = _slot_map(
    _F, [(0, 8, _V), (10, 12, _P), (14, 19, _P), (11, 12, _S), (15, 17, _S)]
)


def guangdong_tou_tariff(
    flat_electricity: Decimal,
    service: Decimal,
    *,
    critical_peak_days: Iterable[date] = (),
    model_number: int = 1,
    timezone: str = "Asia/Shanghai",
    occupancy: OccupancyFee | None = None,
    minimum_charge: Decimal | None = None,
) -> TariffSnapshot:
    """Guangdong province-wide TOU tariff from a flat base electricity price (yuan/kWh).

    Peak = flat × 1.7, valley = flat × 0.38, sharp = peak × 1.25, each rounded HALF_UP to
    5 dp; ``service`` (yuan/kWh) is the same in every period. Default map: valley 00–08,
    peak 10–12 and 14–19, flat otherwise; July–September season and every date in
    ``critical_peak_days`` (ad-hoc ≥35 °C days) add sharp 11–12 and 15–17.
    Raises :class:`TariffError`.
    """
    peak = money.unit_price(flat_electricity * Decimal("1.7"))
    return TariffSnapshot(
        kind=TariffKind.TOU,
        prices=(
            PeriodPrice(Period.SHARP, money.unit_price(peak * Decimal("1.25")), service),
            PeriodPrice(Period.PEAK, peak, service),
            PeriodPrice(Period.FLAT, flat_electricity, service),
            PeriodPrice(Period.VALLEY, money.unit_price(flat_electricity * Decimal("0.38")), service),
        ),
        slots=GUANGDONG_DEFAULT_SLOTS,
        seasons=(Season(7, 9, GUANGDONG_SUMMER_SLOTS, name="夏季"),),
        special_dates=tuple(
            SpecialDate(day, GUANGDONG_SUMMER_SLOTS, note="critical peak (≥35 °C)")
            for day in sorted(set(critical_peak_days))
        ),
        timezone=timezone,
        occupancy=occupancy,
        minimum_charge=minimum_charge,
        model_number=model_number,
    )
