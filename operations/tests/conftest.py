"""Fixtures for operations: a station with a two-connector pile, a group robot and the
fake Tencent Cloud SMS with the operator's SMS account on it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fakes.group_robot import GroupRobot


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


SMS_APP = ("1400000009", "AKIDalarms", "alarm-secret-key")
SMS_ALARM_TEMPLATE = ("200002", "{1}告警：{2}，电站{3}，时间{4}。{5}")


@pytest.fixture
def sms(tenant):
    """The fake Tencent Cloud SMS over real HTTP with an alarm template, the operator's SMS
    account on it and the alarm template set; yields the fake (``.sent``)."""
    from fakes.sms import start_in_thread
    from marketing.models import SmsSettings
    from operations.models import AlarmSettings

    server = start_in_thread()
    app_id, secret_id, secret_key = SMS_APP
    server.register(sdk_app_id=app_id, secret_id=secret_id, secret_key=secret_key, sign="绿源运维",
                    templates=dict([SMS_ALARM_TEMPLATE]))
    SmsSettings.objects.all().delete()  # one row per operator; rolled back with the test
    SmsSettings.objects.create(sdk_app_id=app_id, secret_id=secret_id, secret_key=secret_key,
                               sign_name="绿源运维", endpoint=server.url.removeprefix("http://"))
    AlarmSettings.objects.all().delete()
    AlarmSettings.objects.create(sms_template_id=SMS_ALARM_TEMPLATE[0])
    yield server
    server.shutdown()


@pytest.fixture
def redis_clean(settings):
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*:alarms:*"):
        r.delete(key)
    yield
    for key in r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*:alarms:*"):
        r.delete(key)
