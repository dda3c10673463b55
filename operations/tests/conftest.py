"""Fixtures for operations: a station with a two-connector pile, a group robot and a
recording SMS provider."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fakes.group_robot import GroupRobot

SENT_SMS: list[tuple[str, str]] = []


class RecordingSms:
    """An SMS provider (operations.sms) that keeps what it was asked to send."""

    def send(self, phone: str, text: str) -> None:
        from operations.sms import SmsError

        if phone.startswith("000"):
            raise SmsError("isv.MOBILE_NUMBER_ILLEGAL")
        SENT_SMS.append((phone, text))


@pytest.fixture
def station(tenant):
    from stations.models import Station

    return Station.objects.create(
        name="珠江新城站", code="GZ0001", address="广州市天河区珠江新城", area_code="440106",
        latitude=Decimal("23.119000"), longitude=Decimal("113.321000"))


@pytest.fixture
def pile(station):
    from stations.models import Connector, Pile

    pile = Pile.objects.create(station=station, code="44010600000101",
                               rated_power_kw=Decimal("120.0"), online=True, connector_count=2)
    for n in (1, 2):
        Connector.objects.create(pile=pile, number=n, rated_power_kw=Decimal("60.0"),
                                 qr_code=f"qr-101-{n}", status=Connector.Status.IDLE)
    return pile


@pytest.fixture
def robot():
    server = GroupRobot().start()
    yield server
    server.stop()


@pytest.fixture
def sms(settings):
    settings.SMS_PROVIDER = "operations.tests.conftest.RecordingSms"
    SENT_SMS.clear()
    yield SENT_SMS
    SENT_SMS.clear()


@pytest.fixture
def redis_clean(settings):
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*:alarms:*"):
        r.delete(key)
    yield
    for key in r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*:alarms:*"):
        r.delete(key)
