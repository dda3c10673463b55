"""Fixtures for the tariff tests: a station with two YKC piles, tariffs, fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.tariffs import pricing

# 2026-03-10 10:15 Asia/Shanghai (UTC+8): a weekday in the default (non-summer) season.
SPRING_MORNING = datetime(2026, 3, 10, 2, 15, tzinfo=UTC)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def station(tenant):
    from stations.models import Station

    return Station.objects.create(
        name="天河站",
        code="ST0001",
        address="广州市天河区",
        area_code="440106",
        latitude=Decimal("23.125000"),
        longitude=Decimal("113.320000"),
    )


def make_pile(station, code: str, protocol: str = "ykc"):
    from stations.models import Connector, Pile

    pile = Pile.objects.create(
        station=station, code=code, protocol=protocol, rated_power_kw=Decimal("60.0")
    )
    Connector.objects.create(
        pile=pile, number=1, rated_power_kw=Decimal("60.0"), qr_code=f"qr-{code}-1"
    )
    return pile


@pytest.fixture
def pile(station):
    return make_pile(station, "44010600000001")


@pytest.fixture
def other_pile(station):
    return make_pile(station, "44010600000002")


@pytest.fixture
def gd_tariff(tenant):
    """Guangdong TOU (flat 0.6 + 0.4), one version in force since 2020."""
    from billing.tariffs.services import tariff_create, tariff_version_publish

    tariff = tariff_create(
        name="广东分时", draft=pricing.guangdong_tou_tariff(Decimal("0.6"), Decimal("0.4"))
    )
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    return tariff


@pytest.fixture
def flat_tariff(tenant):
    """Flat 1.0 + 0.5, one version in force since 2020."""
    from billing.tariffs.services import tariff_create, tariff_version_publish

    tariff = tariff_create(name="统一价", draft=pricing.flat_tariff(Decimal("1.0"), Decimal("0.5")))
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    return tariff


@pytest.fixture
def admin_web(tenant):
    """A browser logged in to tenant-a's admin as its operator admin (superuser)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


@pytest.fixture
def owner_web(tenant, station):
    """A browser logged in as a station owner (站长) of ``station``."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.roles import STATION_OWNER, role_group, roles_sync

    roles_sync()
    user = get_user_model().objects.create_user(username="owner", password="x", is_staff=True)
    user.groups.add(role_group(STATION_OWNER))
    station.owners.add(user)
    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(user)
    return client
