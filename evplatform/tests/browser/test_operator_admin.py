"""The operator admin (平台管理员) in Chromium: styled, Chinese, fitting 1440 px."""

from __future__ import annotations

from evplatform.tests.browser.conftest import PLATFORM_HOST
from evplatform.tests.estate import ADMIN

MAIN_LISTS = [
    "/admin/charging/chargingorder/",
    "/admin/stations/station/",
    "/admin/stations/pile/",
    "/admin/stations/connector/",
    "/admin/accounts/member/",
    "/admin/protocols/framelog/",
    "/admin/billing/payment/",
    "/admin/settlement/posting/",
]


def test_login_page_is_styled_and_chinese(open_page):
    page = open_page()
    page.goto("/admin/login/")
    page.assert_styled()
    page.assert_chinese()
    assert "用户名" in page.text("body")
    page.screenshot("login")


def test_main_lists_are_styled_chinese_and_fit(open_page):
    page = open_page()
    page.login(*ADMIN)
    page.goto("/admin/")
    page.assert_styled()
    page.assert_chinese()
    page.screenshot("index")
    for path in MAIN_LISTS:
        page.goto(path)
        page.assert_styled()
        page.assert_chinese()
        page.assert_fits()
        if path in ("/admin/charging/chargingorder/", "/admin/billing/payment/"):
            assert page.page.locator("#list-totals").count() == 1, path  # totals row
        page.screenshot(path.strip("/").replace("/", "_"))


def test_api_docs_render_from_local_assets(open_page):
    page = open_page(PLATFORM_HOST)
    outside = []
    page.page.on("request", lambda r: outside.append(r.url) if PLATFORM_HOST not in r.url else None)
    page.goto("/api/docs/")
    page.page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    assert not outside and not page.failed, (outside, page.failed)
    assert page.page.locator(".opblock").count() > 10
    page.screenshot("api-docs")


def test_order_page_reads_as_a_bill_and_cannot_be_edited(open_page, site):
    order = site.estate.order
    page = open_page()
    page.login(*ADMIN)
    page.goto(f"/admin/charging/chargingorder/{order.pk}/change/")
    page.assert_styled()
    page.assert_chinese()
    page.assert_fits()
    bill = page.page.locator("table.readable").first
    assert "峰" in bill.inner_text() or "平" in bill.inner_text() or "谷" in bill.inner_text()
    assert f"¥{order.total_amount:.2f}" in page.text()
    assert page.page.locator("input[name=_save], input[name=_continue]").count() == 0
    assert "已结算" in page.text("#chargingorder_form")  # transitions in words
    assert page.page.get_by_role("link", name="部分退款").count() == 1  # the operator's action
    page.screenshot("order")


def test_station_member_pile_and_frames_pages(open_page, site):
    estate = site.estate
    page = open_page()
    page.login(*ADMIN)
    page.goto(f"/admin/stations/station/{estate.owned_station.pk}/change/")
    page.assert_chinese()
    page.assert_fits()
    assert estate.owned_pile.code in page.text(".inline-group")  # piles inline
    assert "1号枪" in page.text(".inline-group")
    page.screenshot("station")

    page.goto(f"/admin/accounts/member/{estate.member.pk}/change/")
    page.assert_chinese()
    assert "可用" in page.text() and estate.order.number in page.text()
    page.screenshot("member")

    page.goto(f"/admin/stations/pile/{estate.owned_pile.pk}/change/")
    page.page.get_by_role("link", name="该桩的报文").click()
    page.page.wait_for_selector("#result_list")
    assert f"pile_code={estate.owned_pile.code}" in page.page.url
    assert estate.other_pile.code not in page.text("#result_list")
    assert "充电桩登录认证" in page.text("#result_list")
    page.assert_chinese()
    page.screenshot("frames")
    page.page.locator("#result_list tbody tr th a").last.click()
    page.page.wait_for_selector("table.decoded")
    assert "pile_code" in page.text("table.decoded")
    page.assert_chinese()
    page.screenshot("frame")


def test_qr_page_for_drivers(open_page, site):
    qr_code = f"{site.estate.owned_pile.code}01"  # as estate_build labels connector 1
    page = open_page()
    page.goto(f"/q/{qr_code}")
    page.assert_chinese()
    assert page.page.locator(".state").inner_text() in ("已插枪", "空闲", "充电中")
    page.screenshot("qr")
    page.goto("/q/no-such-code", expect_status=404)
    assert "未找到充电枪" in page.text("body")
    page.screenshot("qr-404")
