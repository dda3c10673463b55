"""validate_tariff: every rule a tariff snapshot must satisfy, with the culprit field."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import TariffError
from .periods import (
    MAX_MODEL_NUMBER,
    MAX_UNIT_PRICE,
    PERIOD_ORDER,
    SLOTS_PER_DAY,
    OccupancyFee,
    Period,
    PeriodPrice,
    Season,
    SpecialDate,
    TariffKind,
    _is_month,
)

if TYPE_CHECKING:
    from .snapshot import TariffSnapshot


def slot_label(i: int) -> str:
    """Half-hour slot ``i`` (0..47) as local ``"HH:MM–HH:MM"``, for error messages."""
    start = i * 30
    end = start + 30
    return f"{start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d}"


def check_decimal(value: Any, path: str, places: int, maximum: Decimal | None = None) -> None:
    """Raise :class:`TariffError` at ``path`` unless ``value`` is a finite Decimal >= 0 with at
    most ``places`` decimals (and <= ``maximum``)."""
    if not isinstance(value, Decimal):
        raise TariffError(path, f"must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise TariffError(path, f"must be finite, got {value}")
    if value < 0:
        raise TariffError(path, f"must be ≥ 0, got {value}")
    if maximum is not None and value > maximum:
        raise TariffError(path, f"must be ≤ {maximum} (YKC UINT32 in 1e-5), got {value}")
    if value != value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):
        raise TariffError(path, f"at most {places} decimals, got {value}")


def _check_int(value: Any, path: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TariffError(path, f"must be an integer {low}..{high}, got {value!r}")


def _check_slots(slots: Any, path: str, priced: set[Period]) -> None:
    if not isinstance(slots, tuple):
        raise TariffError(path, f"must be {SLOTS_PER_DAY} periods")
    if len(slots) != SLOTS_PER_DAY:
        missing = (
            f"; slots {len(slots)}..47 ({slot_label(len(slots))} onwards) are unassigned"
            if len(slots) < SLOTS_PER_DAY
            else ""
        )
        raise TariffError(path, f"need {SLOTS_PER_DAY} half-hour slots, got {len(slots)}{missing}")
    for i, period in enumerate(slots):
        where = f"{path}[{i}]"
        if period is None:
            raise TariffError(where, f"slot {slot_label(i)} is not assigned")
        if not isinstance(period, Period):
            raise TariffError(
                where, f"slot {slot_label(i)} has unknown period {period!r} (尖峰平谷 only)"
            )
        if period not in priced:
            raise TariffError(
                where, f"slot {slot_label(i)} uses {period.value!r}, which has no price"
            )


def validate_tariff(snapshot: TariffSnapshot) -> None:
    """Check a snapshot is complete and fits YKC; raise :class:`TariffError` naming the field.

    Rules: ``kind`` flat/tou; at most 4 price classes, each period once; prices Decimal ≥ 0,
    ≤ 5 decimals, ≤ 42949.67295 yuan/kWh (YKC UINT32 × 1e-5); every map has 48 slots, each
    naming a priced period; season months 1..12 and disjoint; special dates unique; timezone a
    known IANA name; occupancy per-minute ≤ 5 dp, grace ≥ 0 whole minutes, cap ≤ 2 dp; minimum
    charge ≤ 2 dp; model number 0..9999 (2 BCD bytes); loss ratio 0..255. A flat tariff has one
    price and no seasons or special dates. Called by the constructor, so snapshots are always
    valid; returns ``None``.
    """
    s = snapshot
    if not isinstance(s.kind, TariffKind):
        raise TariffError("kind", f"must be 'flat' or 'tou', got {s.kind!r}")
    if not isinstance(s.prices, tuple) or not s.prices:
        raise TariffError("prices", "at least one period price is required")
    if len(s.prices) > len(PERIOD_ORDER):
        raise TariffError("prices", f"at most 4 price classes (尖峰平谷), got {len(s.prices)}")
    priced: set[Period] = set()
    for i, price in enumerate(s.prices):
        if not isinstance(price, PeriodPrice):
            raise TariffError(f"prices[{i}]", "must be a PeriodPrice")
        if not isinstance(price.period, Period):
            raise TariffError(f"prices[{i}].period", f"unknown period {price.period!r}")
        path = f"prices.{price.period.value}"
        if price.period in priced:
            raise TariffError(path, "period priced twice")
        priced.add(price.period)
        check_decimal(price.electricity, f"{path}.electricity", 5, MAX_UNIT_PRICE)
        check_decimal(price.service, f"{path}.service", 5, MAX_UNIT_PRICE)
    _check_slots(s.slots, "slots", priced)

    seen_months: dict[int, int] = {}
    for i, season in enumerate(s.seasons):
        path = f"seasons[{i}]"
        if not isinstance(season, Season):
            raise TariffError(path, "must be a Season")
        for name in ("start_month", "end_month"):
            if not _is_month(getattr(season, name)):
                raise TariffError(
                    f"{path}.{name}", f"must be a month 1..12, got {getattr(season, name)!r}"
                )
        for month in sorted(season.months):
            if month in seen_months:
                raise TariffError(
                    f"{path}.start_month",
                    f"month {month} is already covered by seasons[{seen_months[month]}]",
                )
            seen_months[month] = i
        _check_slots(season.slots, f"{path}.slots", priced)

    seen_dates: set[date] = set()
    for i, special in enumerate(s.special_dates):
        path = f"special_dates[{i}]"
        if not isinstance(special, SpecialDate):
            raise TariffError(path, "must be a SpecialDate")
        if not isinstance(special.date, date) or isinstance(special.date, datetime):
            raise TariffError(f"{path}.date", f"must be a date, got {special.date!r}")
        if special.date in seen_dates:
            raise TariffError(f"{path}.date", f"{special.date} is listed twice")
        seen_dates.add(special.date)
        _check_slots(special.slots, f"{path}.slots", priced)

    if not isinstance(s.timezone, str) or not s.timezone:
        raise TariffError("timezone", f"must be an IANA zone name, got {s.timezone!r}")
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TariffError("timezone", f"unknown IANA zone {s.timezone!r}") from None

    if s.occupancy is not None:
        if not isinstance(s.occupancy, OccupancyFee):
            raise TariffError("occupancy", "must be an OccupancyFee")
        check_decimal(s.occupancy.per_minute, "occupancy.per_minute", 5)
        _check_int(s.occupancy.grace_minutes, "occupancy.grace_minutes", 0, 24 * 60)
        if s.occupancy.cap is not None:
            check_decimal(s.occupancy.cap, "occupancy.cap", 2)
    if s.minimum_charge is not None:
        check_decimal(s.minimum_charge, "minimum_charge", 2)
    _check_int(s.model_number, "model_number", 0, MAX_MODEL_NUMBER)
    _check_int(s.loss_ratio, "loss_ratio", 0, 255)

    if s.kind is TariffKind.FLAT:
        if len(s.prices) != 1:
            raise TariffError("prices", f"a flat tariff has exactly one price, got {len(s.prices)}")
        if s.seasons:
            raise TariffError("seasons", "a flat tariff has no seasons")
        if s.special_dates:
            raise TariffError("special_dates", "a flat tariff has no special dates")
