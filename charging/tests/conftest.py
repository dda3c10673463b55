"""Fixtures for charging: a station with a DC pile online and plugged, a flat tariff
(1.0 + 0.5 yuan/kWh), and a member with money in the wallet."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.tariffs import pricing

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def station(tenant):
    from stations.models import Station

    return Station.objects.create(
        name="珠江新城站",
        code="GZ0001",
        address="广州市天河区珠江新城",
        area_code="440106",
        latitude=Decimal("23.119000"),
        longitude=Decimal("113.321000"),
    )


@pytest.fixture
def pile(station):
    from stations.models import Connector, Pile

    pile = Pile.objects.create(
        station=station, code="44010600000101", rated_power_kw=Decimal("120.0"), online=True,
        connector_count=2,
    )
    for n in (1, 2):
        Connector.objects.create(
            pile=pile, number=n, rated_power_kw=Decimal("60.0"), qr_code=f"qr-101-{n}",
            status=Connector.Status.PLUGGED,
        )
    return pile


@pytest.fixture
def connector(pile):
    return pile.connectors.get(number=1)


@pytest.fixture
def tariff(station):
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )

    tariff = tariff_create(name="统一价", draft=pricing.flat_tariff(Decimal("1.0"), Decimal("0.5")))
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    station_tariff_assign(stations=[station], tariff=tariff)
    return tariff


@pytest.fixture
def funded_member(member):
    """``member`` with 100.00 yuan cash in the wallet."""
    from charging.tests.money import wallet_credit

    wallet_credit(member, Decimal("100.00"))
    return member
