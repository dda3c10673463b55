"""Operations against the real gateway and a simulated pile: a pile's fault becomes a Fault
and an alarm delivered to WeChat and a group robot, and closes when the pile is healthy; a
reboot sent from the admin reaches the pile, its reply is shown and audited."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import AuditEntry
from charging import bus
from fakes.group_robot import GroupRobot
from operations import tasks
from operations.models import Alarm, AlarmDelivery, AlarmSettings, AlarmWebhook, DutyContact
from protocols.ykc.simulator import SimulatedPile
from stations.models import Fault, Pile

from .conftest import SCHEMA
from .helpers import committed, wait_for
from .test_ykc_simulator import events, sims  # noqa: F401  (fixture)

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def robot():
    server = GroupRobot().start()
    yield server
    server.stop()


@pytest.fixture
def on_duty(robot, unblocked):
    def make():
        with schema_context(SCHEMA):
            conf = AlarmSettings.load()
            conf.wechat_template_id = "TPL-ALARM"
            conf.fault_min_severity = AlarmSettings.Level.MAJOR
            conf.save()
            AlarmWebhook.objects.create(name="运维群", url=robot.url)
            DutyContact.objects.create(name="值班员小王", openid="openid-duty-1")

    def clean():
        with schema_context(SCHEMA):
            for model in (AlarmWebhook, DutyContact, AlarmSettings):
                model.objects.all().delete()

    committed(make)
    yield
    committed(clean)


def _in_schema(fn, *args, **kwargs):
    def run():
        with schema_context(SCHEMA):
            return fn(*args, **kwargs)
    return committed(run)


def _online(pile, sims):  # noqa: F811
    sims.run(pile, "idle")
    wait_for(lambda: events(pile, "logged_in"), timeout=10)
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, pile.pile_code)), timeout=10)


def test_a_pile_fault_raises_an_alarm_to_wechat_and_the_robot_and_clears(
        tenant, gateway, make_pile, sims, fake_wechat, robot, on_duty):  # noqa: F811
    code = make_pile(connectors=2)
    pile = SimulatedPile(code, "127.0.0.1", gateway.port, connectors=2, time_scale=60)
    _online(pile, sims)

    sims.call(pile.set_fault, 1)
    fault = wait_for(lambda: Fault.objects.filter(pile__code=code, source=Fault.Source.PILE,
                                                  cleared_at__isnull=True).first(), timeout=10)
    assert (fault.code, fault.severity, fault.connector.number) == ("emergency_stop", "critical", 1)
    assert fault.protocol_code == "bit 1"
    assert fault.description == "急停按钮被按下"
    assert fault.started_at and fault.last_seen_at

    # What the worker does with the queued tasks.
    alarm_id = _in_schema(tasks.fault_opened, fault.pk)
    assert _in_schema(tasks.alarm_notify, alarm_id) == 2
    alarm = Alarm.objects.get(pk=alarm_id)
    assert (alarm.kind, alarm.severity, alarm.status) == ("fault", "critical", "open")
    assert code in alarm.title and "急停" in alarm.title
    sent = [m for m in fake_wechat.messages("wxtenanta0000001") if m["touser"] == "openid-duty-1"]
    assert len(sent) == 1 and sent[0]["template_id"] == "TPL-ALARM"
    assert "急停" in sent[0]["data"]["thing1"]["value"]
    assert len(robot.messages) == 1
    assert "急停" in robot.messages[0]["text"]["content"]
    assert "网关测试站" in robot.messages[0]["text"]["content"]
    assert set(AlarmDelivery.objects.filter(alarm_id=alarm_id).values_list("channel", "ok")) == {
        ("wechat", True), ("webhook", True)}

    # The pile is repaired: the fault closes, and so does its alarm.
    sims.call(pile.clear_fault, 1)
    wait_for(lambda: Fault.objects.filter(pk=fault.pk, cleared_at__isnull=False).exists(),
             timeout=10)
    assert _in_schema(tasks.fault_cleared, fault.pk) == 1
    alarm.refresh_from_db()
    assert (alarm.status, alarm.auto_cleared) == ("closed", True)


def test_a_reboot_from_the_admin_reaches_the_pile_and_its_reply_is_shown(
        tenant, gateway, make_pile, sims, django_user_model):  # noqa: F811
    code = make_pile()
    pile = SimulatedPile(code, "127.0.0.1", gateway.port, time_scale=60)
    _online(pile, sims)
    user = django_user_model.objects.create_superuser("ops-reboot", password="x-pass-123")
    client = Client()
    client.force_login(user)
    pk = Pile.objects.get(code=code).pk

    page = client.get(f"/admin/operations/pilecontrol/{pk}/send/", **HOST)
    assert page.status_code == 200 and "重启" in page.content.decode()
    response = client.post(f"/admin/operations/pilecontrol/{pk}/send/",
                           {"command": "reboot", "when_idle": "on"}, **HOST)
    html = response.content.decode()
    assert response.status_code == 200, html
    assert events(pile, "reboot") == [None]
    assert 'id="command-reply"' in html and "✔" in html

    response = client.post(f"/admin/operations/pilecontrol/{pk}/send/",
                           {"command": "time_sync"}, **HOST)
    assert "桩的时钟" in response.content.decode()

    entries = list(AuditEntry.objects.filter(target_type="stations.pile", target_id=str(pk))
                   .order_by("pk"))
    assert [e.action for e in entries] == ["pile.command", "pile.command"]
    assert entries[0].actor_name == "ops-reboot"
    assert entries[0].detail == f"重启 {code} → 成功"
    assert entries[1].detail.startswith(f"对时设置 {code} → 成功（桩的时钟：")
    log = client.get("/admin/operations/staffaction/", **HOST).content.decode()
    assert "ops-reboot" in log and code in log
