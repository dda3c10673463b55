"""Work orders: made from an alarm (pile in maintenance), moved along the flow with notes,
overdue, the pile enabled again when closed; the admin pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from operations import alarms, workorders
from operations.models import WorkOrder
from stations.faults import ReportedFault, faults_report

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff(django_user_model, tenant):
    user = django_user_model.objects.create_superuser("weixiu", password="x-pass-123")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _alarm(pile):
    change = faults_report(pile_code=pile.code, connector_no=1, at=timezone.now(),
                           faults=[ReportedFault("contactor", "critical", "bit 12")])
    return alarms.fault_opened(fault_id=change.opened[0])


def test_from_an_alarm_through_the_flow_with_the_pile_in_maintenance(pile, staff):
    alarm = _alarm(pile)
    r = staff.post("/admin/operations/alarm/", {"action": "make_work_order",
                                                "_selected_action": [alarm.pk]}, **HOST)
    assert r.status_code == 302
    order = WorkOrder.objects.get()
    assert (order.alarm, order.fault, order.pile, order.station) == (alarm, alarm.fault, pile, pile.station)
    assert order.status == "open" and order.pile_maintenance
    pile.refresh_from_db()
    assert pile.enabled is False  # not startable while the work order is open

    url = f"/admin/operations/workorder/{order.pk}/progress/"
    assert staff.get(url, **HOST).status_code == 200
    staff.post(url, {"status": "assigned", "assigned_to": staff.user.pk, "note": "派给维修组"}, **HOST)
    staff.post(url, {"status": "in_progress", "note": "已到场，更换接触器"}, **HOST)
    # Skipping a step is refused and changes nothing.
    with pytest.raises(workorders.WorkOrderError) as exc:
        workorders.work_order_move(work_order_id=order.pk, user=staff.user, status="open")
    assert exc.value.code == "illegal_transition"
    staff.post(url, {"status": "done", "note": "修复完成"}, **HOST)
    order.refresh_from_db()
    assert (order.status, order.assigned_to) == ("done", staff.user)
    assert list(order.notes.values_list("status", "text")) == [
        ("assigned", "派给维修组"), ("in_progress", "已到场，更换接触器"), ("done", "修复完成")]
    pile.refresh_from_db()
    assert pile.enabled is False
    staff.post(url, {"status": "closed", "note": "验收通过"}, **HOST)
    order.refresh_from_db()
    pile.refresh_from_db()
    assert order.status == "closed" and order.closed_at and pile.enabled is True
    page = staff.get(f"/admin/operations/workorder/{order.pk}/change/", **HOST).content.decode()
    assert "验收通过" in page and "已关闭" in page
    assert AuditEntry.objects.filter(action="work_order.change").count() == 5


def test_by_hand_in_the_admin_and_overdue(pile, staff, station):
    r = staff.post("/admin/operations/workorder/add/", {
        "kind": "cleaning", "title": "清洁车位与充电枪", "description": "", "station": station.pk,
        "pile": "", "assigned_to": "", "due_at_0": "2026-01-01", "due_at_1": "08:00:00",
        "photos": "[]", "notes-TOTAL_FORMS": "0", "notes-INITIAL_FORMS": "0"}, **HOST)
    assert r.status_code == 302, r.content.decode()[:2000]
    order = WorkOrder.objects.get()
    assert (order.kind, order.station, order.pile, order.created_by) == ("cleaning", station, None, staff.user)
    assert list(workorders.overdue()) == [order]
    listing = staff.get("/admin/operations/workorder/", **HOST).content.decode()
    assert "清洁车位与充电枪" in listing and "icon-yes.svg" in listing  # overdue
    workorders.work_order_move(work_order_id=order.pk, user=staff.user, status="closed", note="完成")
    assert list(workorders.overdue(timezone.now() + timedelta(days=1))) == []
    with pytest.raises(workorders.WorkOrderError) as exc:
        workorders.work_order_create(user=staff.user, title="没有地点")
    assert exc.value.code == "station_required"


def test_two_work_orders_hold_the_pile_until_both_close(pile, staff):
    a = workorders.work_order_create(user=staff.user, title="A", pile=pile, pile_maintenance=True)
    b = workorders.work_order_create(user=staff.user, title="B", pile=pile, pile_maintenance=True)
    workorders.work_order_move(work_order_id=a.pk, user=staff.user, status="closed")
    pile.refresh_from_db()
    assert pile.enabled is False
    workorders.work_order_move(work_order_id=b.pk, user=staff.user, status="closed")
    pile.refresh_from_db()
    assert pile.enabled is True
