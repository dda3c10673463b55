"""In Chromium: the operator's home and the big screen show the aggregates, and a connector
changing state on a pile reaches the big screen within 2 s (pushed over the WebSocket).

The app runs under uvicorn on the test database (committed data in ``tenant-a``, removed
afterwards). Screenshots under var/screenshots/. To be moved onto the shared browser
fixtures (evplatform/tests/browser/conftest.py) once those are on main.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PORT = int(os.environ.get("EVP_TEST_WEB_PORT", "19010"))
HOST = "tenant-a.testserver"
APP_NAME = "evp-browser-test-server"

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(scope="module")
def estate(operators, django_db_blocker):
    from django.utils import timezone

    from analytics import services
    from analytics.selectors import local_today
    from charging.models import ChargingOrder
    from stations.models import Connector, Pile, Station

    with django_db_blocker.unblock():
        connection.set_tenant(operators["tenant-a"])
        station = Station.objects.create(name="浏览器测试站", code="BR0001", address="广州市天河区",
                                         area_code="440106", latitude=Decimal("23.12"),
                                         longitude=Decimal("113.32"))
        pile = Pile.objects.create(station=station, code="44010600009901", rated_power_kw=Decimal("120"),
                                   online=True, connector_count=2)
        connectors = [Connector.objects.create(pile=pile, number=n, rated_power_kw=Decimal("60"),
                                               qr_code=f"br-{n}", status=Connector.Status.IDLE) for n in (1, 2)]
        now = timezone.now()
        for n in range(3):
            ChargingOrder.objects.create(
                number=f"CDBR{n:04d}", connector=connectors[0], pile=pile, station=station,
                trade_no=f"BR{n:030d}", mode="wallet", state="settled",
                started_at=now - timedelta(minutes=40), stopped_at=now - timedelta(minutes=5),
                energy_kwh=Decimal("12.5000"), electricity_amount=Decimal("10.00"),
                service_amount=Decimal("5.00"), total_amount=Decimal("15.00"), paid_amount=Decimal("15.00"),
                bill={"period_energy": {"flat": "12.5000"}, "lines": [
                    {"periods": ["flat"], "energy_kwh": "12.5000", "electricity_yuan": "10.00",
                     "service_yuan": "5.00"}]},
            )
        services.stats_day_rebuild(day=local_today())
        connection.set_schema_to_public()
    yield {"station": station, "pile": pile, "connectors": connectors}
    with django_db_blocker.unblock():
        connection.set_tenant(operators["tenant-a"])
        ChargingOrder.objects.filter(station=station).delete()
        from analytics.models import ConnectorDay, ConnectorHour, MemberDay

        ConnectorDay.objects.all().delete()
        ConnectorHour.objects.all().delete()
        MemberDay.objects.all().delete()
        Pile.objects.filter(pk=pile.pk).delete()
        Station.objects.filter(pk=station.pk).delete()
        connection.set_schema_to_public()
    # Playwright's sync API runs the tests in a greenlet whose context has its own database
    # connection: close it, or the test database cannot be dropped at the end.
    connection.close()


@pytest.fixture(scope="module")
def web(estate, django_db_blocker):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evplatform.settings_test",
           "DB_NAME": connection.settings_dict["NAME"], "BIGSCREEN_TICK_MS": "500", "PGAPPNAME": APP_NAME}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "analytics.tests.browser.asgi:application", "--host", "127.0.0.1",
         "--port", str(PORT), "--log-level", "warning"], env=env, cwd=settings.BASE_DIR)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the web server did not start")
    yield f"http://{HOST}:{PORT}"
    proc.terminate()
    proc.wait(10)
    with django_db_blocker.unblock(), connection.cursor() as cursor:  # the server's, if any left
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                       [APP_NAME])


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--host-resolver-rules=MAP *.testserver 127.0.0.1", "--no-sandbox"])
        yield chromium
        chromium.close()


def _login(browser, web, width=1440, height=900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(f"{web}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return context, page


def test_home_shows_the_aggregates(browser, web, estate):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _login(browser, web)
    page.wait_for_selector("#chart-trend canvas")
    assert page.inner_text("#card-energy strong") == "37.5"
    assert page.inner_text("#card-revenue strong") == "45.00"
    assert page.inner_text("#card-orders strong") == "3"
    assert "浏览器测试站" in page.inner_text("#top-stations")
    assert "今日电量" in page.inner_text("#stats-home") and "Energy" not in page.inner_text("#stats-home")
    page.screenshot(path=str(SHOTS / "analytics-home.png"), full_page=True)
    context.close()


def test_bigscreen_moves_when_a_connector_changes(browser, web, estate, operators):
    from stations import live

    context, page = _login(browser, web, 1920, 1080)
    page.goto(f"{web}/bigscreen/")
    page.wait_for_function("document.getElementById('orders').dataset.value === '3'", timeout=5000)
    assert page.get_attribute("#energy", "data-value") == "37.5"
    assert page.get_attribute("#revenue", "data-value") == "45"
    assert "监控大屏" in page.inner_text("header") and "Monitoring" not in page.inner_text("body")
    pile = estate["pile"]
    schema = operators["tenant-a"].schema_name
    live.connector_update(schema, pile.code, 2, status="charging", power_kw="42.5")
    started = time.monotonic()
    page.wait_for_function("document.getElementById('power').dataset.value === '42.5'", timeout=2000)
    assert time.monotonic() - started < 2
    page.wait_for_timeout(900)  # the counters' animation
    page.screenshot(path=str(SHOTS / "analytics-bigscreen.png"))
    live.connector_clear(schema, pile.code, 2, "status", "power_kw")
    context.close()


def test_bigscreen_requires_login(browser, web, estate):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{web}/bigscreen/")
    assert "/admin/login/" in page.url
    context.close()
