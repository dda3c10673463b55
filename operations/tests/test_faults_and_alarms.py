"""Pile faults (stations.faults) and the alarms they raise: thresholds, grouping, rate
limits, channels, acknowledgement, auto-clear, the periodic rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from charging import handlers, port
from operations import alarms
from operations.models import Alarm, AlarmSettings, AlarmWebhook, DutyContact
from stations.faults import ReportedFault, faults_report
from stations.models import Connector, Fault

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)



@pytest.fixture(autouse=True)
def _one_settings_row(tenant):
    """The operator's settings are one row: start each test without one left committed by
    another test (the Procfile jobs' test, browser tests), as the tests create their own."""
    AlarmSettings.objects.all().delete()  # rolled back with the test


def _report(pile, no, *codes, at=T0):
    return faults_report(pile_code=pile.code, connector_no=no, at=at,
                         faults=[ReportedFault(c, s, p) for c, s, p in codes])


def test_faults_open_update_and_close_with_the_piles_reports(pile):
    opened = _report(pile, 1, ("emergency_stop", "critical", "bit 1"), ("door_open", "minor", "bit 13"))
    assert len(opened.opened) == 2 and opened.cleared == ()
    estop = Fault.objects.get(code="emergency_stop")
    assert (estop.severity, estop.connector.number, estop.description) == ("critical", 1, "急停按钮被按下")
    assert estop.source == Fault.Source.PILE and estop.started_at == estop.last_seen_at == T0

    later = T0 + timedelta(minutes=5)
    again = _report(pile, 1, ("emergency_stop", "critical", "bit 1"), at=later)
    assert again.opened == () and again.cleared == (Fault.objects.get(code="door_open").pk,)
    estop.refresh_from_db()
    assert (estop.started_at, estop.last_seen_at, estop.cleared_at) == (T0, later, None)
    # Connector 2 and the pile as a whole are separate.
    assert _report(pile, 2).opened == ()
    assert Fault.objects.filter(cleared_at__isnull=True).count() == 1

    healthy = _report(pile, 1, at=later + timedelta(minutes=1))
    assert healthy.cleared == (estop.pk,)
    assert not Fault.objects.filter(cleared_at__isnull=True).exists()


def test_an_unknown_pile_or_connector_changes_nothing(pile):
    assert faults_report(pile_code="nope", connector_no=1, at=T0,
                         faults=[ReportedFault("fuse", "critical")]).opened == ()
    assert _report(pile, 9, ("fuse", "critical", "")).opened == ()
    assert not Fault.objects.exists()


def test_the_port_event_reaches_the_faults_through_the_handlers(pile):
    handlers.handle(port.FaultsReported(
        pile.code, 2, (port.ActiveFault(port.FaultCode.OVER_TEMPERATURE, port.FaultSeverity.MAJOR,
                                        "GroundFailure"),), T0))
    fault = Fault.objects.get()
    assert (fault.code, fault.severity, fault.connector.number, fault.protocol_code) == (
        "over_temperature", "major", 2, "GroundFailure")


def _fault(pile, code="emergency_stop", severity="critical", no=1, at=T0):
    ids = _report(pile, no, (code, severity, "bit 1"), at=at).opened
    return Fault.objects.get(pk=ids[0])


def test_severity_below_the_operators_level_raises_no_alarm(pile):
    AlarmSettings.objects.create(fault_min_severity=AlarmSettings.Level.CRITICAL)
    assert alarms.fault_opened(fault_id=_fault(pile, "door_open", "minor").pk) is None
    assert alarms.fault_opened(fault_id=_fault(pile, "meter", "major", no=2).pk) is None
    alarm = alarms.fault_opened(fault_id=_fault(pile, "fuse", "critical", no=0).pk)
    assert alarm is not None and alarm.connector is None


def test_repeats_are_grouped_and_the_alarm_clears_with_its_fault(pile):
    first = _fault(pile)
    alarm = alarms.fault_opened(fault_id=first.pk)
    # The pile flaps: fault cleared, the alarm closes by itself; a new one opens next time.
    _report(pile, 1, at=T0 + timedelta(minutes=1))
    assert alarms.fault_cleared(fault_id=first.pk) == 1
    alarm.refresh_from_db()
    assert (alarm.status, alarm.auto_cleared) == ("closed", True)
    second = _fault(pile, at=T0 + timedelta(minutes=2))
    again = alarms.fault_opened(fault_id=second.pk)
    assert again.pk != alarm.pk
    # While open, the same cause only counts.
    repeat, notify = alarms.alarm_raise(kind="fault", severity="critical", title="x", pile=pile,
                                        group_key=again.group_key, at=T0 + timedelta(minutes=3))
    assert repeat.pk == again.pk and repeat.occurrences == 2 and notify is False
    assert Alarm.objects.exclude(status="closed").count() == 1


def test_an_open_alarm_is_sent_again_only_after_the_repeat_interval(pile):
    AlarmSettings.objects.create(repeat_after_min=30)
    alarm = alarms.fault_opened(fault_id=_fault(pile).pk)
    Alarm.objects.filter(pk=alarm.pk).update(notified_at=T0)
    _a, soon = alarms.alarm_raise(kind="fault", severity="critical", title="x", pile=pile,
                                  group_key=alarm.group_key, at=T0 + timedelta(minutes=10))
    _a, late = alarms.alarm_raise(kind="fault", severity="critical", title="x", pile=pile,
                                  group_key=alarm.group_key, at=T0 + timedelta(minutes=31))
    assert (soon, late) == (False, True)


def test_notify_goes_to_the_robot_and_sms_and_records_every_delivery(pile, robot, sms, redis_clean):
    AlarmWebhook.objects.create(name="运维群", url=robot.url)
    AlarmWebhook.objects.create(name="停用的群", url=robot.url, enabled=False)
    DutyContact.objects.create(name="小王", phone="13800000001")
    DutyContact.objects.create(name="坏号码", phone="0000")
    DutyContact.objects.create(name="休假", phone="13800000002", on_duty=False)
    DutyContact.objects.create(name="没模板", openid="openid-x")
    alarm = alarms.fault_opened(fault_id=_fault(pile).pk)

    deliveries = alarms.alarm_notify(alarm_id=alarm.pk)
    got = {(d.channel, d.target, d.ok, d.error) for d in deliveries}
    assert got == {("webhook", "运维群", True, ""), ("sms", "小王", True, ""),
                   ("sms", "坏号码", False, "InvalidParameterValue.IncorrectPhoneNumber: bad number"),
                   ("wechat", "没模板", False, "no_template")}
    assert len(robot.messages) == 1 and "【严重告警】" in robot.messages[0]["text"]["content"]
    # One signed SendSms call through the SDK; the fake rendered the alarm template.
    local = timezone.localtime(alarm.last_at)
    assert [(m["phone"], m["text"]) for m in sms.sent] == [
        ("+8613800000001", f"【绿源运维】严重告警：{alarm.title}，电站珠江新城站，"
                           f"时间{local:%Y-%m-%d %H:%M:%S}。-")]
    alarm.refresh_from_db()
    assert alarm.notified_at is not None


def test_an_sms_provider_error_is_a_failed_delivery_not_an_exception(pile, sms, redis_clean):
    from marketing.models import SmsSettings

    DutyContact.objects.create(name="小王", phone="13800000001")
    DutyContact.objects.create(name="小李", phone="13800000003")
    SmsSettings.objects.update(secret_key="a-wrong-key")
    first = alarms.alarm_notify(alarm_id=alarms.fault_opened(fault_id=_fault(pile).pk).pk)
    assert {(d.target, d.ok, d.error) for d in first} == {
        ("小王", False, "AuthFailure.SignatureFailure: signature mismatch"),
        ("小李", False, "AuthFailure.SignatureFailure: signature mismatch")}
    # The provider cannot be reached at all.
    sms.shutdown()
    SmsSettings.objects.update(secret_key="alarm-secret-key")
    other = _fault(pile, no=2)
    second = alarms.alarm_notify(alarm_id=alarms.fault_opened(fault_id=other.pk).pk)
    assert [(d.ok, d.error.split(":")[0]) for d in second] == [(False, "ClientNetworkError")] * 2
    assert sms.sent == []


def test_no_alarm_template_is_said_so(pile, sms, redis_clean):
    AlarmSettings.objects.update(sms_template_id="")
    DutyContact.objects.create(name="小王", phone="13800000001")
    [delivery] = alarms.alarm_notify(alarm_id=alarms.fault_opened(fault_id=_fault(pile).pk).pk)
    assert (delivery.channel, delivery.ok, delivery.error) == ("sms", False, "no_sms_template")
    assert sms.sent == []


def test_sms_keeps_the_rate_limit_and_grouping(pile, sms, redis_clean):
    AlarmSettings.objects.update(max_notifications_per_hour=1, repeat_after_min=30)
    DutyContact.objects.create(name="小王", phone="13800000001")
    alarm = alarms.fault_opened(fault_id=_fault(pile).pk)
    alarms.alarm_notify(alarm_id=alarm.pk)
    # A repeat of the same fault groups into the open alarm: counted, not sent.
    _a, send = alarms.alarm_raise(kind="fault", severity="critical", title="x", pile=pile,
                                  group_key=alarm.group_key, at=timezone.now())
    assert send is False
    other = alarms.fault_opened(fault_id=_fault(pile, no=2).pk)
    [held] = alarms.alarm_notify(alarm_id=other.pk)
    assert held.error == "rate_limited" and len(sms.sent) == 1
    # Next hour: the first SMS that goes out tells of the one held back, as {5}.
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).delete(alarms._rate_key())
    [sent] = alarms.alarm_notify(alarm_id=other.pk)
    assert sent.ok and "另有 1 条告警因频率限制未推送" in sms.sent[-1]["text"]


def test_a_robot_error_is_recorded(pile, robot, redis_clean):
    AlarmWebhook.objects.create(name="运维群", url=robot.url)
    robot.fail_next(1)
    alarm = alarms.fault_opened(fault_id=_fault(pile).pk)
    [delivery] = alarms.alarm_notify(alarm_id=alarm.pk)
    assert (delivery.ok, delivery.error) == (False, "45009: api freq out of limit")


def test_no_sms_provider_is_said_so(pile, redis_clean):
    from marketing.models import SmsSettings

    SmsSettings.objects.all().delete()  # rolled back with the test
    SmsSettings.objects.create(sign_name="绿源运维")  # no app or keys: cannot send
    AlarmSettings.objects.create(sms_template_id="200002")
    DutyContact.objects.create(name="小王", phone="13800000001")
    alarm = alarms.fault_opened(fault_id=_fault(pile).pk)
    [delivery] = alarms.alarm_notify(alarm_id=alarm.pk)
    assert (delivery.channel, delivery.ok, delivery.error) == ("sms", False, "no_sms_provider")


def test_the_rate_limit_holds_back_a_storm_and_the_next_message_says_so(pile, station, robot, redis_clean):
    from stations.models import Pile

    AlarmSettings.objects.create(max_notifications_per_hour=2)
    AlarmWebhook.objects.create(name="运维群", url=robot.url)
    ids = []
    for n in range(5):
        other = Pile.objects.create(station=station, code=f"4401060000020{n}", rated_power_kw=60)
        other.connectors.create(number=1, rated_power_kw=60, qr_code=f"qr-2{n}")
        ids.append(alarms.fault_opened(fault_id=_fault(other).pk).pk)
    results = [alarms.alarm_notify(alarm_id=pk) for pk in ids]
    assert [len(robot.messages)] == [2]
    assert [r[0].error for r in results[2:]] == ["rate_limited"] * 3
    # Next hour: the first message that goes out tells of the three held back.
    import redis
    from django.conf import settings

    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(alarms._rate_key())
    alarms.alarm_notify(alarm_id=ids[4])
    assert "另有 3 条告警因频率限制未推送" in robot.messages[-1]["text"]["content"]


def test_acknowledge_and_close_are_audited_and_refused_twice(pile, django_user_model, redis_clean):
    user = django_user_model.objects.create_user("duty", password="x-pass-123")
    alarm = alarms.fault_opened(fault_id=_fault(pile).pk)
    alarms.alarm_acknowledge(alarm_id=alarm.pk, user=user, note="已派人")
    with pytest.raises(alarms.AlarmError) as exc:
        alarms.alarm_acknowledge(alarm_id=alarm.pk, user=user)
    assert exc.value.code == "alarm_not_open"
    assert alarms.alarm_notify(alarm_id=alarm.pk) == []  # acknowledged: nothing more sent
    alarms.alarm_close(alarm_id=alarm.pk, user=user, note="已修复")
    with pytest.raises(alarms.AlarmError):
        alarms.alarm_close(alarm_id=alarm.pk, user=user)
    alarm.refresh_from_db()
    assert (alarm.status, alarm.acknowledged_by, alarm.closed_by) == ("closed", user, user)
    assert "已派人" in alarm.note and "已修复" in alarm.note
    assert list(AuditEntry.objects.filter(target_type="operations.alarm").order_by("pk")
                .values_list("action", "actor_name")) == [
        ("alarm.acknowledge", "duty"), ("alarm.close", "duty")]


def test_periodic_rules_offline_and_stuck_finishing_raise_and_clear(pile):
    AlarmSettings.objects.create(offline_after_min=10, finishing_stuck_min=30)
    now = timezone.now()
    offline = Fault.objects.create(pile=pile, source=Fault.Source.OFFLINE, code="offline",
                                   started_at=now - timedelta(minutes=5))
    Connector.objects.filter(pile=pile, number=2).update(
        status=Connector.Status.FINISHING, status_changed_at=now - timedelta(minutes=45))
    assert alarms.alarms_evaluate(now=now) == {"raised": 1, "cleared": 0}  # offline only 5 min
    stuck = Alarm.objects.get(kind="stuck_finishing")
    assert stuck.connector.number == 2 and "2号枪" in stuck.title

    later = now + timedelta(minutes=6)
    assert alarms.alarms_evaluate(now=later) == {"raised": 1, "cleared": 0}
    off = Alarm.objects.get(kind="offline")
    assert "已离线 11 分钟" in off.title and off.severity == "major"
    assert alarms.alarms_evaluate(now=later) == {"raised": 0, "cleared": 0}  # no duplicates

    # The pile is back and the connector moved on: both clear by themselves.
    Fault.objects.filter(pk=offline.pk).update(cleared_at=later)
    Connector.objects.filter(pile=pile, number=2).update(status=Connector.Status.IDLE)
    assert alarms.alarms_evaluate(now=later) == {"raised": 0, "cleared": 2}
    assert set(Alarm.objects.values_list("status", "auto_cleared")) == {("closed", True)}


def test_rules_set_to_zero_are_off(pile):
    AlarmSettings.objects.create(offline_after_min=0, finishing_stuck_min=0)
    Fault.objects.create(pile=pile, source=Fault.Source.OFFLINE, code="offline",
                         started_at=timezone.now() - timedelta(days=1))
    assert alarms.alarms_evaluate() == {"raised": 0, "cleared": 0}


def test_a_station_whose_revenue_drops_to_zero_raises_one_alarm_until_it_earns_again(
        pile, robot, redis_clean):
    from decimal import Decimal

    from accounts.models import Member
    from charging.models import ChargingOrder

    AlarmSettings.objects.create(revenue_zero_hours=24)
    AlarmWebhook.objects.create(name="运维群", url=robot.url)
    member = Member.objects.create(openid="o-revenue")
    now = timezone.now()

    def settled(at, total: str, n: int):
        return ChargingOrder.objects.create(
            number=f"T2026113000{n:02d}", trade_no=f"{n:032d}", member=member,
            station=pile.station, pile=pile, connector=pile.connectors.get(number=1),
            state="settled", settled_at=at, total_amount=Decimal(total))

    # Nothing ever earned: no alarm (a new station is not a drop).
    assert alarms.revenue_watch(now=now) == {"raised": 0, "cleared": 0}
    settled(now - timedelta(hours=30), "12.50", 1)
    settled(now - timedelta(hours=3), "0.00", 2)  # a free charge earns nothing
    # Earned 30 h ago, nothing in the last 24 h: one major alarm on the station.
    assert alarms.revenue_watch(now=now) == {"raised": 1, "cleared": 0}
    alarm = Alarm.objects.get(kind="revenue_zero")
    assert (alarm.station_id, alarm.pile_id, alarm.severity) == (pile.station_id, None, "major")
    assert alarm.title == f"{pile.station.name} 24 小时无收入"
    # A station's alarm (no pile) is delivered like any other.
    [delivery] = alarms.alarm_notify(alarm_id=alarm.pk)
    assert delivery.ok and pile.station.name in robot.messages[-1]["text"]["content"]
    # Still nothing: the open alarm is not raised again.
    assert alarms.revenue_watch(now=now + timedelta(hours=1)) == {"raised": 0, "cleared": 0}
    # The station earns again: the alarm closes by itself.
    settled(now + timedelta(hours=1), "8.00", 3)
    assert alarms.revenue_watch(now=now + timedelta(hours=2)) == {"raised": 0, "cleared": 1}
    assert Alarm.objects.get(pk=alarm.pk).status == "closed"

    AlarmSettings.objects.update(revenue_zero_hours=0)
    assert alarms.revenue_watch(now=now + timedelta(hours=60)) == {"raised": 0, "cleared": 0}
