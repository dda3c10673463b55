"""Pricing engine: worked examples with hand-computed amounts, boundaries, validation, properties.

Pure functions: no database is touched (``.venv/bin/pytest billing/tariffs/tests/test_pricing.py``).
The YKC and CEC conversions are tested beside them (protocols/ykc/tests/test_tariff.py,
protocols/cec/tests/test_tariff.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.tariffs.pricing import (
    GUANGDONG_DEFAULT_SLOTS,
    GUANGDONG_SUMMER_SLOTS,
    OccupancyFee,
    Period,
    PeriodPrice,
    PricingError,
    Season,
    SpecialDate,
    TariffError,
    TariffKind,
    TariffSnapshot,
    compare_with_pile,
    flat_tariff,
    guangdong_tou_tariff,
    occupancy_fee,
    periods_on,
    preview,
    price_at,
    price_meter_readings,
    price_pile_energy,
    split_meter_readings,
)

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
SHARP, PEAK, FLAT, VALLEY = Period.SHARP, Period.PEAK, Period.FLAT, Period.VALLEY


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)


def sh(*args: int) -> datetime:
    return local(SHANGHAI, *args)


@pytest.fixture
def gd() -> TariffSnapshot:
    """Guangdong TOU at flat 0.65 + 0.40: sharp 1.38125, peak 1.10500, valley 0.24700."""
    return guangdong_tou_tariff(D("0.65"), D("0.40"))


@pytest.fixture
def reference_tariff() -> TariffSnapshot:
    """The reference's worked example: flat 0.65 + 0.40 until 10:00, peak 1.05 + 0.40 after."""
    return TariffSnapshot(
        kind=TariffKind.TOU,
        prices=(
            PeriodPrice(FLAT, D("0.65"), D("0.40")),
            PeriodPrice(PEAK, D("1.05"), D("0.40")),
        ),
        slots=(FLAT,) * 20 + (PEAK,) * 28,
    )


@pytest.fixture
def berlin_tariff() -> TariffSnapshot:
    """Valley 0.30 + 0.20 from 00:00 to 03:00 wall clock, flat 0.60 + 0.20 otherwise."""
    return TariffSnapshot(
        kind=TariffKind.TOU,
        prices=(
            PeriodPrice(FLAT, D("0.60"), D("0.20")),
            PeriodPrice(VALLEY, D("0.30"), D("0.20")),
        ),
        slots=(VALLEY,) * 6 + (FLAT,) * 42,
        timezone="Europe/Berlin",
    )


def line_amounts(bill) -> dict[Period, tuple[str, str, str]]:
    return {
        line.period: (str(line.energy_kwh), str(line.electricity_yuan), str(line.service_yuan))
        for line in bill.lines
    }


# ---------------------------------------------------------------- worked examples


def test_reference_worked_example_from_pile_energy_is_53_63(reference_tariff):
    bill = price_pile_energy(reference_tariff, {FLAT: D("20.000"), PEAK: D("22.500")})

    assert line_amounts(bill) == {
        PEAK: ("22.5000", "23.63", "9.00"),
        FLAT: ("20.0000", "13.00", "8.00"),
    }
    assert bill.electricity_yuan == D("36.63")
    assert bill.service_yuan == D("17.00")
    assert bill.total_yuan == D("53.63")
    assert str(bill.total_yuan) == "53.63"
    assert bill.energy_kwh == D("42.5000")
    assert bill.source == "pile"


def test_reference_worked_example_from_meter_timeline_is_53_63(reference_tariff):
    # 09:00–11:00 local; the 10:00 flat→peak boundary falls exactly on a reading.
    readings = [
        (sh(2026, 1, 10, 9, 0), D("1000.0000")),
        (sh(2026, 1, 10, 9, 30), D("1010.0000")),
        (sh(2026, 1, 10, 10, 0), D("1020.0000")),
        (sh(2026, 1, 10, 10, 30), D("1031.2500")),
        (sh(2026, 1, 10, 11, 0), D("1042.5000")),
    ]
    bill = price_meter_readings(reference_tariff, readings)

    assert bill.total_yuan == D("53.63")
    assert bill.energy_of(FLAT) == D("20.0000")
    assert bill.energy_of(PEAK) == D("22.5000")
    assert bill.interpolated is False
    assert [(s.start, s.end, s.period) for s in bill.segments] == [
        (datetime(2026, 1, 10, 1, 0, tzinfo=UTC), datetime(2026, 1, 10, 2, 0, tzinfo=UTC), FLAT),
        (datetime(2026, 1, 10, 2, 0, tzinfo=UTC), datetime(2026, 1, 10, 3, 0, tzinfo=UTC), PEAK),
    ]


def test_session_crossing_midnight_goes_from_flat_into_valley(gd):
    # 23:00 → 01:00 local, two readings: 30 kWh at flat, 30 kWh at valley (interpolated).
    bill = price_meter_readings(
        gd, [(sh(2026, 1, 10, 23, 0), D("100.0000")), (sh(2026, 1, 11, 1, 0), D("160.0000"))]
    )

    assert line_amounts(bill) == {
        FLAT: ("30.0000", "19.50", "12.00"),  # 30 × 0.65, 30 × 0.40
        VALLEY: ("30.0000", "7.41", "12.00"),  # 30 × 0.247
    }
    assert bill.total_yuan == D("50.91")
    assert bill.interpolated is True
    assert bill.segments[1].start == sh(2026, 1, 11, 0, 0)


def test_overnight_session_crossing_into_the_july_season_gets_sharp_hours(gd):
    # 3.5 kW from Jun 30 22:00 to Jul 1 12:00 = 49 kWh: flat 22–24 and 08–10 (14 kWh),
    # valley 00–08 (28), peak 10–11 (3.5) and, in the Jul–Sep season, sharp 11–12 (3.5).
    bill = preview(gd, sh(2026, 6, 30, 22, 0), D("3.5"), 14 * 60)

    assert line_amounts(bill) == {
        SHARP: ("3.5000", "4.83", "1.40"),  # 3.5 × 1.38125 = 4.834375
        PEAK: ("3.5000", "3.87", "1.40"),  # 3.5 × 1.105 = 3.8675
        FLAT: ("14.0000", "9.10", "5.60"),
        VALLEY: ("28.0000", "6.92", "11.20"),  # 28 × 0.247 = 6.916
    }
    assert bill.total_yuan == D("44.32")
    assert bill.energy_kwh == D("49.0000")


def test_same_session_one_day_earlier_has_no_sharp_hour(gd):
    bill = preview(gd, sh(2026, 6, 29, 22, 0), D("3.5"), 14 * 60)

    assert line_amounts(bill)[PEAK] == ("7.0000", "7.74", "2.80")  # 7 × 1.105 = 7.735
    assert SHARP not in line_amounts(bill)
    assert bill.total_yuan == D("43.36")


def test_critical_peak_special_date_bills_sharp_outside_the_season():
    tariff = guangdong_tou_tariff(D("0.65"), D("0.40"), critical_peak_days=[date(2026, 10, 10)])

    hot = preview(tariff, sh(2026, 10, 10, 15, 0), D("60"), 60)
    normal = preview(tariff, sh(2026, 10, 11, 15, 0), D("60"), 60)

    assert line_amounts(hot) == {SHARP: ("60.0000", "82.88", "24.00")}  # 60 × 1.38125 = 82.875
    assert hot.total_yuan == D("106.88")
    assert line_amounts(normal) == {PEAK: ("60.0000", "66.30", "24.00")}
    assert normal.total_yuan == D("90.30")


def test_multi_day_session_is_split_per_day(gd):
    # 1 kW for 48 h from Jan 10 00:00: each day has 8 h valley, 7 h peak, 9 h flat.
    bill = preview(gd, sh(2026, 1, 10, 0, 0), D("1"), 48 * 60)

    assert bill.energy_of(VALLEY) == D("16.0000")
    assert bill.energy_of(PEAK) == D("14.0000")
    assert bill.energy_of(FLAT) == D("18.0000")
    assert len(bill.segments) == 12
    # 16×0.247=3.952 → 3.95; 14×1.105=15.47; 18×0.65=11.70; service 48×0.40 split per line
    assert bill.electricity_yuan == D("31.12")
    assert bill.service_yuan == D("19.20")


def test_minimum_charge_and_occupancy_fee_are_added_after_the_lines():
    tariff = flat_tariff(
        D("1.00"),
        D("0.50"),
        minimum_charge=D("5.00"),
        occupancy=OccupancyFee(per_minute=D("0.50"), grace_minutes=15, cap=D("20.00")),
    )

    small = price_pile_energy(tariff, {FLAT: D("2")}, idle_minutes=20)
    assert (small.electricity_yuan, small.service_yuan) == (D("2.00"), D("1.00"))
    assert small.minimum_topup_yuan == D("2.00")
    assert small.occupancy_yuan == D("2.50")  # 5 minutes after grace × 0.50
    assert small.total_yuan == D("7.50")

    assert occupancy_fee(tariff, 15) == D("0.00")
    assert occupancy_fee(tariff, 100) == D("20.00")  # 85 × 0.50 = 42.50, capped
    big = price_pile_energy(tariff, {FLAT: D("10")})
    assert big.minimum_topup_yuan == D("0.00")
    assert big.total_yuan == D("15.00")


def test_periods_with_equal_prices_share_one_line_rounded_once():
    tariff = TariffSnapshot(
        kind=TariffKind.TOU,
        prices=(
            PeriodPrice(PEAK, D("0.33335"), D("0")),
            PeriodPrice(FLAT, D("0.33335"), D("0")),
        ),
        slots=(PEAK,) * 24 + (FLAT,) * 24,
    )
    # 0.0150 kWh each at 0.33335: per period 0.0050 → 0.01 + 0.01, combined 0.0100 → 0.01
    bill = price_pile_energy(tariff, {PEAK: D("0.015"), FLAT: D("0.015")})

    assert len(bill.lines) == 1
    assert bill.lines[0].periods == (PEAK, FLAT)
    assert bill.total_yuan == D("0.01")
    assert (
        bill.total_yuan
        == price_pile_energy(flat_tariff(D("0.33335"), D("0")), {FLAT: D("0.03")}).total_yuan
    )


def test_compare_with_pile_flags_more_than_one_cent(reference_tariff):
    bill = price_pile_energy(reference_tariff, {FLAT: D("20"), PEAK: D("22.5")})

    ok = compare_with_pile(bill, D("53.6250"))  # the pile keeps 4 dp
    assert ok.mismatch is False
    assert ok.difference_yuan == D("0.0050")
    assert compare_with_pile(bill, D("53.6200")).mismatch is False  # exactly 0.01
    off = compare_with_pile(bill, D("53.6100"))
    assert off.mismatch is True
    assert off.difference_yuan == D("0.0200")


def test_occupancy_and_minimum_are_not_compared_with_the_pile():
    tariff = flat_tariff(D("1"), D("0"), minimum_charge=D("5.00"))
    bill = price_pile_energy(tariff, {FLAT: D("1")})
    assert bill.total_yuan == D("5.00")
    assert compare_with_pile(bill, D("1.0000")).mismatch is False


# ---------------------------------------------------------------- boundaries


def test_zero_energy_session_costs_nothing_even_with_a_minimum():
    tariff = flat_tariff(D("1"), D("0.5"), minimum_charge=D("3.00"))
    bill = price_meter_readings(
        tariff, [(sh(2026, 1, 1, 9, 0), D("5.0000")), (sh(2026, 1, 1, 9, 5), D("5.0000"))]
    )

    assert bill.lines == ()
    assert bill.energy_kwh == D("0")
    assert bill.total_yuan == D("0.00")
    assert bill.segments[0].energy_kwh == D("0")


def test_one_reading_is_a_zero_bill(gd):
    bill = price_meter_readings(gd, [(sh(2026, 1, 1, 9, 0), D("5"))])

    assert bill.total_yuan == D("0.00")
    assert bill.segments == ()
    assert bill.energy_kwh == D("0.0000")


def test_session_ending_exactly_on_a_boundary_has_no_empty_segment(gd):
    bill = price_meter_readings(
        gd, [(sh(2026, 1, 1, 9, 0), D("0")), (sh(2026, 1, 1, 10, 0), D("20"))]
    )

    assert [s.period for s in bill.segments] == [FLAT]
    assert bill.interpolated is False
    assert bill.total_yuan == D("21.00")  # 20 × 0.65 + 20 × 0.40


def test_price_at_midnight_and_just_before(gd):
    assert price_at(gd, sh(2026, 1, 11, 0, 0)).period is VALLEY
    assert price_at(gd, sh(2026, 1, 11, 0, 0) - timedelta(microseconds=1)).period is FLAT
    at_ten = price_at(gd, datetime(2026, 1, 11, 2, 0, tzinfo=UTC))  # 10:00 Shanghai
    assert at_ten == (PEAK, D("1.10500"), D("0.40"), D("1.50500"))


def test_asia_shanghai_has_no_dst_so_utc_offset_is_the_same_all_year(gd):
    # 02:00 UTC is 10:00 Beijing time in January and in July alike.
    assert price_at(gd, datetime(2026, 1, 15, 2, 0, tzinfo=UTC)).period is PEAK
    assert price_at(gd, datetime(2026, 7, 15, 3, 0, tzinfo=UTC)).period is SHARP  # 11:00, season
    assert price_at(gd, datetime(2026, 7, 15, 2, 59, tzinfo=UTC)).period is PEAK


def test_season_switch_at_local_midnight_not_utc_midnight(gd):
    # 2026-07-01 00:00 Shanghai is 2026-06-30 16:00 UTC; 11:00 local Jul 1 is sharp.
    assert price_at(gd, datetime(2026, 7, 1, 3, 0, tzinfo=UTC)).period is SHARP
    assert price_at(gd, datetime(2026, 6, 30, 3, 0, tzinfo=UTC)).period is PEAK
    assert price_at(gd, datetime(2026, 10, 1, 3, 0, tzinfo=UTC)).period is PEAK


def test_dst_spring_forward_splits_by_real_time_not_wall_clock(berlin_tariff):
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST. 00:30 → 03:30 wall clock is 2 real
    # hours at 20 kW: 1.5 h valley (00:30–02:00 CET) and 0.5 h flat (03:00–03:30 CEST).
    start = local(BERLIN, 2026, 3, 29, 0, 30)
    end = local(BERLIN, 2026, 3, 29, 3, 30)
    assert end - start == timedelta(hours=3)  # naive wall-clock arithmetic is misleading
    bill = price_meter_readings(berlin_tariff, [(start, D("0")), (end, D("40"))])

    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=2)
    assert bill.energy_of(VALLEY) == D("30.0000")
    assert bill.energy_of(FLAT) == D("10.0000")
    assert bill.segments[1].start == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert bill.total_yuan == D("23.00")  # 9.00 + 6.00 + 6.00 + 2.00


def test_dst_fall_back_bills_the_repeated_valley_hour_twice(berlin_tariff):
    # Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET. 01:30 CEST → 03:30 CET is 3 real
    # hours at 20 kW: valley until the second 03:00 (2.5 h), then 0.5 h flat.
    start = local(BERLIN, 2026, 10, 25, 1, 30)
    end = local(BERLIN, 2026, 10, 25, 3, 30)
    bill = price_meter_readings(berlin_tariff, [(start, D("0")), (end, D("60"))])

    assert bill.energy_of(VALLEY) == D("50.0000")
    assert bill.energy_of(FLAT) == D("10.0000")
    assert bill.total_yuan == D("33.00")  # 15.00 + 10.00 + 6.00 + 2.00
    assert price_at(berlin_tariff, local(BERLIN, 2026, 10, 25, 2, 30, fold=1)).period is VALLEY


def test_interpolation_remainder_is_distributed_so_pieces_sum_exactly(gd):
    # 10 kWh over 3 h across two boundaries: 3.3333… per hour cannot be exact at 4 dp.
    split = split_meter_readings(
        gd, [(sh(2026, 1, 1, 7, 0), D("0")), (sh(2026, 1, 1, 10, 0), D("10"))]
    )

    assert [(s.period, s.energy_kwh) for s in split.segments] == [
        (VALLEY, D("3.3333")),
        (FLAT, D("6.6667")),  # cumulative 3.3333 → 10.0000
    ]
    assert sum(s.energy_kwh for s in split.segments) == D("10")


def test_meter_readings_are_validated():
    tariff = flat_tariff(D("1"), D("0"))
    t = sh(2026, 1, 1, 9, 0)
    with pytest.raises(PricingError) as err:
        price_meter_readings(tariff, [])
    assert err.value.field == "readings"
    with pytest.raises(PricingError) as err:
        price_meter_readings(tariff, [(t, D("1")), (datetime(2026, 1, 1, 10), D("2"))])
    assert err.value.field == "readings[1]"
    assert "aware" in str(err.value)
    with pytest.raises(PricingError, match="went down") as err:
        price_meter_readings(tariff, [(t, D("2")), (t + timedelta(minutes=1), D("1"))])
    with pytest.raises(PricingError, match="backwards"):
        price_meter_readings(tariff, [(t, D("1")), (t - timedelta(minutes=1), D("2"))])
    with pytest.raises(PricingError) as err:
        price_pile_energy(tariff, {PEAK: D("1")})
    assert err.value.field == "energy.peak"
    with pytest.raises(PricingError):
        price_at(tariff, datetime(2026, 1, 1, 9))


def test_exact_duplicate_readings_are_dropped_and_conflicting_ones_refused(gd):
    t = sh(2026, 1, 1, 9, 0)
    later = t + timedelta(minutes=30)
    bill = price_meter_readings(gd, [(t, D("1")), (t, D("1.00000")), (later, 11)])
    assert bill.total_yuan == D("10.50")  # 10 kWh flat: 6.50 + 4.00

    with pytest.raises(PricingError, match="repeats") as err:
        price_meter_readings(gd, [(t, D("1")), (t, D("2"))])
    assert err.value.field == "readings[1]"


# ---------------------------------------------------------------- schedules and conversions


def test_periods_on_merges_contiguous_slots(gd):
    winter = periods_on(gd, date(2026, 1, 1))
    assert [(p.label, p.period) for p in winter] == [
        ("00:00–08:00", VALLEY),
        ("08:00–10:00", FLAT),
        ("10:00–12:00", PEAK),
        ("12:00–14:00", FLAT),
        ("14:00–19:00", PEAK),
        ("19:00–24:00", FLAT),
    ]
    assert winter[0].start == time(0) and winter[-1].end == time(0)
    summer = periods_on(gd, date(2026, 8, 1))
    assert [p.label for p in summer if p.period is SHARP] == ["11:00–12:00", "15:00–17:00"]
    assert summer[3].electricity == D("1.38125")


def test_guangdong_ratios_and_maps(gd):
    prices = {p.period: p for p in gd.prices}
    assert prices[PEAK].electricity == D("1.10500")  # 0.65 × 1.7
    assert prices[VALLEY].electricity == D("0.24700")  # 0.65 × 0.38
    assert prices[SHARP].electricity == D("1.38125")  # peak × 1.25
    assert gd.slots == GUANGDONG_DEFAULT_SLOTS
    assert gd.slots_on(date(2026, 9, 30)) == GUANGDONG_SUMMER_SLOTS
    assert gd.slots_on(date(2026, 10, 1)) == GUANGDONG_DEFAULT_SLOTS


def test_snapshot_dict_round_trip_through_json():
    tariff = guangdong_tou_tariff(
        D("0.65"),
        D("0.40"),
        critical_peak_days=[date(2026, 10, 10)],
        occupancy=OccupancyFee(D("0.5"), 15, D("30")),
        minimum_charge=D("1"),
        model_number=1234,
    )
    data = json.loads(json.dumps(tariff.to_dict()))

    assert data["prices"]["sharp"] == {"electricity": "1.38125", "service": "0.40000"}
    assert data["special_dates"][0]["date"] == "2026-10-10"
    assert data["occupancy"] == {"per_minute": "0.50000", "grace_minutes": 15, "cap": "30.00"}
    assert len(data["slots"]) == 48 and data["slots"][0] == "valley"
    again = TariffSnapshot.from_dict(data)
    assert again == tariff
    assert hash(again) == hash(tariff)


# ---------------------------------------------------------------- validation


def _tou(**changes) -> TariffSnapshot:
    base = {
        "kind": TariffKind.TOU,
        "prices": (PeriodPrice(PEAK, D("1.1"), D("0.4")), PeriodPrice(FLAT, D("0.65"), D("0.4"))),
        "slots": (FLAT,) * 24 + (PEAK,) * 24,
    }
    base.update(changes)
    return TariffSnapshot(**base)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"slots": (FLAT,) * 47}, "slots", "got 47"),
        ({"slots": (FLAT,) * 17 + (None,) + (FLAT,) * 30}, "slots[17]", "08:30–09:00"),
        ({"slots": (FLAT,) * 22 + (SHARP,) + (FLAT,) * 25}, "slots[22]", "no price"),
        ({"slots": (FLAT,) * 5 + ("deep_valley",) + (FLAT,) * 42}, "slots[5]", "unknown period"),
        (
            {"prices": (PeriodPrice(PEAK, D("-1"), D("0.4")), PeriodPrice(FLAT, D("1"), D("0")))},
            "prices.peak.electricity",
            "≥ 0",
        ),
        (
            {
                "prices": (
                    PeriodPrice(PEAK, D("1"), D("0.4")),
                    PeriodPrice(FLAT, D("1"), D("0.123456")),
                )
            },
            "prices.flat.service",
            "5 decimals",
        ),
        (
            {"prices": (PeriodPrice(PEAK, 1.1, D("0.4")), PeriodPrice(FLAT, D("1"), D("0")))},
            "prices.peak.electricity",
            "Decimal",
        ),
        (
            {"prices": (PeriodPrice(PEAK, D("50000"), D("0")), PeriodPrice(FLAT, D("1"), D("0")))},
            "prices.peak.electricity",
            "UINT32",
        ),
        ({"model_number": 10000}, "model_number", "0..9999"),
        ({"loss_ratio": 256}, "loss_ratio", "0..255"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown"),
        ({"kind": "stepped"}, "kind", "flat"),
        ({"seasons": (Season(13, 9, (FLAT,) * 48),)}, "seasons[0].start_month", "1..12"),
        (
            {"seasons": (Season(6, 8, (PEAK,) * 48), Season(8, 9, (FLAT,) * 48))},
            "seasons[1].start_month",
            "month 8",
        ),
        ({"seasons": (Season(7, 9, (FLAT,) * 40),)}, "seasons[0].slots", "got 40"),
        (
            {
                "special_dates": (
                    SpecialDate(date(2026, 8, 1), (FLAT,) * 3 + (VALLEY,) + (FLAT,) * 44),
                )
            },
            "special_dates[0].slots[3]",
            "01:30–02:00",
        ),
        ({"minimum_charge": D("1.005")}, "minimum_charge", "2 decimals"),
        ({"occupancy": OccupancyFee(D("0.5"), -1)}, "occupancy.grace_minutes", "0..1440"),
        ({"kind": TariffKind.FLAT}, "prices", "exactly one price"),
    ],
)
def test_validation_errors_name_the_field(changes, field, fragment):
    with pytest.raises(TariffError) as err:
        _tou(**changes)

    assert err.value.field == field
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)


def test_from_dict_rejects_a_fifth_class_floats_and_unknown_names():
    data = guangdong_tou_tariff(D("0.65"), D("0.40")).to_dict()
    five = {
        **data,
        "prices": {**data["prices"], "deep_valley": {"electricity": "0.1", "service": "0.4"}},
    }
    with pytest.raises(TariffError, match="at most 4") as err:
        TariffSnapshot.from_dict(five)
    assert err.value.field == "prices"

    renamed = {**data, "prices": {**data["prices"], "deep": data["prices"]["valley"]}}
    del renamed["prices"]["sharp"]
    with pytest.raises(TariffError) as err:
        TariffSnapshot.from_dict(renamed)
    assert err.value.field == "prices.deep"

    floats = {**data, "prices": {**data["prices"], "flat": {"electricity": 0.65, "service": "0.4"}}}
    with pytest.raises(TariffError) as err:
        TariffSnapshot.from_dict(floats)
    assert err.value.field == "prices.flat.electricity"

    with pytest.raises(TariffError) as err:
        TariffSnapshot.from_dict({**data, "seasons": [7]})
    assert err.value.field == "seasons[0]"


# ---------------------------------------------------------------- properties

kwh4 = st.integers(min_value=0, max_value=2_000_000).map(lambda i: D(i).scaleb(-4))
price5 = st.integers(min_value=0, max_value=500_000).map(lambda i: D(i).scaleb(-5))
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)

GD = guangdong_tou_tariff(D("0.65"), D("0.40"), critical_peak_days=[date(2026, 10, 10)])
BERLIN_TOU = TariffSnapshot(
    kind=TariffKind.TOU,
    prices=(PeriodPrice(FLAT, D("0.6"), D("0.2")), PeriodPrice(VALLEY, D("0.3"), D("0.2"))),
    slots=(VALLEY,) * 6 + (FLAT,) * 42,
    timezone="Europe/Berlin",
)


@st.composite
def timelines(draw, max_readings: int = 25) -> list[tuple[datetime, Decimal]]:
    t = draw(instants)
    e = draw(kwh4)
    out = [(t, e)]
    for _ in range(draw(st.integers(0, max_readings - 1))):
        t += timedelta(seconds=draw(st.integers(1, 4 * 3600)))
        e += draw(st.integers(0, 300_000).map(lambda i: D(i).scaleb(-4)))
        out.append((t, e))
    return out


@given(tariff=st.sampled_from([GD, BERLIN_TOU]), readings=timelines())
def test_property_split_energy_sums_exactly_to_the_total(tariff, readings):
    bill = price_meter_readings(tariff, readings)
    total = readings[-1][1] - readings[0][1]

    assert bill.energy_kwh == total
    assert sum((e for _, e in bill.period_energy), D(0)) == total
    assert sum((s.energy_kwh for s in bill.segments), D(0)) == total
    assert all(s.energy_kwh >= 0 for s in bill.segments)
    assert all(line.energy_kwh.as_tuple().exponent >= -4 for line in bill.lines)
    assert bill.total_yuan == sum((line.amount_yuan for line in bill.lines), D("0"))
    if bill.segments:
        assert bill.segments[0].start == readings[0][0]
        assert bill.segments[-1].end == readings[-1][0]
        assert all(
            a.end == b.start and a.period != b.period
            for a, b in zip(bill.segments, bill.segments[1:], strict=False)
        )


@given(
    elec=price5, service=price5, readings=timelines(), pile=st.lists(kwh4, min_size=4, max_size=4)
)
def test_property_tou_with_four_equal_prices_bills_like_flat(elec, service, readings, pile):
    equal = TariffSnapshot(
        kind=TariffKind.TOU,
        prices=tuple(PeriodPrice(p, elec, service) for p in Period),
        slots=GUANGDONG_DEFAULT_SLOTS,
        seasons=(Season(7, 9, GUANGDONG_SUMMER_SLOTS),),
    )
    flat = flat_tariff(elec, service)

    assert (
        price_meter_readings(equal, readings).total_yuan
        == price_meter_readings(flat, readings).total_yuan
    )
    by_period = dict(zip(Period, pile, strict=True))
    assert (
        price_pile_energy(equal, by_period).total_yuan
        == price_pile_energy(flat, {FLAT: sum(pile, D(0))}).total_yuan
    )


@given(
    energy=st.fixed_dictionaries({p: kwh4 for p in Period}),
    period=st.sampled_from(list(Period)),
    extra=kwh4,
    idle=st.integers(0, 600),
)
def test_property_amounts_never_decrease_when_energy_grows(energy, period, extra, idle):
    tariff = guangdong_tou_tariff(
        D("0.65"),
        D("0.40"),
        minimum_charge=D("5.00"),
        occupancy=OccupancyFee(D("0.1"), 10, D("20")),
    )
    before = price_pile_energy(tariff, energy, idle_minutes=idle)
    after = price_pile_energy(tariff, {**energy, period: energy[period] + extra}, idle_minutes=idle)

    assert after.total_yuan >= before.total_yuan
    assert after.electricity_yuan >= before.electricity_yuan
    assert after.service_yuan >= before.service_yuan


@given(readings=timelines(max_readings=10), extra=kwh4)
def test_property_meter_bill_never_decreases_when_the_last_reading_grows(readings, extra):
    more = readings[:-1] + [(readings[-1][0], readings[-1][1] + extra)]
    assert (
        price_meter_readings(GD, more).total_yuan >= price_meter_readings(GD, readings).total_yuan
    )


@settings(max_examples=50)
@given(instant=instants)
def test_property_price_at_agrees_with_periods_on(instant):
    at = price_at(GD, instant)
    here = instant.astimezone(SHANGHAI)
    day = periods_on(GD, here.date())
    stretch = next(
        p for p in day if p.start <= here.time() and (p.end == time(0) or here.time() < p.end)
    )
    assert stretch.period is at.period
    assert stretch.electricity + stretch.service == at.total
