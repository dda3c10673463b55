"""The station queue in the drivers' H5 app, in a real browser against the whole platform
(see conftest.py): a driver queues for a DC gun at the demo's full 琶洲 station, sees their
place and the estimated wait, is offered the gun that frees with a countdown, declines it,
queues again and leaves. Screenshots: var/screenshots/h5-q*.png."""

from __future__ import annotations

import re

import pytest

from .test_h5_journey import app_url, browser, login, phone, shot  # noqa: F401

pytestmark = pytest.mark.django_db


def _in_demo(platform, django_db_blocker, fn):
    """Run ``fn`` in the demo operator's schema on a connection of its own (committed, so
    the platform's web process sees it; the test's own connection is inside a transaction)."""
    from django_tenants.utils import schema_context

    from protocols.tests.helpers import committed

    def run():
        with schema_context(platform.operator.schema_name):
            return fn()

    with django_db_blocker.unblock():
        return committed(run)


def test_queue_offer_countdown_decline_and_leave(platform, phone, django_db_blocker):  # noqa: F811
    from charging import services
    from charging.models import QueueEntry
    from stations.models import Connector, Station

    page = phone
    station = _in_demo(platform, django_db_blocker, lambda: Station.objects.get(code="GZ-HZ-001"))
    login(page, platform, "quinn")

    # Every gun has a car on it (the simulated piles' demo): the driver joins the DC queue.
    page.goto(app_url(platform) + f"#/pages/queue/index?station={station.pk}&name=%E7%90%B6%E6%B4%B2")
    page.get_by_text("加入排队", exact=True).wait_for()
    page.get_by_text("直流快充", exact=True).click()
    page.get_by_text("加入排队", exact=True).click()
    page.get_by_text("第 1 位").wait_for()
    card = page.locator(".card").first.inner_text()
    assert "琶洲会展中心充电站" in card and "预计等待" in card
    assert re.search(r"约 \d+ 分钟|—", card)
    page.wait_for_timeout(1600)  # the toast has gone
    shot(page, "q1-waiting")

    # A DC gun frees (the car left): the worker offers it; the screen shows the countdown.
    def free_one():
        gun = Connector.objects.filter(pile__station=station, connector_type=Connector.Type.DC).order_by(
            "pile__code", "number").first()
        Connector.objects.filter(pk=gun.pk).update(status=Connector.Status.IDLE)
        return gun, services.queue_offer(station_id=station.pk)

    gun, offered = _in_demo(platform, django_db_blocker, free_one)
    assert len(offered) == 1
    page.get_by_text("轮到您了").wait_for(timeout=15000)
    offer = page.locator(".card.offer").inner_text()
    assert f"{gun.number}号枪已为您保留" in offer
    assert re.search(r"0[45]:\d\d", offer), offer
    first = page.locator(".countdown").inner_text()
    page.wait_for_timeout(2200)
    assert page.locator(".countdown").inner_text() < first  # it counts down
    shot(page, "q2-offered")

    # Declined: the gun passes on, the driver is out of the queue (and may join again).
    page.get_by_text("放弃", exact=True).click()
    page.get_by_text("加入排队", exact=True).wait_for()
    assert page.get_by_text("轮到您了").count() == 0
    state = _in_demo(platform, django_db_blocker,
                     lambda: QueueEntry.objects.get(pk=offered[0].pk).state)
    assert state == QueueEntry.State.PASSED

    # Queue again (the freed gun is taken back by a car first), then leave.
    _in_demo(platform, django_db_blocker, lambda: Connector.objects.filter(pk=gun.pk).update(
        status=Connector.Status.PLUGGED))
    page.wait_for_timeout(1600)  # the toast has gone
    page.get_by_text("加入排队", exact=True).click()
    page.get_by_text("第 1 位").wait_for()
    page.get_by_text("退出排队", exact=True).click()
    page.get_by_text("加入排队", exact=True).wait_for()
    # 我的排队 (no station): nothing queued.
    page.goto(app_url(platform) + "#/pages/mine/mine")
    page.get_by_text("我的排队", exact=True).click()
    page.get_by_text("当前没有排队").wait_for()
    shot(page, "q3-left")
    assert not page.problems, page.problems
