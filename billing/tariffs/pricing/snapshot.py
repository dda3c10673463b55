"""TariffSnapshot: the immutable tariff locked onto an order, and its dict form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from .errors import TariffError
from .periods import (
    PERIOD_ORDER,
    SLOTS_PER_DAY,
    SNAPSHOT_SCHEMA,
    OccupancyFee,
    Period,
    PeriodPrice,
    Season,
    SpecialDate,
    TariffKind,
    _coerce_slots,
)
from .validation import validate_tariff


@dataclass(frozen=True)
class TariffSnapshot:
    """A validated, immutable tariff as locked onto an order (计费模型 snapshot).

    * ``prices``: one :class:`PeriodPrice` per period used (at most 4, any order);
    * ``slots``: 48 periods, slot i covering [i×30 min, (i+1)×30 min) local wall-clock time;
    * ``seasons``: month ranges replacing ``slots`` (disjoint months);
    * ``special_dates``: dates replacing ``slots`` and any season (critical-peak days);
    * ``timezone``: IANA name of the station's zone;
    * ``occupancy``, ``minimum_charge`` (yuan, ≤ 2 dp): optional;
    * ``model_number``: YKC 计费模型编号 0..9999, ``loss_ratio``: YKC 计损比例 0..255 (send 0).

    Construction validates (see :func:`validate_tariff`) and raises :class:`TariffError`.
    A flat tariff has exactly one price and every slot set to that period, so YKC encoding
    works unchanged.
    """

    kind: TariffKind
    prices: tuple[PeriodPrice, ...]
    slots: tuple[Period, ...]
    seasons: tuple[Season, ...] = ()
    special_dates: tuple[SpecialDate, ...] = ()
    timezone: str = "Asia/Shanghai"
    occupancy: OccupancyFee | None = None
    minimum_charge: Decimal | None = None
    model_number: int = 1
    loss_ratio: int = 0

    # Lookup tables derived in __post_init__; not part of equality, hashing or the dict form.
    _price_of: dict[Period, PeriodPrice] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _month_slots: tuple[tuple[Period, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False, default=()
    )
    _special: dict[date, tuple[Period, ...]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _zone: ZoneInfo | None = field(init=False, repr=False, compare=False, hash=False, default=None)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        if isinstance(self.kind, str) and not isinstance(self.kind, TariffKind):
            try:
                setattr_(self, "kind", TariffKind(self.kind))
            except ValueError:
                raise TariffError("kind", f"must be 'flat' or 'tou', got {self.kind!r}") from None
        setattr_(self, "prices", tuple(self.prices))
        setattr_(self, "slots", _coerce_slots(self.slots))
        setattr_(self, "seasons", tuple(self.seasons))
        setattr_(self, "special_dates", tuple(self.special_dates))
        validate_tariff(self)
        setattr_(self, "_price_of", {p.period: p for p in self.prices})
        month_slots = [self.slots] * 13
        for season in self.seasons:
            for month in season.months:
                month_slots[month] = season.slots
        setattr_(self, "_month_slots", tuple(month_slots))
        setattr_(self, "_special", {s.date: s.slots for s in self.special_dates})
        setattr_(self, "_zone", ZoneInfo(self.timezone))

    @property
    def zone(self) -> ZoneInfo:
        """The station's time zone."""
        assert self._zone is not None
        return self._zone

    def price_of(self, period: Period) -> PeriodPrice:
        """Prices of ``period``; raises ``KeyError`` if the tariff does not price it."""
        return self._price_of[period]

    def slots_on(self, day: date) -> tuple[Period, ...]:
        """The 48-slot map that applies on local date ``day`` (special date > season > default)."""
        special = self._special.get(day)
        if special is not None:
            return special
        return self._month_slots[day.month]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (Decimals as strings, dates ISO); :meth:`from_dict` reverses it.

        Shape::

            {"schema": 1, "kind": "tou", "timezone": "Asia/Shanghai",
             "model_number": 1, "loss_ratio": 0,
             "prices": {"peak": {"electricity": "1.10500", "service": "0.40000"}, ...},
             "slots": ["valley", ... 48 names],
             "seasons": [{"name": "summer", "start_month": 7, "end_month": 9,
                          "slots": [... 48]}],
             "special_dates": [{"date": "2026-10-10", "note": "", "slots": [... 48]}],
             "occupancy": {"per_minute": "0.50000", "grace_minutes": 15, "cap": "30.00"} | None,
             "minimum_charge": "1.00" | None}
        """
        occupancy = None
        if self.occupancy is not None:
            occupancy = {
                "per_minute": f"{self.occupancy.per_minute:.5f}",
                "grace_minutes": self.occupancy.grace_minutes,
                "cap": None if self.occupancy.cap is None else f"{self.occupancy.cap:.2f}",
            }
        return {
            "schema": SNAPSHOT_SCHEMA,
            "kind": self.kind.value,
            "timezone": self.timezone,
            "model_number": self.model_number,
            "loss_ratio": self.loss_ratio,
            "prices": {
                p.period.value: {
                    "electricity": f"{p.electricity:.5f}",
                    "service": f"{p.service:.5f}",
                }
                for p in sorted(self.prices, key=lambda p: p.period.code)
            },
            "slots": [p.value for p in self.slots],
            "seasons": [
                {
                    "name": s.name,
                    "start_month": s.start_month,
                    "end_month": s.end_month,
                    "slots": [p.value for p in s.slots],
                }
                for s in self.seasons
            ],
            "special_dates": [
                {"date": s.date.isoformat(), "note": s.note, "slots": [p.value for p in s.slots]}
                for s in self.special_dates
            ],
            "occupancy": occupancy,
            "minimum_charge": (
                None if self.minimum_charge is None else f"{self.minimum_charge:.2f}"
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TariffSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output; raises :class:`TariffError`.

        Decimals must be strings or ints (floats are refused: they are not exact).
        Missing optional keys take the dataclass defaults.
        """
        if not isinstance(data, Mapping):
            raise TariffError("snapshot", "must be a mapping")
        schema = data.get("schema", SNAPSHOT_SCHEMA)
        if schema != SNAPSHOT_SCHEMA:
            raise TariffError("schema", f"unsupported snapshot schema {schema!r}")
        raw_prices = data.get("prices")
        if not isinstance(raw_prices, Mapping):
            raise TariffError("prices", "must be a mapping of period name to prices")
        if len(raw_prices) > len(PERIOD_ORDER):
            raise TariffError(
                "prices",
                f"at most 4 price classes (sharp, peak, flat, valley), got {len(raw_prices)}; "
                "map extra levels such as 深谷 onto one of them",
            )
        prices = []
        for name, pair in raw_prices.items():
            path = f"prices.{name}"
            period = _parse_period(name, path)
            if not isinstance(pair, Mapping):
                raise TariffError(path, "must be a mapping with electricity and service")
            prices.append(
                PeriodPrice(
                    period,
                    _parse_decimal(pair.get("electricity"), f"{path}.electricity"),
                    _parse_decimal(pair.get("service"), f"{path}.service"),
                )
            )
        seasons = []
        for i, raw in enumerate(data.get("seasons") or ()):
            _require_mapping(raw, f"seasons[{i}]")
            seasons.append(
                Season(
                    start_month=raw.get("start_month"),
                    end_month=raw.get("end_month"),
                    slots=_parse_slots(raw.get("slots"), f"seasons[{i}].slots"),
                    name=raw.get("name", ""),
                )
            )
        special_dates = []
        for i, raw in enumerate(data.get("special_dates") or ()):
            _require_mapping(raw, f"special_dates[{i}]")
            try:
                day = date.fromisoformat(raw.get("date"))
            except (TypeError, ValueError):
                raise TariffError(
                    f"special_dates[{i}].date", f"must be YYYY-MM-DD, got {raw.get('date')!r}"
                ) from None
            special_dates.append(
                SpecialDate(
                    date=day,
                    slots=_parse_slots(raw.get("slots"), f"special_dates[{i}].slots"),
                    note=raw.get("note", ""),
                )
            )
        occupancy = None
        raw_occ = data.get("occupancy")
        if raw_occ is not None:
            _require_mapping(raw_occ, "occupancy")
            cap = raw_occ.get("cap")
            occupancy = OccupancyFee(
                per_minute=_parse_decimal(raw_occ.get("per_minute"), "occupancy.per_minute"),
                grace_minutes=raw_occ.get("grace_minutes", 0),
                cap=None if cap is None else _parse_decimal(cap, "occupancy.cap"),
            )
        minimum = data.get("minimum_charge")
        return cls(
            kind=data.get("kind"),
            prices=tuple(prices),
            slots=_parse_slots(data.get("slots"), "slots"),
            seasons=tuple(seasons),
            special_dates=tuple(special_dates),
            timezone=data.get("timezone", "Asia/Shanghai"),
            occupancy=occupancy,
            minimum_charge=None if minimum is None else _parse_decimal(minimum, "minimum_charge"),
            model_number=data.get("model_number", 1),
            loss_ratio=data.get("loss_ratio", 0),
        )


def _require_mapping(raw: Any, path: str) -> None:
    if not isinstance(raw, Mapping):
        raise TariffError(path, f"must be a mapping, got {type(raw).__name__}")


def _parse_period(name: Any, path: str) -> Period:
    try:
        return Period(name)
    except ValueError:
        raise TariffError(
            path, f"unknown period {name!r}; use sharp, peak, flat or valley (尖峰平谷)"
        ) from None


def _parse_slots(raw: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(raw, list | tuple):
        raise TariffError(path, f"must be a list of {SLOTS_PER_DAY} period names")
    return tuple(raw)


def _parse_decimal(raw: Any, path: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise TariffError(path, f"must be a decimal string, got {raw!r}")
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise TariffError(path, f"not a decimal: {raw!r}") from None
