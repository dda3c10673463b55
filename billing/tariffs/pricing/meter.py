"""Splitting a meter timeline (instant, cumulative kWh) at tariff period boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evplatform import money

from .clock import _period_at_local, _require_aware
from .errors import PricingError
from .periods import Period
from .snapshot import TariffSnapshot

_QUARTER_HOUR = timedelta(minutes=15)
_MICROSECOND = timedelta(microseconds=1)

_ZERO = Decimal("0")


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
        kwh = money.kwh(kwh)
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
        return MeterSplit((), money.ZERO_KWH, False)
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
        cumulative.append(money.kwh(e0 + (e1 - e0) * elapsed / span))
        interpolated = True

    segments = tuple(
        Segment(start, bounds[i + 1], period, cumulative[i + 1] - cumulative[i])
        for i, (start, period) in enumerate(changes)
    )
    return MeterSplit(segments, points[-1][1] - points[0][1], interpolated)
