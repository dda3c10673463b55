"""Station.price_today: written on changes and following the station's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.tariffs import pricing
from billing.tariffs.selectors import station_price_today
from billing.tariffs.services import (
    pile_tariff_assign,
    station_prices_refresh,
    station_tariff_assign,
    tariff_update,
    tariff_version_publish,
    tariffs_refresh,
)
from billing.tariffs.tests.conftest import SPRING_MORNING

SUMMER_MORNING = datetime(2026, 7, 15, 2, 15, tzinfo=UTC)  # 10:15 local


def test_no_tariff_no_prices(station):
    assert station_price_today(station, SPRING_MORNING) is None


def test_guangdong_prices_for_a_spring_day(station, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    station.refresh_from_db()
    prices = station_price_today(station, SPRING_MORNING)
    assert prices["date"] == "2026-03-10"
    assert len(prices["slots"]) == 48
    assert prices["slots"][0] == "0.62800"  # valley 0.228 + 0.4
    assert prices["slots"][20] == "1.42000"  # peak 1.02 + 0.4 at 10:00
    assert prices["slots"][16] == "1.00000"  # flat 0.6 + 0.4 at 08:00
    assert prices["periods"][0] == {
        "start": "00:00",
        "end": "08:00",
        "period": "valley",
        "electricity": "0.22800",
        "service": "0.40000",
    }
    assert prices["periods"][-1]["end"] == "24:00"
    assert [p["period"] for p in prices["periods"]] == [
        "valley",
        "flat",
        "peak",
        "flat",
        "peak",
        "flat",
    ]


def test_summer_day_has_sharp_prices(station, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    station.refresh_from_db()
    prices = station_price_today(station, SUMMER_MORNING)
    assert prices["date"] == "2026-07-15"
    assert prices["slots"][22] == "1.67500"  # sharp 1.275 + 0.4 at 11:00


def test_assignment_writes_price_today_and_clearing_removes_it(station, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    station.refresh_from_db()
    assert station.price_today["slots"] == ["1.50000"] * 48
    station_tariff_assign(stations=[station], tariff=None)
    station.refresh_from_db()
    assert station.price_today is None


def test_pile_override_does_not_change_station_prices(station, pile, gd_tariff, flat_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    station.refresh_from_db()
    before = station.price_today
    pile_tariff_assign(pile=pile, tariff=flat_tariff)
    station.refresh_from_db()
    assert station.price_today == before


def test_local_midnight_rolls_the_date(station, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    june_night = datetime(2026, 6, 30, 15, 59, tzinfo=UTC)  # 23:59 local
    july_night = datetime(2026, 6, 30, 16, 1, tzinfo=UTC)  # 00:01 local, July 1
    station_prices_refresh(at=june_night)
    station.refresh_from_db()
    assert station.price_today["date"] == "2026-06-30"
    assert "1.67500" not in station.price_today["slots"]
    assert tariffs_refresh(at=july_night)[0] == 1
    station.refresh_from_db()
    assert station.price_today["date"] == "2026-07-01"
    assert station.price_today["slots"][22] == "1.67500"
    assert station_prices_refresh(at=july_night + timedelta(minutes=5)) == 0  # unchanged


def test_station_time_zone_decides_the_date(station, flat_tariff):
    station.time_zone = "America/New_York"
    station.save(update_fields=["time_zone"])
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    station.refresh_from_db()
    assert station_price_today(station, SPRING_MORNING)["date"] == "2026-03-09"


def test_version_taking_effect_later_today_shows_from_its_slot(station, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    tariff_update(tariff=flat_tariff, draft=pricing.flat_tariff(Decimal("2"), Decimal("0.5")))
    noon = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 local
    tariff_version_publish(tariff=flat_tariff, effective_from=noon)
    station.refresh_from_db()
    prices = station_price_today(station, SPRING_MORNING)
    assert prices["slots"][:24] == ["1.50000"] * 24
    assert prices["slots"][24:] == ["2.50000"] * 24
    assert [(p["start"], p["end"]) for p in prices["periods"]] == [
        ("00:00", "12:00"),
        ("12:00", "24:00"),
    ]


def test_tariff_starting_mid_day_leaves_earlier_slots_unpriced(station, tenant):
    from billing.tariffs.services import tariff_create

    tariff = tariff_create(name="新", draft=pricing.flat_tariff(Decimal("1"), Decimal("0")))
    tariff_version_publish(tariff=tariff, effective_from=datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
    station_tariff_assign(stations=[station], tariff=tariff)
    station.refresh_from_db()
    prices = station_price_today(station, SPRING_MORNING)
    assert prices["slots"][23] is None and prices["slots"][24] == "1.00000"
    assert prices["periods"] == [
        {
            "start": "12:00",
            "end": "24:00",
            "period": "flat",
            "electricity": "1.00000",
            "service": "0.00000",
        }
    ]
