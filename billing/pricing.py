"""Pricing engine: tariff snapshots, energy splitting and bills (pure functions, no I/O).

Units used throughout (the field's own, see STYLE.md):

* energy: kWh as ``Decimal`` kept at 4 decimals (0.0001 kWh, as YKC 0x3B reports it);
* unit prices: yuan/kWh as ``Decimal`` with at most 5 decimals (YKC 0x0A/0x58 rates);
* money: yuan as ``Decimal``; every amount is rounded exactly once, to 0.01 yuan with
  ``ROUND_HALF_UP``, by :func:`money_round`;
* instants: timezone-aware ``datetime``; the tariff's half-hour slots are read on the station's
  local wall clock (IANA zone on the snapshot, default Asia/Shanghai).

Periods are 尖峰平谷 = sharp/peak/flat/valley, coded 0..3 in that order as in YKC §3.4.

A :class:`TariffSnapshot` is what gets locked onto an order when charging starts: a mid-session
tariff edit must not re-price the session, so the engine only ever sees the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "GUANGDONG_DEFAULT_SLOTS",
    "GUANGDONG_SUMMER_SLOTS",
    "SLOTS_PER_DAY",
    "Bill",
    "BillLine",
    "DayPeriod",
    "MeterSplit",
    "OccupancyFee",
    "Period",
    "PeriodPrice",
    "PileCheck",
    "PriceAt",
    "PricingError",
    "Season",
    "Segment",
    "SpecialDate",
    "TariffError",
    "TariffKind",
    "TariffSnapshot",
    "YkcBillingModel",
    "compare_with_pile",
    "flat_tariff",
    "from_ykc_billing_model",
    "guangdong_tou_tariff",
    "money_round",
    "occupancy_fee",
    "periods_on",
    "preview",
    "price_at",
    "price_meter_readings",
    "price_pile_energy",
    "split_meter_readings",
    "to_cec_policy_infos",
    "to_ykc_billing_model",
    "validate_tariff",
    "ykc_wire_rates",
]

SLOTS_PER_DAY = 48
SNAPSHOT_SCHEMA = 1

_CENT = Decimal("0.01")
_KWH = Decimal("0.0001")
_PRICE = Decimal("0.00001")
_ZERO = Decimal("0")
_ZERO_KWH = Decimal("0.0000")
_ZERO_YUAN = Decimal("0.00")
# YKC rates are UINT32 in 1e-5 yuan/kWh, so this is the largest price the pile can be sent.
_MAX_PRICE = Decimal("42949.67295")
_MAX_MODEL_NUMBER = 9999  # 2 bytes BCD
_PILE_TOLERANCE = Decimal("0.01")
_QUARTER_HOUR = timedelta(minutes=15)
_MICROSECOND = timedelta(microseconds=1)


# ---------------------------------------------------------------- errors and rounding


class TariffError(ValueError):
    """A tariff snapshot (or its dict / YKC form) is invalid; ``.field`` names the culprit.

    ``field`` is a path such as ``"slots[17]"``, ``"prices.peak.electricity"`` or
    ``"seasons[0].start_month"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PricingError(ValueError):
    """Engine input (energies, meter readings, instants) is invalid; ``.field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def money_round(amount: Decimal) -> Decimal:
    """Round a yuan amount to 0.01 yuan with ROUND_HALF_UP: the platform's only money rounding.

    ``amount`` is yuan (any precision); returns yuan with exactly 2 decimals.
    """
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _kwh(value: Decimal) -> Decimal:
    return value.quantize(_KWH, rounding=ROUND_HALF_UP)


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
        return _PERIOD_ORDER.index(self)

    @classmethod
    def from_code(cls, code: int) -> Period:
        """Period for a YKC slot code 0..3; raises ``ValueError`` for anything else."""
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 3:
            raise ValueError(f"YKC period code must be 0..3, got {code!r}")
        return _PERIOD_ORDER[code]


_PERIOD_ORDER: tuple[Period, ...] = (Period.SHARP, Period.PEAK, Period.FLAT, Period.VALLEY)


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
        if len(raw_prices) > len(_PERIOD_ORDER):
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


# ---------------------------------------------------------------- validation


def _slot_label(i: int) -> str:
    start = i * 30
    end = start + 30
    return f"{start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d}"


def _is_month(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12


def _check_decimal(value: Any, path: str, places: int, maximum: Decimal | None = None) -> None:
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
            f"; slots {len(slots)}..47 ({_slot_label(len(slots))} onwards) are unassigned"
            if len(slots) < SLOTS_PER_DAY
            else ""
        )
        raise TariffError(path, f"need {SLOTS_PER_DAY} half-hour slots, got {len(slots)}{missing}")
    for i, period in enumerate(slots):
        where = f"{path}[{i}]"
        if period is None:
            raise TariffError(where, f"slot {_slot_label(i)} is not assigned")
        if not isinstance(period, Period):
            raise TariffError(
                where, f"slot {_slot_label(i)} has unknown period {period!r} (尖峰平谷 only)"
            )
        if period not in priced:
            raise TariffError(
                where, f"slot {_slot_label(i)} uses {period.value!r}, which has no price"
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
    if len(s.prices) > len(_PERIOD_ORDER):
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
        _check_decimal(price.electricity, f"{path}.electricity", 5, _MAX_PRICE)
        _check_decimal(price.service, f"{path}.service", 5, _MAX_PRICE)
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
        _check_decimal(s.occupancy.per_minute, "occupancy.per_minute", 5)
        _check_int(s.occupancy.grace_minutes, "occupancy.grace_minutes", 0, 24 * 60)
        if s.occupancy.cap is not None:
            _check_decimal(s.occupancy.cap, "occupancy.cap", 2)
    if s.minimum_charge is not None:
        _check_decimal(s.minimum_charge, "minimum_charge", 2)
    _check_int(s.model_number, "model_number", 0, _MAX_MODEL_NUMBER)
    _check_int(s.loss_ratio, "loss_ratio", 0, 255)

    if s.kind is TariffKind.FLAT:
        if len(s.prices) != 1:
            raise TariffError("prices", f"a flat tariff has exactly one price, got {len(s.prices)}")
        if s.seasons:
            raise TariffError("seasons", "a flat tariff has no seasons")
        if s.special_dates:
            raise TariffError("special_dates", "a flat tariff has no special dates")


# ---------------------------------------------------------------- constructors


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


def _price5(value: Decimal) -> Decimal:
    return value.quantize(_PRICE, rounding=ROUND_HALF_UP)


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
    peak = _price5(flat_electricity * Decimal("1.7"))
    return TariffSnapshot(
        kind=TariffKind.TOU,
        prices=(
            PeriodPrice(Period.SHARP, _price5(peak * Decimal("1.25")), service),
            PeriodPrice(Period.PEAK, peak, service),
            PeriodPrice(Period.FLAT, flat_electricity, service),
            PeriodPrice(Period.VALLEY, _price5(flat_electricity * Decimal("0.38")), service),
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


# ---------------------------------------------------------------- time lookups


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


def _runs(slots: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """Merge equal neighbours: [(first slot, end slot exclusive, value), ...]."""
    runs: list[tuple[int, int, Any]] = []
    for i, value in enumerate(slots):
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], i + 1, value)
        else:
            runs.append((i, i + 1, value))
    return runs


def _slot_time(i: int) -> time:
    return time((i * 30 // 60) % 24, i * 30 % 60)


def periods_on(snapshot: TariffSnapshot, day: date) -> list[DayPeriod]:
    """The local date's schedule as merged contiguous same-period stretches, from 00:00.

    Returns ``[DayPeriod(start, end, period, electricity, service), ...]`` (yuan/kWh),
    covering the whole wall-clock day; the last ``end`` is ``time(0)`` meaning 24:00.
    """
    out = []
    for first, end, period in _runs(snapshot.slots_on(day)):
        price = snapshot.price_of(period)
        out.append(
            DayPeriod(_slot_time(first), _slot_time(end), period, price.electricity, price.service)
        )
    return out


# ---------------------------------------------------------------- splitting meter timelines


@dataclass(frozen=True)
class Segment:
    """Energy (kWh, 4 dp) charged in one period between two aware UTC instants."""

    start: datetime
    end: datetime
    period: Period
    energy_kwh: Decimal


@dataclass(frozen=True)
class MeterSplit:
    """Result of :func:`split_meter_readings`.

    ``segments`` are chronological, one per contiguous period stretch; their energies sum
    exactly to ``energy_kwh``. ``interpolated`` is True when a period boundary fell between
    two readings, so part of the split is a linear estimate rather than a measurement.
    """

    segments: tuple[Segment, ...]
    energy_kwh: Decimal
    interpolated: bool


def _normalise_readings(
    readings: Sequence[tuple[datetime, Decimal]],
) -> list[tuple[datetime, Decimal]]:
    if not readings:
        raise PricingError("readings", "at least one meter reading is required")
    points: list[tuple[datetime, Decimal]] = []
    last_instant: datetime | None = None
    last_kwh = _ZERO
    # Tight loop: this runs for every reading of every order (see benchmarks/pricing.py).
    for i, item in enumerate(readings):
        try:
            instant, kwh = item
        except (TypeError, ValueError):
            raise PricingError(f"readings[{i}]", "must be an (aware datetime, kWh) pair") from None
        if not isinstance(instant, datetime) or instant.utcoffset() is None:
            _require_aware(instant, f"readings[{i}]")
        instant = instant.astimezone(UTC)
        if type(kwh) is not Decimal:
            if isinstance(kwh, bool) or not isinstance(kwh, Decimal | int):
                raise PricingError(f"readings[{i}]", f"kWh must be a Decimal, got {kwh!r}")
            kwh = Decimal(kwh)
        if not kwh.is_finite():
            raise PricingError(f"readings[{i}]", f"kWh must be finite, got {kwh!r}")
        kwh = kwh.quantize(_KWH, rounding=ROUND_HALF_UP)
        if last_instant is None:
            if kwh < 0:
                raise PricingError(f"readings[{i}]", f"kWh must be ≥ 0, got {kwh}")
        else:
            if instant <= last_instant:
                if instant == last_instant and kwh == last_kwh:
                    continue  # exact duplicate
                raise PricingError(
                    f"readings[{i}]", f"time goes backwards or repeats at {instant.isoformat()}"
                )
            if kwh < last_kwh:
                raise PricingError(
                    f"readings[{i}]", f"meter went down from {last_kwh} to {kwh} kWh"
                )
        points.append((instant, kwh))
        last_instant, last_kwh = instant, kwh
    return points


def _period_changes(
    snapshot: TariffSnapshot, start: datetime, end: datetime
) -> list[tuple[datetime, Period]]:
    """[(UTC instant, period from then on), ...] starting at ``start``, changes before ``end``.

    Every real zone's offset and DST switch is a whole quarter hour, so every local :00/:30
    (the only places a period can change) and every DST jump is on a UTC quarter hour: walking
    those and reading the wall clock there handles midnight, seasons and DST gaps/folds alike.
    """
    zone = snapshot.zone
    local = start.astimezone(zone)
    offset = local.utcoffset()
    if offset is None or offset % _QUARTER_HOUR:
        raise PricingError("timezone", f"offset {offset} of {zone.key} is not whole quarter hours")
    current = _period_at_local(snapshot, local)
    changes = [(start, current)]
    q = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
    q += _QUARTER_HOUR
    while q < end:
        period = _period_at_local(snapshot, q.astimezone(zone))
        if period is not current:
            changes.append((q, period))
            current = period
        q += _QUARTER_HOUR
    return changes


def split_meter_readings(
    snapshot: TariffSnapshot, readings: Sequence[tuple[datetime, Decimal]]
) -> MeterSplit:
    """Split a cumulative meter timeline at every period boundary.

    ``readings``: ``[(aware datetime, cumulative kWh Decimal), ...]`` in time order (kWh are
    rounded HALF_UP to 4 dp; exact duplicates are dropped). Boundaries are the station's local
    half-hour slot edges under each day's map (special date > season > default); the meter value
    at a boundary between two readings is linearly interpolated in time.

    Rounding: the cumulative value at each boundary is rounded to 0.0001 kWh and each segment is
    the difference of neighbouring cumulative values, so the remainder lands deterministically
    and segments sum exactly to last − first reading, never negative.

    Raises :class:`PricingError` for no readings, naive datetimes, time going backwards, a
    decreasing meter or negative kWh.
    """
    points = _normalise_readings(readings)
    if len(points) == 1:
        return MeterSplit((), _ZERO_KWH, False)
    first, last = points[0][0], points[-1][0]
    changes = _period_changes(snapshot, first, last)
    bounds = [instant for instant, _ in changes]
    bounds.append(last)

    cumulative: list[Decimal] = []
    interpolated = False
    j = 0
    n = len(points)
    for b in bounds:
        while j + 1 < n and points[j + 1][0] <= b:
            j += 1
        t0, e0 = points[j]
        if t0 == b:
            cumulative.append(e0)
            continue
        t1, e1 = points[j + 1]
        elapsed = (b - t0) // _MICROSECOND
        span = (t1 - t0) // _MICROSECOND
        cumulative.append(_kwh(e0 + (e1 - e0) * elapsed / span))
        interpolated = True

    segments = tuple(
        Segment(start, bounds[i + 1], period, cumulative[i + 1] - cumulative[i])
        for i, (start, period) in enumerate(changes)
    )
    return MeterSplit(segments, points[-1][1] - points[0][1], interpolated)


# ---------------------------------------------------------------- bills


@dataclass(frozen=True)
class BillLine:
    """One priced line: all energy at one (electricity, service) price pair.

    ``periods`` are the periods that share that price pair (usually one); amounts are yuan
    rounded once by :func:`money_round`; prices yuan/kWh; energy kWh 4 dp. ``segments`` are the
    chronological stretches of those periods when the split came from a meter timeline.
    """

    periods: tuple[Period, ...]
    energy_kwh: Decimal
    electricity_price: Decimal
    service_price: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal
    segments: tuple[Segment, ...] = ()

    @property
    def period(self) -> Period:
        """The line's (first, in sharp→valley order) period."""
        return self.periods[0]

    @property
    def amount_yuan(self) -> Decimal:
        return self.electricity_yuan + self.service_yuan


@dataclass(frozen=True)
class Bill:
    """A priced session. All money is yuan with 2 dp; energy kWh with 4 dp.

    ``total_yuan = electricity_yuan + service_yuan + minimum_topup_yuan + occupancy_yuan``,
    where electricity/service are sums of the rounded lines. ``period_energy`` gives kWh per
    period in sharp→valley order (comparable with YKC 0x3B). ``source`` is ``"pile"`` or
    ``"meter"``.
    """

    lines: tuple[BillLine, ...]
    energy_kwh: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal
    minimum_topup_yuan: Decimal
    occupancy_yuan: Decimal
    total_yuan: Decimal
    period_energy: tuple[tuple[Period, Decimal], ...]
    segments: tuple[Segment, ...]
    source: str
    interpolated: bool = False

    @property
    def charging_yuan(self) -> Decimal:
        """Electricity + service (what a pile's 消费金额 should match), yuan."""
        return self.electricity_yuan + self.service_yuan

    def energy_of(self, period: Period) -> Decimal:
        """kWh (4 dp) charged in ``period``."""
        return dict(self.period_energy)[period]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: Decimals as strings, instants ISO 8601 UTC."""

        def seg(s: Segment) -> dict[str, str]:
            return {
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "period": s.period.value,
                "energy_kwh": str(s.energy_kwh),
            }

        return {
            "lines": [
                {
                    "periods": [p.value for p in line.periods],
                    "energy_kwh": str(line.energy_kwh),
                    "electricity_price": str(line.electricity_price),
                    "service_price": str(line.service_price),
                    "electricity_yuan": str(line.electricity_yuan),
                    "service_yuan": str(line.service_yuan),
                }
                for line in self.lines
            ],
            "energy_kwh": str(self.energy_kwh),
            "electricity_yuan": str(self.electricity_yuan),
            "service_yuan": str(self.service_yuan),
            "minimum_topup_yuan": str(self.minimum_topup_yuan),
            "occupancy_yuan": str(self.occupancy_yuan),
            "total_yuan": str(self.total_yuan),
            "period_energy": {p.value: str(e) for p, e in self.period_energy},
            "segments": [seg(s) for s in self.segments],
            "source": self.source,
            "interpolated": self.interpolated,
        }


def occupancy_fee(snapshot: TariffSnapshot, idle_minutes: int) -> Decimal:
    """占位费 in yuan (2 dp) for ``idle_minutes`` whole minutes occupied after charging ended.

    Minutes beyond the grace period × yuan/minute, rounded once, then capped. Zero when the
    tariff has no occupancy fee. Raises :class:`PricingError` for negative or non-int minutes.
    """
    if isinstance(idle_minutes, bool) or not isinstance(idle_minutes, int) or idle_minutes < 0:
        raise PricingError("idle_minutes", f"must be whole minutes ≥ 0, got {idle_minutes!r}")
    fee = snapshot.occupancy
    if fee is None:
        return _ZERO_YUAN
    billable = max(0, idle_minutes - fee.grace_minutes)
    amount = money_round(fee.per_minute * billable)
    if fee.cap is not None and amount > fee.cap:
        amount = money_round(fee.cap)
    return amount


def _build_bill(
    snapshot: TariffSnapshot,
    energy: dict[Period, Decimal],
    segments: tuple[Segment, ...],
    *,
    idle_minutes: int,
    source: str,
    interpolated: bool,
) -> Bill:
    # Group periods by price pair: periods that cost the same are one line, rounded once, so a
    # TOU tariff with equal prices bills exactly like the flat one.
    groups: dict[tuple[Decimal, Decimal], list[Period]] = {}
    for period in _PERIOD_ORDER:
        if energy.get(period, _ZERO) > 0:
            price = snapshot.price_of(period)
            groups.setdefault((price.electricity, price.service), []).append(period)
    lines = []
    for (elec, service), periods in groups.items():
        kwh = sum((energy[p] for p in periods), _ZERO_KWH)
        lines.append(
            BillLine(
                periods=tuple(periods),
                energy_kwh=kwh,
                electricity_price=elec,
                service_price=service,
                electricity_yuan=money_round(kwh * elec),
                service_yuan=money_round(kwh * service),
                segments=tuple(s for s in segments if s.period in periods),
            )
        )
    total_energy = sum(energy.values(), _ZERO_KWH)
    electricity = sum((line.electricity_yuan for line in lines), _ZERO_YUAN)
    service = sum((line.service_yuan for line in lines), _ZERO_YUAN)
    topup = _ZERO_YUAN
    # 起步价 applies only to sessions that delivered energy: a failed start costs nothing.
    minimum = snapshot.minimum_charge
    if minimum is not None and total_energy > 0 and electricity + service < minimum:
        topup = money_round(minimum - electricity - service)
    occupancy = occupancy_fee(snapshot, idle_minutes)
    return Bill(
        lines=tuple(lines),
        energy_kwh=total_energy,
        electricity_yuan=electricity,
        service_yuan=service,
        minimum_topup_yuan=topup,
        occupancy_yuan=occupancy,
        total_yuan=electricity + service + topup + occupancy,
        period_energy=tuple((p, energy.get(p, _ZERO_KWH)) for p in _PERIOD_ORDER),
        segments=segments,
        source=source,
        interpolated=interpolated,
    )


def price_pile_energy(
    snapshot: TariffSnapshot,
    energy_by_period: Mapping[Period | str, Decimal],
    *,
    idle_minutes: int = 0,
) -> Bill:
    """Bill from the per-period energies a pile reports (YKC 0x3B 尖/峰/平/谷电量).

    ``energy_by_period``: kWh per period (Decimal ≥ 0, rounded HALF_UP to 4 dp); missing
    periods are 0. ``idle_minutes``: whole minutes occupied after charging (占位费).
    Raises :class:`PricingError` for negative energy, unknown periods, or energy in a period the
    tariff does not price.
    """
    energy: dict[Period, Decimal] = {}
    for key, kwh in energy_by_period.items():
        try:
            period = Period(key)
        except ValueError:
            raise PricingError(f"energy.{key}", "unknown period") from None
        path = f"energy.{period.value}"
        if (
            isinstance(kwh, bool)
            or not isinstance(kwh, Decimal | int)
            or not Decimal(kwh).is_finite()
        ):
            raise PricingError(path, f"must be a Decimal kWh, got {kwh!r}")
        kwh = _kwh(Decimal(kwh))
        if kwh < 0:
            raise PricingError(path, f"must be ≥ 0, got {kwh}")
        if kwh > 0 and period not in snapshot._price_of:
            raise PricingError(
                path, f"{kwh} kWh in {period.value!r}, which the tariff does not price"
            )
        energy[period] = energy.get(period, _ZERO_KWH) + kwh
    return _build_bill(
        snapshot, energy, (), idle_minutes=idle_minutes, source="pile", interpolated=False
    )


def price_meter_readings(
    snapshot: TariffSnapshot,
    readings: Sequence[tuple[datetime, Decimal]],
    *,
    idle_minutes: int = 0,
) -> Bill:
    """Bill from a cumulative meter timeline ``[(aware datetime, kWh), ...]``.

    The timeline is split with :func:`split_meter_readings` (see there for the boundary and
    rounding rules), energy is aggregated per period and priced; ``idle_minutes`` are whole
    minutes occupied after charging (占位费). ``Bill.interpolated`` flags estimated splits.
    Raises :class:`PricingError`.
    """
    split = split_meter_readings(snapshot, readings)
    energy: dict[Period, Decimal] = {}
    for segment in split.segments:
        energy[segment.period] = energy.get(segment.period, _ZERO_KWH) + segment.energy_kwh
    return _build_bill(
        snapshot,
        energy,
        split.segments,
        idle_minutes=idle_minutes,
        source="meter",
        interpolated=split.interpolated,
    )


def preview(snapshot: TariffSnapshot, start: datetime, kw: Decimal, minutes: int) -> Bill:
    """Sample bill for charging at a constant ``kw`` (kW) for ``minutes`` from aware ``start``.

    Energy = kW × minutes / 60, rounded to 4 dp, spread evenly in time. Raises
    :class:`PricingError` for a naive start, negative power or negative minutes.
    """
    _require_aware(start, "start")
    if isinstance(kw, bool) or not isinstance(kw, Decimal | int) or kw < 0:
        raise PricingError("kw", f"must be a Decimal ≥ 0, got {kw!r}")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise PricingError("minutes", f"must be whole minutes ≥ 0, got {minutes!r}")
    energy = _kwh(Decimal(kw) * minutes / 60)
    return price_meter_readings(
        snapshot, [(start, _ZERO_KWH), (start + timedelta(minutes=minutes), energy)]
    )


class PileCheck(NamedTuple):
    """Platform vs pile charging amount, yuan; ``mismatch`` when |difference| > 0.01."""

    platform_yuan: Decimal
    pile_yuan: Decimal
    difference_yuan: Decimal
    mismatch: bool


def compare_with_pile(bill: Bill, pile_amount: Decimal) -> PileCheck:
    """Compare the bill's electricity + service with the pile's total (YKC 0x3B 消费金额).

    ``pile_amount`` is yuan (the pile sends 4 dp). ``difference_yuan`` = platform − pile.
    Occupancy fee and minimum top-up are the platform's own and are not compared.
    Raises :class:`PricingError` for a non-Decimal amount.
    """
    if isinstance(pile_amount, bool) or not isinstance(pile_amount, Decimal | int):
        raise PricingError("pile_amount", f"must be a Decimal, got {pile_amount!r}")
    pile = Decimal(pile_amount)
    difference = bill.charging_yuan - pile
    return PileCheck(bill.charging_yuan, pile, difference, abs(difference) > _PILE_TOLERANCE)


# ---------------------------------------------------------------- protocol conversions


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
    electricity = []
    service = []
    for period in _PERIOD_ORDER:
        price = snapshot._price_of.get(period)
        electricity.append(_price5(price.electricity) if price else _price5(_ZERO))
        service.append(_price5(price.service) if price else _price5(_ZERO))
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
                f"slots[{i}]", f"slot {_slot_label(i)} has code {code!r}, expected 0..3"
            ) from None
    for i, rate in enumerate(rates):
        name = f"rates[{i}] ({_PERIOD_ORDER[i % 4].value} {'electricity' if i < 4 else 'service'})"
        _check_decimal(rate, name, 5, _MAX_PRICE)
    used = [p for p in _PERIOD_ORDER if p in slots]
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


def to_cec_policy_infos(
    snapshot: TariffSnapshot, on_date: date, *, places: int = 4
) -> list[dict[str, Any]]:
    """T/CEC 102 ``PolicyInfos`` for local date ``on_date``.

    Returns ``[{"StartTime": "HHmmss", "ElecPrice": Decimal, "SevicePrice": Decimal}, ...]``
    (the standard's spelling "Sevice"), first at ``"000000"``, each running to the next
    StartTime; prices yuan/kWh rounded HALF_UP to ``places`` decimals (4 in the standard), and
    neighbours with equal rounded prices merged. ``SumPeriod`` is ``len()`` of the result.
    """
    quantum = Decimal(1).scaleb(-places)
    priced = [
        (
            snapshot.price_of(p).electricity.quantize(quantum, rounding=ROUND_HALF_UP),
            snapshot.price_of(p).service.quantize(quantum, rounding=ROUND_HALF_UP),
        )
        for p in snapshot.slots_on(on_date)
    ]
    return [
        {
            "StartTime": _slot_time(first).strftime("%H%M%S"),
            "ElecPrice": elec,
            "SevicePrice": service,
        }
        for first, _end, (elec, service) in _runs(priced)
    ]
