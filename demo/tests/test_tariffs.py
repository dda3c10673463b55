"""The demo tariff: Guangdong TOU with occupancy fee and minimum, idempotent by name."""

from __future__ import annotations

from decimal import Decimal

from billing.tariffs import pricing
from billing.tariffs.models import StationTariff
from billing.tariffs.tests.conftest import pile, station  # noqa: F401 (fixtures)
from demo.tariffs import DEMO_TARIFF_NAME, tariff_create_guangdong_demo


def test_demo_tariff_is_guangdong_and_idempotent(station, pile):  # noqa: F811
    tariff = tariff_create_guangdong_demo(stations=[station])
    again = tariff_create_guangdong_demo(stations=[station])
    assert again == tariff
    assert tariff.name == DEMO_TARIFF_NAME
    assert tariff.versions.count() == 1
    assert StationTariff.objects.get(station=station).tariff == tariff
    snapshot = pricing.TariffSnapshot.from_dict(tariff.versions.get().snapshot)
    expected = pricing.guangdong_tou_tariff(
        Decimal("0.6"),
        Decimal("0.4"),
        occupancy=pricing.OccupancyFee(Decimal("0.5"), 15, Decimal("30")),
        minimum_charge=Decimal("1"),
        model_number=snapshot.model_number,
    )
    assert snapshot.to_dict() == expected.to_dict()  # jsonb reorders keys, not values
    station.refresh_from_db()
    assert station.price_today["slots"][0] == "0.62800"  # valley 0.228 + 0.4
