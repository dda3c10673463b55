"""Benchmark the pricing engine on meter timelines (Django-free).

Run: ``.venv/bin/python benchmarks/pricing.py [orders]``. Each order is a realistic session with
100 cumulative meter readings (DC fast 15–90 min, AC 2–10 h, some overnight), priced on the
Guangdong TOU tariff with its Jul–Sep season and a critical-peak day, so many sessions cross
period boundaries, midnight or the season switch. Prints orders/s and µs per order.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.tariffs.pricing import (  # noqa: E402
    guangdong_tou_tariff,
    price_meter_readings,
    price_pile_energy,
)

READINGS = 100
SHANGHAI = ZoneInfo("Asia/Shanghai")


def make_session(rng: random.Random) -> list[tuple[datetime, Decimal]]:
    """One session: start anywhere in 2026 on a 1-minute grid, a tapering power curve."""
    kind = rng.random()
    if kind < 0.5:  # DC fast charge
        minutes, kw = rng.randint(15, 90), rng.uniform(40, 160)
    elif kind < 0.85:  # AC destination charge
        minutes, kw = rng.randint(120, 600), rng.uniform(3.5, 11)
    else:  # AC overnight, starting in the evening
        minutes, kw = rng.randint(480, 720), rng.uniform(3.5, 7)
    day = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
    hour = rng.randint(18, 23) if kind >= 0.85 else rng.randint(0, 23)
    start = datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=SHANGHAI)
    meter = Decimal(rng.randint(0, 50_000_000)).scaleb(-4)
    step = timedelta(minutes=minutes) / (READINGS - 1)
    readings = []
    for i in range(READINGS):
        readings.append((start + step * i, meter))
        taper = 1.0 - 0.6 * i / READINGS  # power falls as the battery fills
        kwh = kw * taper * step.total_seconds() / 3600
        meter += Decimal(round(kwh * 10_000)).scaleb(-4)
    return readings


def timed(fn, orders, repeat: int = 3) -> float:
    """Best wall time in seconds over ``repeat`` runs of ``fn`` on every order."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for order in orders:
            fn(order)
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = random.Random(20261121)
    tariff = guangdong_tou_tariff(
        Decimal("0.65"), Decimal("0.40"), critical_peak_days=[date(2026, 10, 10)]
    )
    sessions = [make_session(rng) for _ in range(count)]

    bills = [price_meter_readings(tariff, s) for s in sessions]
    crossing = sum(1 for b in bills if len(b.segments) > 1)
    segments = sum(len(b.segments) for b in bills) / count
    hours = sum((s[-1][0] - s[0][0]).total_seconds() for s in sessions) / count / 3600
    pile_inputs = [{p: e for p, e in b.period_energy} for b in bills]

    meter_s = timed(lambda s: price_meter_readings(tariff, s), sessions)
    pile_s = timed(lambda e: price_pile_energy(tariff, e), pile_inputs)

    print(
        f"pricing benchmark: {count} orders, {READINGS} meter readings each, Python {sys.version.split()[0]}"
    )
    print(
        f"  sessions: mean {hours:.1f} h, {crossing / count:.0%} cross a period boundary, "
        f"{segments:.1f} segments/order"
    )
    print(
        f"  meter timeline → bill: {count / meter_s:,.0f} orders/s, "
        f"{meter_s / count * 1e6:,.1f} µs/order"
    )
    print(
        f"  pile per-period energy → bill: {count / pile_s:,.0f} orders/s, "
        f"{pile_s / count * 1e6:,.1f} µs/order"
    )


if __name__ == "__main__":
    main()
