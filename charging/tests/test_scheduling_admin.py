"""Staff see and manage the queue and the power plans in the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest

from charging import port, services
from charging.models import QueueEntry

from .test_scheduling import make_pile, members, running_order  # noqa: F401


@pytest.fixture
def staff(tenant, client):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("sched-admin", password="pw-sched-123")
    client.force_login(user)
    return client


def test_staff_see_the_queue_and_take_a_driver_out(staff, station, members):  # noqa: F811
    pile = make_pile(station)
    running_order(pile)
    entries = [services.queue_join(member=m, station=station) for m in members[:2]]
    page = staff.get("/admin/charging/queueentry/", HTTP_HOST="tenant-a.testserver")
    assert page.status_code == 200
    assert members[0].nickname in page.content.decode()
    response = staff.post("/admin/charging/queueentry/", {
        "action": "remove_from_queue", "_selected_action": [entries[0].pk]},
        HTTP_HOST="tenant-a.testserver")
    assert response.status_code == 302
    assert QueueEntry.objects.get(pk=entries[0].pk).state == QueueEntry.State.CANCELLED
    assert services.queue_status(QueueEntry.objects.get(pk=entries[1].pk)).position == 1


def test_staff_see_the_plans_and_caps(staff, station, monkeypatch):
    from charging import bus

    silent: set[str] = set()
    monkeypatch.setattr(bus, "send", lambda schema, command, timeout=10: port.CommandResult(
        ok=command.pile_code not in silent, error="timeout",
        detail={"applied_kw": str(command.max_power_kw)}))
    station.max_power_kw = Decimal("100")
    station.save()
    quiet = make_pile(station)
    running_order(quiet)
    services.station_power_plan(station_id=station.pk)
    silent.add(quiet.code)
    running_order(make_pile(station))
    plan = services.station_power_plan(station_id=station.pk)
    page = staff.get(f"/admin/charging/powerplan/{plan.pk}/change/", HTTP_HOST="tenant-a.testserver")
    assert page.status_code == 200
    text = page.content.decode()
    assert quiet.code in text and "timeout" in text
    station_page = staff.get(f"/admin/stations/station/{station.pk}/change/",
                             HTTP_HOST="tenant-a.testserver").content.decode()
    assert "100.0 kW" in station_page
