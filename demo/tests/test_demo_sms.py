"""`make run` sends the demo operator's alarm SMS to the fake Tencent Cloud SMS: the
Procfile's ``fake_sms`` registers the account and templates the demo seeds, and an alarm
reaches the demo's on-duty contact through the real SDK over HTTP."""

from __future__ import annotations

import shlex
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from demo.sms import DEMO_DUTY_CONTACT, DEMO_SMS_SIGN, demo_sms_configure, fake_sms_args
from fakes.sms import server_from_args

ROOT = Path(__file__).resolve().parents[2]


def _procfile_args(name: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}:"):
            return shlex.split(line.split(":", 1)[1])
    raise AssertionError(f"no {name} in the Procfile")


def test_the_procfile_starts_the_fake_with_the_demo_account_and_make_run_starts_it():
    assert _procfile_args("fake_sms")[:3] == [".venv/bin/python", "-m", "fakes.sms"]
    assert _procfile_args("fake_sms")[3:] == fake_sms_args()
    makefile = (ROOT / "Makefile").read_text()
    processes = next(line for line in makefile.splitlines() if line.startswith("PROCESSES ="))
    assert " fake_sms " in processes


@pytest.fixture
def fake_sms():
    args = _procfile_args("fake_sms")[3:]
    server = server_from_args([*args[:args.index("--port")], "--port", "0",
                               *args[args.index("--port") + 2:]]).start_background()
    yield server
    server.shutdown()


def test_a_demo_alarm_reaches_the_on_duty_phone_through_the_fake(tenant, fake_sms):
    from marketing.models import SmsSettings
    from operations import alarms
    from operations.models import AlarmSettings, DutyContact
    from stations.models import Pile, Station

    SmsSettings.objects.all().delete()  # one row per operator; rolled back with the test
    AlarmSettings.objects.all().delete()
    demo_sms_configure(endpoint=fake_sms.url.removeprefix("http://"))
    demo_sms_configure(endpoint=fake_sms.url.removeprefix("http://"))  # idempotent
    assert DutyContact.objects.filter(name=DEMO_DUTY_CONTACT[0]).count() == 1
    station = Station.objects.create(name="演示站", code="DEMO-SMS", address="广州", area_code="440106",
                                     latitude=Decimal("23.1"), longitude=Decimal("113.3"))
    pile = Pile.objects.create(station=station, code="44010699990001", rated_power_kw=Decimal("60.0"))
    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*:alarms:*"):
        r.delete(key)
    alarm, _send = alarms.alarm_raise(kind="offline", severity="major", title="充电桩离线",
                                      pile=pile, group_key="demo-sms", at=timezone.now())

    [delivery] = alarms.alarm_notify(alarm_id=alarm.pk)

    assert (delivery.channel, delivery.target, delivery.ok) == ("sms", DEMO_DUTY_CONTACT[0], True)
    [sent] = fake_sms.sent
    assert sent["phone"] == f"+86{DEMO_DUTY_CONTACT[1]}"
    assert sent["text"].startswith(f"【{DEMO_SMS_SIGN}】重要告警：充电桩离线，电站演示站，时间")
