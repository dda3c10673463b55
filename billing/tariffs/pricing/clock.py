"""Time lookups on a snapshot: the price at an instant, the periods of a local day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple

from .errors import PricingError
from .periods import Period
from .snapshot import TariffSnapshot


class PriceAt(NamedTuple):
    """Prices in force at one instant: yuan/kWh."""

    period: Period
    electricity: Decimal
    service: Decimal
    total: Decimal


class DayPeriod(NamedTuple):
    """A contiguous same-period stretch of one local day; ``end == time(0)`` means 24:00."""

    start: time
    end: time
    period: Period
    electricity: Decimal
    service: Decimal

    @property
    def label(self) -> str:
        """``"HH:MM–HH:MM"`` with 24:00 for the end of the day."""
        end = "24:00" if self.end == time(0) else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}–{end}"


def _require_aware(instant: Any, path: str) -> datetime:
    if not isinstance(instant, datetime):
        raise PricingError(path, f"must be a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise PricingError(path, "must be timezone-aware")
    return instant


def _period_at_local(snapshot: TariffSnapshot, local: datetime) -> Period:
    return snapshot.slots_on(local.date())[local.hour * 2 + local.minute // 30]


def price_at(snapshot: TariffSnapshot, instant: datetime) -> PriceAt:
    """Period and unit prices (yuan/kWh) at an aware instant, read on the station's wall clock.

    Raises :class:`PricingError` for a naive datetime.
    """
    local = _require_aware(instant, "instant").astimezone(snapshot.zone)
    period = _period_at_local(snapshot, local)
    price = snapshot.price_of(period)
    return PriceAt(period, price.electricity, price.service, price.total)


def day_runs(slots: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """Merge equal neighbours: [(first slot, end slot exclusive, value), ...]."""
    runs: list[tuple[int, int, Any]] = []
    for i, value in enumerate(slots):
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], i + 1, value)
        else:
            runs.append((i, i + 1, value))
    return runs


def slot_time(i: int) -> time:
    return time((i * 30 // 60) % 24, i * 30 % 60)


def periods_on(snapshot: TariffSnapshot, day: date) -> list[DayPeriod]:
    """The local date's schedule as merged contiguous same-period stretches, from 00:00.

    Returns ``[DayPeriod(start, end, period, electricity, service), ...]`` (yuan/kWh),
    covering the whole wall-clock day; the last ``end`` is ``time(0)`` meaning 24:00.
    """
    out = []
    for first, end, period in day_runs(snapshot.slots_on(day)):
        price = snapshot.price_of(period)
        out.append(
            DayPeriod(slot_time(first), slot_time(end), period, price.electricity, price.service)
        )
    return out
