"""Fixtures of the stations tests: a small estate, staff users and admin clients."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from stations import live
from stations.models import Connector, Pile, Station

TENANT_HOST = "tenant-a.testserver"
_codes = itertools.count(1)


@pytest.fixture(autouse=True)
def live_clean():
    """Each test starts with no live state under this run's Redis key prefix."""
    r = live.client()
    for key in r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*", count=1000):
        r.delete(key)
    yield


def make_station(*, name: str = "站", lat: float = 31.23, lng: float = 121.47, **fields) -> Station:
    n = next(_codes)
    defaults = {
        "code": f"ST{n:06d}",
        "address": f"{name}路 {n} 号",
        "city": "上海市",
        "area_code": "310101",
    }
    defaults.update(fields)
    return Station.objects.create(
        name=name, latitude=Decimal(f"{lat:.6f}"), longitude=Decimal(f"{lng:.6f}"), **defaults
    )


def make_pile(
    station: Station,
    *,
    code: str | None = None,
    connectors: int = 2,
    kind: str = "dc",
    online: bool = True,
    status: str = Connector.Status.IDLE,
    **fields,
) -> Pile:
    """A pile (through the service, so it is registered) with ``connectors`` connectors."""
    from stations.services import pile_create

    code = code or f"{next(_codes):014d}"
    pile = pile_create(
        station=station,
        code=code,
        rated_power_kw=Decimal("60" if kind == "dc" else "7"),
        current_type=Pile.CurrentType.DC if kind == "dc" else Pile.CurrentType.AC,
        connector_count=max(connectors, 1),
        **fields,
    )
    if online:
        Pile.objects.filter(pk=pile.pk).update(online=True)
        pile.online = True
    for number in range(1, connectors + 1):
        Connector.objects.create(
            pile=pile,
            number=number,
            connector_type=Connector.Type.DC if kind == "dc" else Connector.Type.AC_SOCKET,
            rated_power_kw=pile.rated_power_kw,
            status=status,
        )
    return pile


@pytest.fixture
def operator_admin(tenant):
    return get_user_model().objects.get(username="admin")


@pytest.fixture
def admin_client(operator_admin):
    client = Client(HTTP_HOST=TENANT_HOST)
    client.force_login(operator_admin)
    return client


@pytest.fixture
def estate(tenant):
    """Two stations, each with a pile of two connectors: ``own`` (owned by the station
    owner fixture) and ``other``."""
    own = make_station(name="自家站")
    other = make_station(name="别人的站", lat=31.24)
    return {
        "own": own,
        "own_pile": make_pile(own),
        "other": other,
        "other_pile": make_pile(other),
    }


@pytest.fixture
def station_owner(estate):
    from accounts.roles import STATION_OWNER, role_group

    user = get_user_model().objects.create_user(
        username="owner", password="owner-pass-123", is_staff=True
    )
    user.groups.add(role_group(STATION_OWNER))
    estate["own"].owners.add(user)
    return user


@pytest.fixture
def owner_client(station_owner):
    client = Client(HTTP_HOST=TENANT_HOST)
    client.force_login(station_owner)
    return client
