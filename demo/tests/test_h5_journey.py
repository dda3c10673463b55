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
    # (A request the page's own navigation or reload cancels is ERR_ABORTED: not a problem.)
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED"
            and problems.append(f"request failed: {r.url} ({r.failure})"))
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


# --- The marketing, invoice and station-owner screens (the API's figures, as shown) --------


def driver_api(platform, name: str):
    """The driver API as member ``name`` (the same fake WeChat user the browser logs in as)."""
    from demo.journey import Journey

    journey = Journey(api_url=platform.web.url, pay_url=platform.pay.url, driver=name,
                      stop_at_kwh=Decimal("1.0"), timeout_s=90, say=lambda _: None)
    journey.login()
    return journey


def seed_marketing(platform, name: str) -> dict:
    """For member ``name``: ¥50 in the wallet, 500 points, a second claimable coupon, a mall item, a scratch card whose
    only prize is 30 points, and a fresh ¥20 point card (its number and PIN returned)."""
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import schema_context

    from accounts.models import Member
    from demo.seed import DEMO_APPID
    from fakes.wechat_api import demo_openid
    from marketing import cards, points
    from marketing.models import (
        CouponTemplate,
        MallItem,
        PointCardBatch,
        ScratchCampaign,
        ScratchCard,
        ScratchPrize,
    )
    from protocols.tests.helpers import committed
    from settlement.services import wallet_top_up

    def seed():
        with schema_context(platform.operator.schema_name):
            member = Member.objects.get(openid=demo_openid(DEMO_APPID, name))
            wallet_top_up(member=member, amount=Decimal("50.00"), key=f"h5:{name}:wallet", memo="test")
            points.points_post(member=member, points=500, kind="adjust", key=f"h5:{name}:points")
            CouponTemplate.objects.create(name="充电立减2元", kind="fixed", amount=Decimal("2.00"),
                                          claimable=True, per_member_limit=1, valid_days=30)
            item = MallItem.objects.create(name="5元充电金", kind="bonus", points=200, stock=10,
                                           bonus=Decimal("5.00"))
            now = timezone.now()
            campaign = ScratchCampaign.objects.create(
                name="周末刮刮乐", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                budget=Decimal("100.00"),
            )
            ScratchPrize.objects.create(campaign=campaign, name="30积分", kind="points", points=30,
                                        weight=10000, stock=10)
            ScratchCard.objects.create(campaign=campaign, member=member, source_ref=f"h5:{name}")
            batch = PointCardBatch.objects.create(name="充值点卡", face_value=Decimal("20.00"), count=1)
            (number, pin), = cards.batch_generate(batch_id=batch.pk)
            cards.batch_set_status(batch_id=batch.pk, status=PointCardBatch.Status.ACTIVE)
            return {"item": item.pk, "card": (number, pin)}

    return committed(seed)


def confirm(page, text: str) -> None:
    """Press the confirming button of uni-app's modal."""
    page.locator(".uni-modal__btn_primary", has_text=text).click()


def test_coupon_svip_points_mall_scratch_and_card_screens(platform, phone):
    page = phone
    api = driver_api(platform, "frank")
    seeded = seed_marketing(platform, "frank")
    login(page, platform, "frank")

    # 我的: every entry, the points balance as the API gives it; no owner center for a driver.
    page.goto(app_url(platform) + "#/pages/mine/mine")
    page.get_by_text("积分商城", exact=True).wait_for()
    balance = api._call("GET", "/points")["balance"]
    page.wait_for_function("(b) => document.querySelector('.mine-points').textContent.includes(b)",
                           arg=str(balance), timeout=30_000)
    for entry in ("优惠券", "SVIP 会员", "我的积分", "刮刮卡", "点卡充值", "发票"):
        assert page.get_by_text(entry, exact=True).count() == 1, entry
    assert page.get_by_text("站长中心").count() == 0
    shot(page, "20-mine")

    # Coupons: claim the operator's coupon, then it is among mine, as the API lists them.
    page.get_by_text("优惠券", exact=True).click()
    page.get_by_text("暂无优惠券").wait_for()
    page.get_by_text("领券中心", exact=True).click()
    claimable = api._call("GET", "/coupons/claimable")
    template = next(t for t in claimable if t["name"] == "新人立减1元")
    card = page.locator(".coupon.claimable", has_text=template["name"])
    card.wait_for()
    assert f"¥{template['amount']}" in card.inner_text() and "无门槛" in card.inner_text()
    shot(page, "21-claim")
    for name in ("新人立减1元", "充电立减2元"):
        page.locator(".coupon.claimable", has_text=name).get_by_text("领取", exact=True).click()
        page.locator(".coupon.claimable", has_text=name).wait_for(state="detached")
    page.get_by_text("可使用", exact=True).click()
    page.locator(".coupon.mine").nth(1).wait_for()
    mine = api._call("GET", "/coupons", params={"status": "usable"})["results"]
    assert sorted(c["template"]["name"] for c in mine) == ["充电立减2元", "新人立减1元"]
    assert page.locator(".coupon.mine").count() == len(mine)
    assert mine[0]["status_label"] in page.locator(".coupon.mine").first.inner_text()
    shot(page, "22-coupons")

    # The connector page tells how many of them apply there; the list is the API's.
    free = httpx.get(f"{platform.web.url}/api/app/v1/stations/recommend",
                     params={"lat": "23.1378", "lng": "113.3253"}, headers={"X-Tenant": "demo"}).json()
    connector_id = free["results"][0]["connector"]["id"]
    applicable = api._call("GET", "/coupons/applicable", params={"connector_id": connector_id})
    page.goto(app_url(platform) + f"#/pages/connector/connector?id={connector_id}")
    page.get_by_text(f"{len(applicable)}张可用 ›").click()
    page.locator(".coupon.applicable").first.wait_for()
    assert page.locator(".coupon.applicable").count() == len(applicable)
    shot(page, "23-applicable")

    # SVIP: the plan at the API's price, bought from the wallet, then refunded to it.
    overview = api._call("GET", "/svip")
    plan = next(p for p in overview["plans"] if p["name"] == "SVIP 月卡")
    wallet_before = api.wallet()["available"]
    page.goto(app_url(platform) + "#/pages/svip/svip")
    row = page.locator(".plan", has_text=plan["name"])
    row.wait_for()
    assert f"¥{plan['price']}" in row.inner_text()
    assert f"¥{wallet_before}" in page.locator(".wallet-line").inner_text()
    shot(page, "24-svip")
    row.get_by_text("钱包开通", exact=True).click()
    confirm(page, "确认支付")
    page.get_by_text("有效期至").wait_for()
    status = api._call("GET", "/svip")
    assert status["active"] and status["plan"] == plan["name"]
    assert f"{status['service_discount_percent']}%" in page.locator(".svip-status").inner_text()
    paid_wallet = api.wallet()["available"]
    assert Decimal(paid_wallet) == Decimal(wallet_before) - Decimal(plan["price"])
    page.wait_for_function("(w) => document.querySelector('.wallet-line').textContent.includes(w)",
                           arg=f"¥{paid_wallet}", timeout=30_000)
    shot(page, "25-svip-active")
    page.locator(".purchase").first.get_by_text("退订", exact=True).click()
    confirm(page, "确认退订")
    page.locator(".purchase", has_text="已退订").wait_for()
    assert api._call("GET", "/svip/purchases")[0]["status"] == "refunded"
    assert api.wallet()["available"] == wallet_before
    page.get_by_text("您还不是 SVIP 会员").wait_for()

    # Points: balance and entries as the API has them; the mall spends them.
    page.goto(app_url(platform) + "#/pages/points/points")
    page.locator(".entry").first.wait_for()
    assert page.locator(".points-balance").inner_text() == str(balance) == "500"
    entries = api._call("GET", "/points/entries")["results"]
    assert page.locator(".entry").count() == len(entries)
    shot(page, "26-points")
    page.get_by_text("去积分商城兑换").click()
    item = page.locator(".item", has_text="5元充电金")
    item.wait_for()
    assert "200 积分" in item.inner_text() and "¥5.00" in item.inner_text()
    item.get_by_text("立即兑换", exact=True).click()
    confirm(page, "确定")
    page.locator(".redemption").first.wait_for()
    after = api._call("GET", "/points")["balance"]
    assert after == balance - 200
    page.wait_for_function("(b) => document.querySelector('.mall-balance').textContent.trim() === b",
                           arg=str(after), timeout=30_000)
    redemption = api._call("GET", "/points/mall/redemptions")["results"][0]
    assert redemption["item"] in page.locator(".redemption").first.inner_text()
    assert "已发放" in page.locator(".redemption").first.inner_text()
    shot(page, "27-mall")

    # Scratch card: drawn on the server; the screen shows the API's prize.
    page.goto(app_url(platform) + "#/pages/scratch/scratch")
    page.get_by_text("点击刮开").click()
    page.locator(".result").wait_for()
    drawn = api._call("GET", "/scratch-cards")[0]
    assert drawn["scratched"] and drawn["prize"] == "30积分"
    assert page.locator(".result").inner_text().startswith(f"恭喜获得：{drawn['prize']}")
    shot(page, "28-scratch")

    # Point card: credited to the wallet; used again, the refusal in words.
    number, pin = seeded["card"]
    wallet_before = Decimal(api.wallet()["available"])
    page.goto(app_url(platform) + "#/pages/cards/redeem")
    field(page, "点卡卡号").fill(number)
    field(page, "点卡密码").fill(pin)
    with page.expect_response(lambda r: "/point-cards/redeem" in r.url) as answer:
        page.get_by_text("立即充值", exact=True).click()
    body = answer.value.json()
    page.get_by_text("充值成功").wait_for()
    assert page.locator(".card-amount").inner_text() == f"¥{body['amount']}" == "¥20.00"
    assert Decimal(api.wallet()["available"]) == wallet_before + Decimal(body["amount"])
    shot(page, "29-card")
    field(page, "点卡卡号").fill(number)
    field(page, "点卡密码").fill(pin)
    page.get_by_text("立即充值", exact=True).click()
    page.get_by_text("该点卡已被使用").wait_for()
    confirm(page, "确定")

    # A coupon picked on the connector page goes with the start; while charging, another.
    page.goto(app_url(platform) + f"#/pages/connector/connector?id={connector_id}")
    page.get_by_text(f"{len(applicable)}张可用 ›").click()
    page.locator(".coupon.applicable", has_text="新人立减1元").click()
    page.get_by_text("已选：新人立减1元 ›").wait_for()
    page.get_by_text("开始充电", exact=True).click()
    page.get_by_text("选择本单优惠券 ›").click()
    number = api._call("GET", "/orders/current")["number"]

    def coupons_by_name():
        return {c["template"]["name"]: c for c in api._call("GET", "/coupons", params={"status": "usable"})["results"]}

    assert coupons_by_name()["新人立减1元"]["order_ref"] == number
    page.locator(".coupon.applicable.chosen", has_text="新人立减1元").get_by_text("本单已选").wait_for()
    page.locator(".coupon.applicable", has_text="充电立减2元").click()
    page.locator(".coupon.applicable.chosen", has_text="充电立减2元").get_by_text("本单已选").wait_for()
    now = coupons_by_name()
    assert now["充电立减2元"]["order_ref"] == number and now["充电立减2元"]["status"] == "locked"
    assert now["新人立减1元"]["order_ref"] == "" and now["新人立减1元"]["status"] == "available"
    shot(page, "29b-coupon-chosen")
    page.go_back()
    page.get_by_text("停止充电", exact=True).click()
    page.get_by_text("充电已完成").wait_for(timeout=60_000)
    latest = api._call("GET", "/orders", params={"page_size": 1})["results"][0]
    bill = api._call("GET", f"/orders/{latest['id']}")
    assert bill["number"] == number
    lines = [d for d in bill["discount_lines"] if d["kind"] == "coupon"]
    assert [d["name"] for d in lines] == ["充电立减2元"]
    shown = page.locator(".discount-line", has_text="充电立减2元").inner_text()
    assert f"-¥{lines[0]['amount']}" in shown
    assert page.locator(".discount-total").inner_text() == f"-¥{bill['discount_amount']}"
    shot(page, "29c-bill-coupon")
    assert not page.problems, page.problems


@pytest.fixture
def fapiao_server(platform):
    from django_tenants.utils import schema_context

    from demo.invoicing import DEMO_FAPIAO_APP, DEMO_SELLER_TAX, demo_invoicing_configure
    from evplatform.tests.helpers import free_port
    from fakes import fapiao
    from protocols.tests.helpers import committed

    server = fapiao.start_in_thread(port=free_port(), issue_seconds=0.3)
    server.register_app(*DEMO_FAPIAO_APP, DEMO_SELLER_TAX)

    def configure():
        with schema_context(platform.operator.schema_name):
            demo_invoicing_configure(fapiao_url=server.url, callback_base_url=platform.web.url)

    committed(configure)
    yield server
    server.shutdown()


def test_invoice_screens(platform, phone, fapiao_server):
    page = phone
    api = driver_api(platform, "gina")
    # A settled charge paid from the wallet (on a thread: Playwright's loop runs on this one).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        order = pool.submit(api.run).result(timeout=240)["order"]
    login(page, platform, "gina")
    page.goto(app_url(platform) + "#/pages/mine/mine")
    page.get_by_text("发票", exact=True).click()
    page.get_by_text("暂无发票").wait_for()
    page.get_by_text("申请开票", exact=True).click()

    invoiceable = {o["number"]: o for o in api._call("GET", "/invoices/orders")}
    row = page.locator(".inv-order", has_text=order["number"])
    row.wait_for()
    assert f"¥{invoiceable[order['number']]['net']}" in row.inner_text()
    row.click()
    assert page.locator(".inv-total").inner_text() == f"¥{invoiceable[order['number']]['net']}"
    # A company title with a tax number failing its check digit: refused, in words.
    page.get_by_text("企业", exact=True).click()
    field(page, "企业名称").fill("广州某某科技有限公司")
    field(page, "纳税人识别号").fill("91440101MA59ABCDE1")
    field(page, "接收邮箱").fill("gina@example.com")
    page.get_by_text("提交申请", exact=True).click()
    page.get_by_text("开票申请未成功").wait_for()
    assert page.locator(".uni-modal__bd").inner_text() == "税号不正确，请核对"
    confirm(page, "确定")
    page.get_by_text("个人", exact=True).click()
    field(page, "个人姓名").fill("葛娜")
    field(page, "接收邮箱").fill("gina@example.com")
    shot(page, "30-invoice-request")
    page.get_by_text("提交申请", exact=True).click()
    page.get_by_text("申请单号").wait_for()

    def issued():
        body = api._call("GET", "/invoices")["results"]
        return body[0] if body and body[0]["status"] == "issued" else None

    from protocols.tests.helpers import wait_for

    invoice = wait_for(issued, timeout=60, interval=0.5)
    assert invoice["order_numbers"] == [order["number"]] and invoice["total"] == invoiceable[order["number"]]["net"]
    page.reload()
    page.get_by_text("已开具").wait_for()
    shown = page.locator(".invoice").first.inner_text()
    assert f"¥{invoice['total']}" in shown and invoice["invoice_no"] in shown and f"¥{invoice['tax']}" in shown
    assert "葛娜" in shown
    shot(page, "31-invoices")
    with page.context.expect_page() as opened:
        page.get_by_text("查看 PDF", exact=True).click()
    pdf = opened.value
    assert pdf.url.startswith("blob:")
    pdf.close()
    # The title was saved for next time.
    assert [t["name"] for t in api._call("GET", "/invoices/titles")] == ["葛娜"]
    assert not page.problems, page.problems


def test_station_owner_center(platform, phone):
    page = phone
    api = driver_api(platform, "zhanzhang")  # the demo station owner's member
    login(page, platform, "zhanzhang")
    page.goto(app_url(platform) + "#/pages/mine/mine")
    page.get_by_text("站长中心", exact=True).click()
    page.locator(".owner-available").wait_for()
    overview = api._call("GET", "/owner/overview")
    assert page.locator(".owner-available").inner_text() == f"¥{overview['available']}"
    assert page.locator(".owner-payable").inner_text() == f"¥{overview['payable']}"
    for when in ("today", "month"):
        text = page.locator(f".owner-{when}").inner_text()
        figures = overview[when]
        assert f"{figures['orders']}笔" in text and f"{figures['energy_kwh']}度" in text
        assert f"¥{figures['earnings']}" in text
    shot(page, "40-owner")

    page.get_by_text("电站", exact=True).click()
    page.locator(".owner-station").first.wait_for()
    stations = api._call("GET", "/owner/stations")
    assert [s.split("\n")[0] for s in page.locator(".owner-station .title").all_inner_texts()] == \
        [s["name"] for s in stations]
    assert page.locator(".gun-cell").count() == sum(len(s["connectors"]) for s in stations)
    shot(page, "41-owner-stations")

    page.get_by_text("订单", exact=True).first.click()
    orders = api._call("GET", "/owner/orders")["results"]
    if orders:
        page.locator(".owner-order").first.wait_for()
        assert page.locator(".owner-order").count() == len(orders)
        assert f"¥{orders[0]['my_share']}" in page.locator(".owner-order").first.inner_text()
    else:
        page.get_by_text("暂无订单").wait_for()

    page.get_by_text("结算单", exact=True).click()
    statements = api._call("GET", "/owner/statements")["results"]
    if statements:
        page.locator(".owner-statement").first.wait_for()
        assert page.locator(".statement-net").first.inner_text() == f"¥{statements[0]['net']}"
    else:
        page.get_by_text("暂无结算单").wait_for()

    # A withdrawal beyond what is available: refused, in words.
    page.get_by_text("提现", exact=True).click()
    page.get_by_text("提现记录").wait_for()
    too_much = Decimal(overview["available"]) + Decimal("1000.00")
    field(page, "提现金额").fill(str(too_much))
    page.get_by_text("申请提现", exact=True).click()
    page.get_by_text("提现未成功").wait_for()
    message = page.locator(".uni-modal__bd").inner_text()
    assert message == f"当前最多可提现 {overview['available']} 元。", message
    shot(page, "42-owner-withdraw")
    assert page.locator(".owner-withdrawal").count() == len(api._call("GET", "/owner/withdrawals")["results"])
    assert not page.problems, page.problems


# --- Feedback and the customer-service chat ---------------------------------------------


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 48), (30, 120, 200)).save(path, "PNG")
    return path


def _chat_staff(platform) -> str:
    """An operator admin of the demo operator, named 小美, signed in: the session key."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_tenants.utils import schema_context

    from protocols.tests.helpers import committed

    def make():
        with schema_context(platform.operator.schema_name):
            user = get_user_model().objects.filter(username="kefu-h5").first() or \
                get_user_model().objects.create_superuser("kefu-h5", password="x-pass-123", first_name="小美")
            client = Client()
            client.force_login(user)
            return user.pk, client.cookies[settings.SESSION_COOKIE_NAME].value
    return committed(make)


def _staff_socket(platform, session: str):
    import socket

    from websockets.sync.client import connect

    from demo.seed import demo_host

    sock = socket.create_connection(("127.0.0.1", platform.web.port))
    return connect(f"ws://{demo_host()}:{platform.web.port}/ws/admin/chat/", sock=sock,
                   additional_headers={"Cookie": f"sessionid={session}"})


def _frame(socket, kind: str, timeout: float = 15) -> dict:
    import json
    import time

    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == kind:
            return frame


def test_feedback_and_chat_screens(platform, phone, settings, tmp_path):
    import json

    from django_tenants.utils import schema_context

    from operations import feedback
    from protocols.tests.helpers import committed

    settings.MEDIA_ROOT = tmp_path / "media"
    page = phone
    login(page, platform, "grace")
    staff_id, session = _chat_staff(platform)

    # 我的 → 意见反馈: nothing yet; submit a billing complaint with a photo.
    page.goto(app_url(platform) + "#/pages/mine/mine")
    page.get_by_text("意见反馈", exact=True).click()
    page.get_by_text("您还没有提交过反馈").wait_for()
    shot(page, "50-feedback-empty")
    page.locator(".new-feedback").click()
    page.get_by_text("费用与支付", exact=True).click()
    page.locator("uni-textarea textarea").first.fill("充电结束后多扣了 3 元，请核实")
    with page.expect_file_chooser() as chooser:
        page.locator(".add-photo").click()
    chooser.value.set_files(str(_png(tmp_path / "receipt.png")))
    page.locator(".photo .thumb").first.wait_for()
    assert page.locator(".photo .thumb").count() == 1
    shot(page, "51-feedback-submit")
    page.locator(".submit-feedback").click()
    page.get_by_text("已收到您的反馈，客服会尽快回复").wait_for()
    assert page.locator(".status").first.inner_text() == "待处理"
    assert "费用与支付" in page.locator(".card").first.inner_text()
    shot(page, "52-feedback-detail")

    def stored():
        from operations.models import Feedback

        with schema_context(platform.operator.schema_name):
            item = Feedback.objects.filter(text__startswith="充电结束后多扣了").latest("pk")
            return item.pk, item.category, item.photos
    feedback_id, category, photos = stored()
    assert category == "billing" and len(photos) == 1
    served = httpx.get(photos[0].replace(f"http://{photos[0].split('/')[2]}", platform.web.url))
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"

    # Staff answer in the admin (the reply page's service): the driver reads it.
    def answer():
        from django.contrib.auth import get_user_model

        with schema_context(platform.operator.schema_name):
            feedback.feedback_reply(feedback_id=feedback_id, staff=get_user_model().objects.get(pk=staff_id),
                                    text="已核实，3 元已退回您的钱包")
    committed(answer)
    page.reload()
    page.get_by_text("已核实，3 元已退回您的钱包").wait_for()
    assert page.locator(".status").first.inner_text() == "已回复"
    assert "客服回复" in page.locator(".reply.staff").inner_text()
    shot(page, "53-feedback-replied")

    # The chat, live over the WebSocket, with a staff member on the other end.
    page.get_by_text("联系在线客服", exact=True).click()
    page.get_by_text("您好，请问有什么可以帮您？").wait_for()
    with _staff_socket(platform, session) as staff:
        _frame(staff, "hello")
        field(page, "请输入消息").fill("请问发票怎么开？")
        page.locator(".send").click()
        arrived = _frame(staff, "message")
        assert arrived["message"]["text"] == "请问发票怎么开？"
        conversation = arrived["conversation"]["id"]
        staff.send(json.dumps({"type": "read", "conversation": conversation, "upto": arrived["message"]["id"]}))
        page.locator(".msg.mine .read").wait_for()
        staff.send(json.dumps({"type": "typing", "conversation": conversation}))
        page.get_by_text("客服 小美 正在输入…").wait_for()
        shot(page, "54-chat-typing")
        staff.send(json.dumps({"type": "message", "conversation": conversation,
                               "text": "在「我的 → 发票」里选择订单申请即可"}))
        page.get_by_text("在「我的 → 发票」里选择订单申请即可").wait_for()
        page.get_by_text("客服 小美 为您服务").wait_for()
        read = _frame(staff, "read")
        while read["side"] != "member":  # (staff's own read marker comes back too)
            read = _frame(staff, "read")
        assert read["upto"] > arrived["message"]["id"]  # the open chat read the reply
        shot(page, "55-chat")

        # Away from the chat: a new staff message is counted as unread on 我的.
        page.goto(app_url(platform) + "#/pages/mine/mine")
        page.get_by_text("在线客服", exact=True).wait_for()
        staff.send(json.dumps({"type": "message", "conversation": conversation, "text": "还有其他问题吗？"}))
        _frame(staff, "message")
        page.reload()
        page.locator(".unread-badge").wait_for()
        assert page.locator(".unread-badge").inner_text() == "1"
        shot(page, "56-mine-unread")
        page.get_by_text("在线客服", exact=True).click()
        page.get_by_text("还有其他问题吗？").wait_for()
    assert not page.problems, page.problems
