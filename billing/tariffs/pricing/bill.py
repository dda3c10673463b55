"""Bills: per-period lines priced once, occupancy fee, minimum charge, check against the pile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from evplatform import money

from .clock import _require_aware
from .errors import PricingError
from .meter import Segment, split_meter_readings
from .periods import PERIOD_ORDER, Period
from .snapshot import TariffSnapshot

_PILE_TOLERANCE = Decimal("0.01")

_ZERO = Decimal("0")


@dataclass(frozen=True)
class BillLine:
    """One priced line: all energy at one (electricity, service) price pair.

    ``periods`` are the periods that share that price pair (usually one); amounts are yuan
    rounded once by :func:`evplatform.money.yuan`; prices yuan/kWh; energy kWh 4 dp. ``segments`` are the
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
        return money.ZERO
    billable = max(0, idle_minutes - fee.grace_minutes)
    amount = money.yuan(fee.per_minute * billable)
    if fee.cap is not None and amount > fee.cap:
        amount = money.yuan(fee.cap)
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
    for period in PERIOD_ORDER:
        if energy.get(period, _ZERO) > 0:
            price = snapshot.price_of(period)
            groups.setdefault((price.electricity, price.service), []).append(period)
    lines = []
    for (elec, service), periods in groups.items():
        kwh = sum((energy[p] for p in periods), money.ZERO_KWH)
        lines.append(
            BillLine(
                periods=tuple(periods),
                energy_kwh=kwh,
                electricity_price=elec,
                service_price=service,
                electricity_yuan=money.yuan(kwh * elec),
                service_yuan=money.yuan(kwh * service),
                segments=tuple(s for s in segments if s.period in periods),
            )
        )
    total_energy = sum(energy.values(), money.ZERO_KWH)
    electricity = sum((line.electricity_yuan for line in lines), money.ZERO)
    service = sum((line.service_yuan for line in lines), money.ZERO)
    topup = money.ZERO
    # 起步价 applies only to sessions that delivered energy: a failed start costs nothing.
    minimum = snapshot.minimum_charge
    if minimum is not None and total_energy > 0 and electricity + service < minimum:
        topup = money.yuan(minimum - electricity - service)
    occupancy = occupancy_fee(snapshot, idle_minutes)
    return Bill(
        lines=tuple(lines),
        energy_kwh=total_energy,
        electricity_yuan=electricity,
        service_yuan=service,
        minimum_topup_yuan=topup,
        occupancy_yuan=occupancy,
        total_yuan=electricity + service + topup + occupancy,
        period_energy=tuple((p, energy.get(p, money.ZERO_KWH)) for p in PERIOD_ORDER),
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
        kwh = money.kwh(Decimal(kwh))
        if kwh < 0:
            raise PricingError(path, f"must be ≥ 0, got {kwh}")
        if kwh > 0 and period not in snapshot._price_of:
            raise PricingError(
                path, f"{kwh} kWh in {period.value!r}, which the tariff does not price"
            )
        energy[period] = energy.get(period, money.ZERO_KWH) + kwh
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
        energy[segment.period] = energy.get(segment.period, money.ZERO_KWH) + segment.energy_kwh
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
    energy = money.kwh(Decimal(kw) * minutes / 60)
    return price_meter_readings(
        snapshot, [(start, money.ZERO_KWH), (start + timedelta(minutes=minutes), energy)]
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
