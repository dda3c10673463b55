"""A station owner (站长) in Chromium: only their own stations anywhere — lists, filters,
totals, frames — no operator-only actions, and refusals as Chinese pages, not JSON."""

from __future__ import annotations

from evplatform.tests.estate import OWNER


def test_owner_sees_only_own_station_everywhere(open_page, site):
    estate = site.estate
    own, other = estate.owned_station, estate.other_station
    page = open_page()
    page.login(*OWNER)

    page.goto("/admin/charging/chargingorder/")
    page.assert_styled()
    page.assert_chinese()
    page.assert_fits()
    text = page.text()
    assert estate.order.number in text and estate.other_order.number not in text
    filters = page.text("#changelist-filter")
    assert own.name in filters and other.name not in filters  # the station filter too
    assert "1" in page.text("#list-totals")
    page.screenshot("orders")

    for path in ("/admin/stations/station/", "/admin/stations/pile/", "/admin/stations/connector/",
                 "/admin/protocols/framelog/"):
        page.goto(path)
        page.assert_chinese()
        page.assert_fits()
        assert other.name not in page.text() and estate.other_pile.code not in page.text(), path
        page.screenshot(path.strip("/").replace("/", "_"))
    assert estate.owned_pile.code in page.text("#result_list")  # their own pile's frames


def test_owner_gets_no_operator_actions_and_html_refusals(open_page, site):
    estate = site.estate
    page = open_page()
    page.login(*OWNER)
    page.goto(f"/admin/charging/chargingorder/{estate.order.pk}/change/")
    page.assert_chinese()
    assert page.page.get_by_role("link", name="部分退款").count() == 0
    assert page.page.locator("input[name=_save]").count() == 0

    page.goto(f"/admin/charging/chargingorder/{estate.order.pk}/refund/", expect_status=200)
    assert "/refund/" not in page.page.url  # sent back: no change permission on orders

    response = page.goto("/admin/tenants/refusedpilelogin/1/delete/", expect_status=403)
    assert response.headers["content-type"].startswith("text/html")
    assert "没有权限" in page.text("body")
    page.screenshot("refused")

    page.goto(f"/admin/stations/station/{estate.other_station.pk}/change/", expect_status=404)
    assert "页面不存在" in page.text("body") and estate.other_station.name not in page.text("body")
