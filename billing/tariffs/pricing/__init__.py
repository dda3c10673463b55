"""Pricing engine: tariff snapshots, energy splitting and bills (pure functions, no I/O).

Modules: ``periods`` (building blocks), ``snapshot`` (TariffSnapshot), ``validation``,
``presets`` (flat, Guangdong TOU), ``clock`` (price at an instant, periods of a day), ``meter``
(split readings at period boundaries), ``bill`` (bills). Import from this package.

Units used throughout (the field's own, see STYLE.md):

* energy: kWh as ``Decimal`` kept at 4 decimals (0.0001 kWh, as YKC 0x3B reports it);
* unit prices: yuan/kWh as ``Decimal`` with at most 5 decimals (YKC 0x0A/0x58 rates);
* money: yuan as ``Decimal``; every amount is rounded exactly once, to 0.01 yuan with
  ``ROUND_HALF_UP``, by :func:`evplatform.money.yuan`;
* instants: timezone-aware ``datetime``; the tariff's half-hour slots are read on the station's
  local wall clock (IANA zone on the snapshot, default Asia/Shanghai).

Periods are 尖峰平谷 = sharp/peak/flat/valley, coded 0..3 in that order as in YKC §3.4.

A :class:`TariffSnapshot` is what gets locked onto an order when charging starts: a mid-session
tariff edit must not re-price the session, so the engine only ever sees the snapshot.
"""

from __future__ import annotations

from .bill import (
    Bill,
    BillLine,
    PileCheck,
    compare_with_pile,
    occupancy_fee,
    preview,
    price_meter_readings,
    price_pile_energy,
)
from .clock import (
    DayPeriod,
    PriceAt,
    day_runs,
    periods_on,
    price_at,
    slot_time,
)
from .errors import (
    PricingError,
    TariffError,
)
from .meter import (
    MeterSplit,
    Segment,
    split_meter_readings,
)
from .periods import (
    MAX_MODEL_NUMBER,
    MAX_UNIT_PRICE,
    PERIOD_ORDER,
    SLOTS_PER_DAY,
    SNAPSHOT_SCHEMA,
    OccupancyFee,
    Period,
    PeriodPrice,
    Season,
    SpecialDate,
    TariffKind,
)
from .presets import (
    GUANGDONG_DEFAULT_SLOTS,
    GUANGDONG_SUMMER_SLOTS,
    flat_tariff,
    guangdong_tou_tariff,
)
from .snapshot import (
    TariffSnapshot,
)
from .validation import (
    check_decimal,
    slot_label,
    validate_tariff,
)

__all__ = [
    "Bill",
    "BillLine",
    "DayPeriod",
    "GUANGDONG_DEFAULT_SLOTS",
    "GUANGDONG_SUMMER_SLOTS",
    "MAX_MODEL_NUMBER",
    "MAX_UNIT_PRICE",
    "MeterSplit",
    "OccupancyFee",
    "PERIOD_ORDER",
    "Period",
    "PeriodPrice",
    "PileCheck",
    "PriceAt",
    "PricingError",
    "SLOTS_PER_DAY",
    "SNAPSHOT_SCHEMA",
    "Season",
    "Segment",
    "SpecialDate",
    "TariffError",
    "TariffKind",
    "TariffSnapshot",
    "compare_with_pile",
    "check_decimal",
    "day_runs",
    "flat_tariff",
    "guangdong_tou_tariff",
    "occupancy_fee",
    "periods_on",
    "preview",
    "price_at",
    "price_meter_readings",
    "price_pile_energy",
    "slot_time",
    "slot_label",
    "split_meter_readings",
    "validate_tariff",
]
