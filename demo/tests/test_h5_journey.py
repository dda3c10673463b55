"""The drivers' H5 app (miniprogram/, built by `make miniprogram`) in a real browser on a
phone-sized screen, against the whole platform on real sockets (see conftest.py): the
demo operator's branded station list at /m/, login through the fake WeChat, a top-up paid
in the fake WeChat Pay, the nearest free connector, start, live kWh over the WebSocket,
stop, the bill with its time-of-use lines, and the balance reduced by the bill.

Screenshots go to var/screenshots/h5-*.png.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
# WGS-84 near 天河体育中心 (the browser reports WGS-84; the app converts to GCJ-02).
WHERE = {"latitude": 23.1402, "longitude": 113.3199}


@pytest.fixture(scope="module")
def browser():
    index = Path(settings.MINIPROGRAM_H5_DIR) / "index.html"
    assert index.is_file(), "the H5 app is not built: run `make miniprogram` (make test does)"
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django then refuses ORM
    # calls here (the tests' own set-up included) unless told they are really synchronous.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()
    if saved is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
        locale="zh-CN", timezone_id="Asia/Shanghai",
        geolocation=WHERE, permissions=["geolocation"],
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # (The API's refusals are 4xx responses the app shows in words: not problems.)
    page.on("console", lambda m: m.type == "error" and "status of 4" not in m.text
            and problems.append(f"console: {m.text}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.problems = problems
    yield page
    shot(page, "last")  # where the last test stopped (look here when one fails)
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"h5-{name}.png"))


def field(page, placeholder: str):
    """uni-app's <input>: the placeholder is a sibling element, not an attribute."""
    return page.locator("uni-input", has_text=placeholder).locator("input")


def money(text: str) -> Decimal:
    return Decimal(re.search(r"-?\d+\.\d{2}", text.replace(",", "")).group())


def app_url(platform) -> str:
    from demo.seed import demo_host

    return f"http://{demo_host()}:{platform.web.port}/m/"


def test_branded_station_list_is_served_at_m(platform, phone):
    from demo.seed import demo_host

    # (Python's resolver does not know *.localhost; browsers do.)
    response = httpx.get(f"{platform.web.url}/m/", headers={"Host": demo_host()})
    assert response.status_code == 200
    assert "window.__EVP__" in response.text and '"tenant": "demo"' in response.text
    assert "<title>绿源充电（演示）</title>" in response.text

    phone.goto(app_url(platform))
    phone.get_by_text("绿源充电（演示）").first.wait_for()
    # Stations by distance from where the phone is, with price and free connectors.
    first = phone.locator(".station").first
    first.wait_for()
    assert "天河体育中心充电站" in first.inner_text()
    assert re.search(r"\d+米|\d+\.\d公里", first.inner_text())
    assert re.search(r"¥\d+\.\d+", first.inner_text())
    # The operator's colour, from its settings.
    color = phone.evaluate(
        "() => getComputedStyle(document.querySelector('.btn.nearest')).backgroundColor"
    )
    assert color == "rgb(14, 159, 110)"  # #0E9F6E
    shot(phone, "01-stations")

    # DC only, sorted by price.
    phone.get_by_text("直流快充", exact=True).click()
    phone.get_by_text("价格最低", exact=True).click()
    phone.wait_for_timeout(500)
    rows = phone.locator(".station").all_inner_texts()
    assert rows and all("快 空闲" in r for r in rows)

    # The offline map plots every station around the driver.
    phone.get_by_text("地图", exact=True).click()
    phone.locator(".pin").first.wait_for()
    assert phone.locator(".pin").count() == 3 and phone.locator(".me").count() == 1
    phone.locator(".pin").first.click()
    phone.get_by_text("点击查看详情").wait_for()
    shot(phone, "02-map")
    phone.locator(".card.station").click()

    # Station detail: price periods of today and the live connector grid.
    phone.locator(".gun").first.wait_for()
    assert phone.get_by_text("今日电价（元/度）").count() == 1
    assert phone.locator(".gun").count() >= 3
    assert "已插枪" in phone.locator(".gun").first.inner_text()  # free first: a car is plugged in
    shot(phone, "03-station")
    assert not phone.problems, phone.problems


def test_driver_journey_in_the_browser(platform, phone):
    page = phone
    page.goto(app_url(platform))
    page.locator(".station").first.wait_for()

    # Log in (development login through the fake WeChat).
    page.get_by_text("我的", exact=True).last.click()
    page.get_by_text("点击登录").click()
    field(page, "测试用户名").fill("dora")
    shot(page, "04-login")
    page.get_by_text("登录", exact=True).last.click()
    page.get_by_text("退出登录").wait_for()

    # Top up ¥100 in the fake WeChat Pay.
    page.get_by_text("我的钱包").click()
    field(page, "其他金额").wait_for()
    page.wait_for_function("() => /\\d/.test(document.querySelector('.wallet-available').textContent)")
    balance_before_top_up = money(page.locator(".wallet-available").inner_text())
    field(page, "其他金额").fill("100")
    page.get_by_text("微信支付", exact=True).click()
    page.wait_for_function(
        "(b) => { const e = document.querySelector('.wallet-available');"
        " return e && parseFloat(e.textContent) > b; }",
        arg=float(balance_before_top_up), timeout=30_000,
    )
    balance = money(page.locator(".wallet-available").inner_text())
    assert balance == balance_before_top_up + Decimal("100.00")
    page.locator(".lrow", has_text="充值").first.wait_for()  # in the history too
    shot(page, "05-wallet")

    # The nearest free connector, one click from the station list.
    page.go_back()  # to 我的, which has the tab bar
    page.get_by_text("找桩", exact=True).last.click()
    page.get_by_text("一键找最近空闲枪").click()
    page.get_by_text("开始充电", exact=True).wait_for()
    page.get_by_text("已插枪").wait_for()
    shot(page, "06-connector")
    page.get_by_text("开始充电", exact=True).click()

    # Live progress over the WebSocket: the kWh rise while charging.
    page.get_by_text("正在充电").wait_for(timeout=30_000)
    kwh = page.locator(".kwh .num")
    page.wait_for_function(
        "() => parseFloat(document.querySelector('.kwh .num').textContent) > 0", timeout=30_000
    )
    first = Decimal(kwh.inner_text())
    page.wait_for_function(
        "(f) => parseFloat(document.querySelector('.kwh .num').textContent) > f",
        arg=float(first) + 0.3, timeout=30_000,
    )
    assert page.get_by_text("实时更新中").count() == 1
    shot(page, "07-charging")
    page.get_by_text("停止充电", exact=True).click()

    # The bill, with its time-of-use lines, once the pile's record is settled.
    page.locator(".bill-line").first.wait_for(timeout=60_000)
    page.get_by_text("充电已完成").wait_for()
    lines = page.locator(".bill-line").all_inner_texts()
    assert lines and all(re.search("[尖峰平谷]", line) for line in lines)
    total = money(page.locator(".line.total").inner_text())
    assert total > 0
    after = money(page.locator(".wallet-after").inner_text())
    assert after == balance - total
    shot(page, "08-bill")

    # The order is in the history.
    page.get_by_text("完成", exact=True).click()
    page.get_by_text("订单", exact=True).last.click()
    page.locator(".order").first.wait_for()
    assert "已完成" in page.locator(".order").first.inner_text()
    shot(page, "09-orders")
    assert not page.problems, page.problems


def login(page, platform, name: str) -> None:
    page.goto(app_url(platform) + "#/pages/login/login")
    field(page, "测试用户名").fill(name)
    page.get_by_text("登录", exact=True).last.click()
    page.get_by_text("登录成功").wait_for()


HAN = re.compile(r"[\u4e00-\u9fa5]")


def test_scan_errors_reservation_and_wallet_screens(platform, phone, django_db_blocker):
    page = phone
    login(page, platform, "erin")  # a new driver: nothing in the wallet

    # Scanning (H5: typing) a code that does not exist: the API's error code, in words.
    page.goto(app_url(platform) + "#/pages/scan/scan")
    field(page, "请输入充电枪编号").fill("99999999999999")
    page.get_by_text("确定", exact=True).click()
    page.get_by_text("未找到该充电枪，请核对编号").wait_for()
    shot(page, "10-unknown-code")

    # A real code, as a QR link (https://<host>/q/<code>), then start with no money.
    free = httpx.get(f"{platform.web.url}/api/app/v1/stations/recommend",
                     params={"lat": "23.1378", "lng": "113.3253"}, headers={"X-Tenant": "demo"}).json()
    connector_id = free["results"][-1]["connector"]["id"]
    from django_tenants.utils import schema_context

    from stations.models import Connector

    # The label's value (the API shows no codes): what a driver's camera would read.
    with django_db_blocker.unblock(), schema_context(platform.operator.schema_name):
        connector = Connector.objects.select_related("pile").get(pk=connector_id)
        code, number, pile_code = connector.code, connector.number, connector.pile.code
    page.goto(app_url(platform) + "#/pages/scan/scan")
    field(page, "请输入充电枪编号").fill(f"https://demo.example.com/q/{code}")
    page.get_by_text("确定", exact=True).click()
    page.get_by_text("开始充电", exact=True).wait_for()
    assert f"{number}号枪" in page.locator(".card").first.inner_text()
    assert pile_code not in page.locator(".card").first.inner_text()  # no pile code shown
    page.get_by_text("开始充电", exact=True).click()
    page.get_by_text("钱包余额不足以启动充电，请先充值。").wait_for()
    page.wait_for_timeout(1600)  # the login toast has gone
    shot(page, "11-no-balance")
    page.get_by_text("稍后", exact=True).click()

    # Reserve it, see it under 我的预约, cancel it.
    page.get_by_text("预约此枪", exact=True).click()
    page.get_by_text("预约成功").wait_for()
    page.get_by_text("确定", exact=True).last.click()
    page.goto(app_url(platform) + "#/pages/reservations/list")
    page.get_by_text("预约中").wait_for()
    assert f"{number}号枪" in page.locator(".card").first.inner_text()
    assert pile_code not in page.locator(".card").first.inner_text()  # no pile code shown
    shot(page, "12-reservation")
    page.get_by_text("取消预约", exact=True).click()
    page.get_by_text("当前没有预约").wait_for()

    # Wallet screens: refund preview and a withdrawal request answered in Chinese.
    page.goto(app_url(platform) + "#/pages/wallet/refund")
    page.get_by_text("可退金额").wait_for()
    assert "¥0.00" in page.locator(".card").first.inner_text()
    shot(page, "13-refund")
    page.goto(app_url(platform) + "#/pages/wallet/withdraw")
    field(page, "提现金额").fill("10")
    page.get_by_text("申请提现", exact=True).click()
    page.get_by_text("提现未成功").wait_for()
    message = page.locator(".uni-modal__bd").inner_text()
    assert HAN.search(message) and not re.search("[A-Za-z]{4,}", message), message
    shot(page, "14-withdraw-refused")
    assert not page.problems, page.problems
