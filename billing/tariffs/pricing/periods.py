"""Tariff building blocks: the four periods (尖峰平谷), period prices, seasons, special dates,
occupancy fees; and the engine's limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

SLOTS_PER_DAY = 48
SNAPSHOT_SCHEMA = 1
# Unit prices are sent to piles as UINT32 in 1e-5 yuan/kWh (YKC), so this is the largest.
MAX_UNIT_PRICE = Decimal("42949.67295")
MAX_MODEL_NUMBER = 9999  # the model number a pile is sent: 2 BCD bytes


# ---------------------------------------------------------------- tariff data


class Period(StrEnum):
    """尖峰平谷; the value is the JSON name, :attr:`code` the YKC slot code 0..3."""

    SHARP = "sharp"
    PEAK = "peak"
    FLAT = "flat"
    VALLEY = "valley"

    @property
    def code(self) -> int:
        """YKC §3.4 slot code: 0x00 sharp, 0x01 peak, 0x02 flat, 0x03 valley."""
        return PERIOD_ORDER.index(self)

    @classmethod
    def from_code(cls, code: int) -> Period:
        """Period for a YKC slot code 0..3; raises ``ValueError`` for anything else."""
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 3:
            raise ValueError(f"YKC period code must be 0..3, got {code!r}")
        return PERIOD_ORDER[code]


PERIOD_ORDER: tuple[Period, ...] = (Period.SHARP, Period.PEAK, Period.FLAT, Period.VALLEY)


class TariffKind(StrEnum):
    FLAT = "flat"
    TOU = "tou"


@dataclass(frozen=True)
class PeriodPrice:
    """Unit prices of one period: electricity (电费) and service (服务费), yuan/kWh, ≤ 5 dp."""

    period: Period
    electricity: Decimal
    service: Decimal

    @property
    def total(self) -> Decimal:
        """Electricity + service, yuan/kWh (what YKC 0x3B calls the period's 单价)."""
        return self.electricity + self.service


@dataclass(frozen=True)
class Season:
    """A month range (inclusive, may wrap the year end, e.g. 11..2) with its own 48-slot map."""

    start_month: int
    end_month: int
    slots: tuple[Period, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", _coerce_slots(self.slots))

    @property
    def months(self) -> frozenset[int]:
        """The months 1..12 this season covers (empty if the range is invalid)."""
        if not (_is_month(self.start_month) and _is_month(self.end_month)):
            return frozenset()
        if self.start_month <= self.end_month:
            return frozenset(range(self.start_month, self.end_month + 1))
        return frozenset(range(self.start_month, 13)) | frozenset(range(1, self.end_month + 1))


@dataclass(frozen=True)
class SpecialDate:
    """A local calendar date with its own 48-slot map (e.g. a critical-peak day)."""

    date: date
    slots: tuple[Period, ...]
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", _coerce_slots(self.slots))


@dataclass(frozen=True)
class OccupancyFee:
    """占位费: ``per_minute`` yuan/minute (≤ 5 dp) after charging ends plus ``grace_minutes``,
    capped at ``cap`` yuan (≤ 2 dp) per session when set."""

    per_minute: Decimal
    grace_minutes: int = 0
    cap: Decimal | None = None


def _coerce_slots(slots: Any) -> Any:
    """Tuple of Periods where the values are period names; anything odd is left for validation."""
    if isinstance(slots, str | bytes) or not isinstance(slots, Iterable):
        return slots
    out = []
    for s in slots:
        if isinstance(s, str) and not isinstance(s, Period):
            try:
                s = Period(s)
            except ValueError:
                pass
        out.append(s)
    return tuple(out)


def _is_month(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12
