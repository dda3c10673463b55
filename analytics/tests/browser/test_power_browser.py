"""In Chromium: load management's plans and caps on the big screen (pushed over the
WebSocket when the station is re-planned) and on the station's admin page.

A station with a 150 kW limit shared by priority: an SVIP driver's 120 kW pile and a plain
driver's; the plan is made by the real planner (the piles' answers stand in for the bus).
Screenshots under var/screenshots/.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from .test_dashboard_browser import SHOTS, _login, browser, estate, web  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=False)
D = Decimal


class _Piles:
    """Stands in for charging.bus.send: every pile takes the cap it is asked."""

    def send(self, schema, command, timeout=10.0):
        from charging import port

        return port.CommandResult(ok=True, detail={"applied_kw": str(command.max_power_kw)})


@pytest.fixture(scope="module")
def limited(operators, django_db_blocker, estate):  # noqa: F811
    from django.utils import timezone

    from accounts.models import Member
    from charging import bus
    from charging.models import ChargingOrder, PowerPlan
    from marketing.models import SvipPlan, SvipPurchase
    from stations.models import Connector, Pile, Station

    real_send = bus.send
    bus.send = _Piles().send
    with django_db_blocker.unblock():
        connection.set_tenant(operators["tenant-a"])
        station = Station.objects.create(
            name="负荷测试站", code="BRPW01", address="广州市海珠区", area_code="440105",
            latitude=Decimal("23.10"), longitude=Decimal("113.36"), max_power_kw=D("150"),
            power_sharing="priority")
        now = timezone.now()
        plan = SvipPlan.objects.create(name="浏览器SVIP", months=1, price=D("30"))
        orders, piles, members = [], [], []
        for n, svip in ((1, True), (2, False)):
            pile = Pile.objects.create(station=station, code=f"4401050000990{n}",
                                       rated_power_kw=D("120"), online=True, connector_count=1)
            connector = Connector.objects.create(pile=pile, number=1, rated_power_kw=D("120"),
                                                 qr_code=f"brpw-{n}", status="charging")
            member = Member.objects.create(openid=f"openid-brpw-{n}", nickname=f"负荷{n}")
            if svip:
                SvipPurchase.objects.create(member=member, plan=plan, amount=D("30"),
                                            starts_at=now - timedelta(days=1),
                                            ends_at=now + timedelta(days=29))
            orders.append(ChargingOrder.objects.create(
                number=f"CDBRPW{n:04d}", member=member, connector=connector, pile=pile,
                station=station, trade_no=f"BRPW{n:028d}", mode="wallet", state="charging",
                started_at=now))
            piles.append(pile)
            members.append(member)
        connection.set_schema_to_public()
    yield {"station": station, "piles": piles, "orders": orders}
    bus.send = real_send
    with django_db_blocker.unblock():
        connection.set_tenant(operators["tenant-a"])
        PowerPlan.objects.filter(station=station).delete()
        ChargingOrder.objects.filter(station=station).delete()
        SvipPurchase.objects.filter(plan=plan).delete()
        plan.delete()
        Member.objects.filter(pk__in=[m.pk for m in members]).delete()
        Pile.objects.filter(station=station).delete()
        station.delete()
        connection.set_schema_to_public()
    connection.close()


def _committed(operators, django_db_blocker, fn):
    """Run ``fn`` in the operator's schema on a fresh connection in a thread, committed at
    once (the test's own connection is inside a transaction the web server cannot see)."""
    import threading

    from django_tenants.utils import schema_context

    result = {}

    def target():
        try:
            with schema_context(operators["tenant-a"].schema_name):
                result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc
        finally:
            connection.close()

    with django_db_blocker.unblock():
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(60)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _replan(operators, django_db_blocker, station):
    from charging import services

    return _committed(operators, django_db_blocker, lambda: services.station_power_plan(
        station_id=station.pk, reason="browser test"))


def test_big_screen_and_station_page_show_the_plan_and_follow_a_replan(
        browser, web, limited, operators, django_db_blocker):  # noqa: F811
    from charging.models import ChargingOrder

    station = limited["station"]
    plan = _replan(operators, django_db_blocker, station)
    svip, plain = limited["piles"]
    caps = {row["pile"]: row["cap_kw"] for row in plan.caps}
    # Floors 36 + 36 kW; the 78 kW left shared 2 : 1 (SVIP) → 88.0 and 62.0, Σ 150.
    assert caps == {svip.code: "88.0", plain.code: "62.0"}

    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _login(browser, web, 1920, 1080)
    page.goto(f"{web}/bigscreen/")
    card = "#power-plans .station[data-station='负荷测试站']"
    page.wait_for_selector(card, timeout=20000)  # a shared machine: what is checked is the content
    text = page.inner_text(card)
    assert "150.0 / 150 kW" in text and "按优先级" in text
    assert f"{svip.code}\n" in text or svip.code in text
    assert "88.0 kW" in text and "62.0 kW" in text and "SVIP" in text
    assert "Load management" not in page.inner_text("body")
    page.wait_for_timeout(900)
    page.screenshot(path=str(SHOTS / "power-bigscreen.png"))

    # The plain driver leaves: re-planned, the screen follows within 2 s (pushed).
    _committed(operators, django_db_blocker, lambda: ChargingOrder.objects.filter(
        pk=limited["orders"][1].pk).update(state="settled"))
    _replan(operators, django_db_blocker, station)
    started = time.monotonic()
    page.wait_for_function(
        f"document.querySelector(\"{card} .sum\").dataset.total === '120'", timeout=10000)
    print(f"re-plan on the big screen after {time.monotonic() - started:.2f} s")
    text = page.inner_text(card)
    assert "120.0 kW" in text and plain.code not in text
    page.screenshot(path=str(SHOTS / "power-bigscreen-replanned.png"))

    page.goto(f"{web}/admin/stations/station/{station.pk}/change/")
    box = page.inner_text(".field-power_plan_latest")
    assert "browser test" in box and svip.code in box and "120.0" in box and "SVIP" in box
    assert "合计 120.0 kW" in box and "上限 150.0 kW" in box and "Σ" not in box
    # The caps now: the sum counts the charging pile only; the idle one's last cap is
    # listed apart (it stands until its next start re-plans the station).
    caps_now = page.inner_text(".field-power_caps_now")
    assert "合计 120.0 kW / 上限 150.0 kW" in caps_now, caps_now
    assert f"空闲（保留上次上限，下次启动时重新分配）：{plain.code} 62.0 kW" in caps_now, caps_now
    assert page.input_value("#id_power_sharing") == "priority"
    page.locator(".field-power_plan_latest").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "power-station-admin.png"), full_page=True)
    context.close()
