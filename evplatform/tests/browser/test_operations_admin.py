"""Operations in Chromium: the alarm list (acknowledge), the remote-control page of a pile
with the reply shown, and the audit log — styled, Chinese, fitting 1440 px."""

from __future__ import annotations

from datetime import UTC, datetime

from django_tenants.utils import tenant_context

from evplatform.tests.estate import ADMIN
from protocols.tests.helpers import committed


def _alarm(site):
    from operations import alarms
    from operations.models import AlarmDelivery
    from stations.faults import ReportedFault, faults_report

    def make():
        with tenant_context(site.operator):
            pile = site.estate.owned_pile
            change = faults_report(pile_code=pile.code, connector_no=1,
                                   at=datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
                                   faults=[ReportedFault("emergency_stop", "critical", "bit 1")])
            alarm = alarms.fault_opened(fault_id=change.opened[0])
            AlarmDelivery.objects.create(alarm=alarm, channel="webhook", target="运维群", ok=True)
            AlarmDelivery.objects.create(alarm=alarm, channel="wechat", target="值班员小王",
                                         ok=False, error="no_template")
            return alarm.pk
    return committed(make)


def test_alarms_are_acknowledged_and_the_pile_is_controlled(open_page, site):
    alarm_id = _alarm(site)
    pile = site.estate.owned_pile
    page = open_page()
    page.login(*ADMIN)

    page.goto("/admin/operations/alarm/")
    page.assert_styled()
    page.assert_chinese()
    page.assert_fits()
    assert "急停按钮被按下" in page.text() and "严重" in page.text()
    page.screenshot("alarms")
    page.page.check(f"input[name=_selected_action][value='{alarm_id}']")
    page.page.select_option("select[name=action]", "acknowledge")
    page.page.click("button[name=index]")
    page.page.wait_for_selector(".messagelist")
    assert "已确认 1 条告警" in page.text(".messagelist")
    assert "未处理" not in page.text("#result_list")
    page.goto(f"/admin/operations/alarm/{alarm_id}/change/")
    page.assert_chinese()
    assert "已确认" in page.text() and "运维群" in page.text()
    page.screenshot("alarm-detail")

    # From the pile's page to its remote control; the pile is not connected here, so the
    # reply says so (the round trip to a pile: protocols/tests/test_ykc_operations.py).
    page.goto(f"/admin/stations/pile/{pile.pk}/change/")
    page.page.click("#pile-remote-control")
    page.page.wait_for_selector("#pile-command")
    page.assert_styled()
    page.assert_chinese()
    page.page.select_option("select[name=command]", "reboot")
    page.page.click("#pile-command input[type=submit]")
    page.page.wait_for_selector("#command-reply")
    assert "桩离线" in page.text("#command-reply")
    assert "重启" in page.text("#command-history")
    page.assert_chinese()
    page.assert_fits()
    page.screenshot("remote-control")

    page.goto("/admin/operations/staffaction/")
    page.assert_chinese()
    page.assert_fits()
    body = page.text()
    assert "下发桩指令" in body and "确认告警" in body and pile.code in body
    page.screenshot("audit-log")

    # A station edited in the admin: its model-change record, in Chinese, before and after.
    def station_of_pile():
        from stations.models import Station

        with tenant_context(site.operator):
            return Station.objects.get(piles__pk=pile.pk)
    station = committed(station_of_pile)
    page.goto(f"/admin/stations/station/{station.pk}/change/")
    before = page.page.input_value("#id_phone")
    try:
        page.page.fill("#id_phone", "020-87654321")
        page.page.click("input[name=_save]")
        page.page.wait_for_selector(".messagelist")
        assert "成功" in page.text(".messagelist"), page.text()
        page.goto("/admin/operations/modelchange/")
        page.assert_styled()
        page.assert_chinese()
        page.assert_fits()
        assert station.name in page.text()
        # The staff groups' type reads as Django's "组", not as the alarms' grouping key.
        assert "组" in page.text("#changelist-filter").split() and \
            "归并键" not in page.text("#changelist-filter")
        page.screenshot("model-changes")
        page.goto(f"/admin/operations/modelchange/?q={station.name}")
        page.page.click("#result_list tbody tr:first-child th a")
        page.page.wait_for_selector(".field-changes_table, #content-main")
        detail = page.text()
        assert "020-87654321" in detail and "服务电话" in detail and ADMIN[0] in detail, detail
        page.assert_chinese()
        page.assert_fits()
        page.screenshot("model-change")
    finally:
        def restore():
            from stations.models import Station

            with tenant_context(site.operator):
                Station.objects.filter(pk=station.pk).update(phone=before)
        committed(restore)
