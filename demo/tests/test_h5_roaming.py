"""Our drivers charging on an interconnection partner's pile (T/CEC roaming, issues #14
and #19) in the H5 app, in a real browser against the whole platform (see conftest.py) and
the fake CEC peer on real HTTP as the infrastructure partner: its station in the list
(互联站点) and on the map, its detail with connectors and prices, a start, the charge
followed from the partner's pushes, the stop, the partner's bill and the order among the
互联订单; and the refusals (the API's, the partner's, a partner that cannot be reached)
shown in Chinese. Screenshots: var/screenshots/h5-r*.png."""

from __future__ import annotations

import copy
import re
from decimal import Decimal

import pytest

from .test_h5_journey import app_url, browser, login, money, phone, shot  # noqa: F401

pytestmark = pytest.mark.django_db

# The partner's station, a few hundred metres from where the phone is (天河).
STATION_NAME = "互联伙伴·天河北站"
IDLE, BUSY = "MA1FAKE01P0000101", "MA1FAKE01P0000102"


def _in_demo(platform, fn):
    """Run ``fn`` in the demo operator's schema, committed (the web process must see it)."""
    from django_tenants.utils import schema_context

    from protocols.tests.helpers import committed

    def run():
        with schema_context(platform.operator.schema_name):
            return fn()

    return committed(run)


@pytest.fixture(scope="module")
def peer(platform, django_db_blocker):
    """The fake CEC peer as the demo operator's infrastructure partner: the demo partner
    (demo.interconnect) pointed at it, its station pulled into our search, and its pushes
    aimed at our platform on the demo operator's host."""
    from demo.interconnect import DEMO_CEC_OUR_ID, DEMO_CEC_PEER_ID, DEMO_CEC_SECRET
    from demo.seed import demo_host
    from evplatform.tests.helpers import free_port
    from fakes.cec_peer import DEMO_STATION, CecPeer
    from protocols.cec import remote
    from protocols.cec.models import Partner

    station = copy.deepcopy(DEMO_STATION)
    station.update({"StationID": "FAKETH01", "StationName": STATION_NAME, "Address": "广州市天河区天河北路",
                    "StationLat": 23.1421, "StationLng": 113.3290, "BusineHours": "全天开放",
                    "ElectricityFee": "000000:0.6500+0.5000;080000:0.9000+0.6000;220000:0.6500+0.5000"})
    server = CecPeer(("127.0.0.1", free_port()), operator_id=DEMO_CEC_PEER_ID, our_id=DEMO_CEC_OUR_ID,
                     secret=DEMO_CEC_SECRET).start_background()
    server.stations = [station]
    s = DEMO_CEC_SECRET
    server.push_target(url=f"{platform.web.url}/evcs/v1/", host=demo_host(), operator_secret=s,
                       data_secret=s, data_iv=s, sig_secret=s)

    def wire():
        Partner.objects.filter(operator_id=DEMO_CEC_PEER_ID).update(base_url=server.url)
        return remote.stations_pull(partner=Partner.objects.get(operator_id=DEMO_CEC_PEER_ID))

    with django_db_blocker.unblock():
        assert _in_demo(platform, wire) == 1
    yield server
    server.shutdown()


def _top_up(platform, name: str, amount: str) -> None:
    from accounts.models import Member
    from demo.seed import DEMO_APPID
    from fakes.wechat_api import demo_openid
    from settlement.services import wallet_top_up

    def run():
        member = Member.objects.get(openid=demo_openid(DEMO_APPID, name))
        wallet_top_up(member=member, amount=Decimal(amount), key=f"h5r:{name}:wallet", memo="test")

    _in_demo(platform, run)


def _order(platform, order_id: int):
    from charging.models import RoamingOrder

    return _in_demo(platform, lambda: RoamingOrder.objects.get(pk=order_id))


def _order_id(page) -> int:
    page.wait_for_url(re.compile(r"pages/partner/charging\?id=\d+"), timeout=15_000)
    return int(re.search(r"id=(\d+)", page.url).group(1))


def _connector_pk(platform, code: str) -> int:
    from stations.models import PartnerConnector

    return _in_demo(platform, lambda: PartnerConnector.objects.get(connector_id=code).pk)


def _track(page) -> None:
    """Count the page's requests in flight (leaving a screen cancels its requests, which
    the ``phone`` fixture would report as failures)."""
    page.inflight = set()
    page.on("request", lambda r: page.inflight.add(r))
    page.on("requestfinished", lambda r: page.inflight.discard(r))
    page.on("requestfailed", lambda r: page.inflight.discard(r))


def _settle(page) -> None:
    """Wait until the page's requests are answered (leaving cancels them)."""
    quiet = 0
    for _ in range(200):
        quiet = quiet + 1 if not page.inflight else 0
        if quiet >= 4:
            return
        page.wait_for_timeout(50)


def _go(page, url: str) -> None:
    """Open ``url`` in an app loaded afresh (in the H5 router, a page already open is
    shown again as it was, not loaded anew), once the current screen's requests are done."""
    _settle(page)
    page.goto(url)
    _settle(page)
    page.reload()


def _open_partner_station(page, platform) -> None:
    from stations.models import PartnerStation

    pk = _in_demo(platform, lambda: PartnerStation.objects.get(name=STATION_NAME).pk)
    _go(page, app_url(platform) + f"#/pages/partner/station?id={pk}")
    page.locator(".gun:visible").first.wait_for()


def test_roaming_charge_from_list_to_bill(platform, peer, phone, django_db_blocker):  # noqa: F811
    from protocols.tests.helpers import wait_for

    page = phone
    _track(page)
    login(page, platform, "rita")
    with django_db_blocker.unblock():
        _top_up(platform, "rita", "80.00")

    # The partner's station in the list, under 互联站点, with the partner's name.
    _go(page, app_url(platform))
    page.locator(".station").first.wait_for()
    page.get_by_text("互联站点", exact=True).click()
    card = page.locator(".partner-station").first
    card.wait_for()
    text = card.inner_text()
    assert STATION_NAME in text and "互联站点 · 演示互联平台" in text
    assert "空闲1/2" in text and re.search(r"\d+米", text)
    assert re.search(r"¥1\.5|¥1\.15", text)  # the price now, from the partner's price text
    assert page.locator(".partner-station").count() == 1  # only partners' stations here
    shot(page, "r1-partner-list")

    # Its pin on the map, marked 互联; the card under the map opens its detail.
    page.get_by_text("地图", exact=True).click()
    pin = page.locator(".pin.partner")
    pin.wait_for()
    assert page.locator(".pin").count() == 1 and "互联" in pin.inner_text()
    pin.click()
    chosen = page.locator(".card.station")
    chosen.wait_for()
    assert STATION_NAME in chosen.inner_text() and "互联站点 · 演示互联平台" in chosen.inner_text()
    shot(page, "r2-partner-map")
    chosen.click()

    # The detail: connectors as the partner reports them, its prices, the wallet.
    page.locator(".gun:visible").first.wait_for()
    guns = page.locator(".gun").all_inner_texts()
    assert len(guns) == 2 and "空闲" in guns[0] and "充电中" in guns[1]
    assert all("直流快充 60kW" in g for g in guns)
    rows = page.locator(".price-row").all_inner_texts()
    assert len(rows) == 3 and "08:00" in rows[1] and "0.90" in rows[1] and "1.50" in rows[1]
    page.wait_for_function("() => { const e = document.querySelector('.card.row .title');"
                           " return e && /\\d/.test(e.textContent); }")
    assert f"已选充电枪：{IDLE}" in page.locator(".tip").last.inner_text()
    shot(page, "r3-partner-station")
    balance = money(page.locator(".card.row .title").inner_text())
    assert balance >= Decimal("80.00")

    # Start: the platform asks the partner in the background, the screen follows the order.
    page.locator(".start-roaming:visible").click()
    order_id = _order_id(page)
    page.get_by_text("正在请合作运营商启动充电", exact=False).wait_for()
    with django_db_blocker.unblock():
        order = _order(platform, order_id)
        assert order.state in ("starting",) and order.hold_amount == balance
        wait_for(lambda: order.seq in peer.sessions, timeout=30)  # the worker asked the partner
        session = peer.session(order.seq)
        assert session["ConnectorID"] == IDLE
        ret, _msg, data = peer.push("notification_start_charge_result", {
            "StartChargeSeq": order.seq, "StartChargeSeqStat": 2, "ConnectorID": IDLE,
            "StartTime": session["StartTime"], "IdentCode": ""})
        assert (ret, data["SuccStat"]) == (0, 0)
    page.get_by_text("正在充电", exact=True).wait_for(timeout=15_000)

    # The partner's running figures, pushed while charging, on the screen.
    with django_db_blocker.unblock():
        ret, _msg, _data = peer.push("notification_equip_charge_status",
                                     peer.charge_status(order.seq, kwh=5, elec=4.5, service=3.0, soc=40))
        assert ret == 0
    page.wait_for_function("() => document.querySelector('.kwh .num').textContent === '5.000'", timeout=15_000)
    hero = page.locator(".hero").inner_text()
    assert "¥7.50" in hero and "40%" in hero
    assert "演示互联平台" in page.locator(".card").last.inner_text()
    shot(page, "r4-roaming-charging")

    # Stop: the partner is asked, confirms by its push; then its bill settles the order.
    page.get_by_text("停止充电", exact=True).click()
    with django_db_blocker.unblock():
        wait_for(lambda: peer.session(order.seq)["state"] == "stopping", timeout=30)
        ret, _msg, _data = peer.push("notification_stop_charge_result", {
            "StartChargeSeq": order.seq, "StartChargeSeqStat": 4, "ConnectorID": IDLE,
            "SuccStat": 0, "FailReason": 0})
        assert ret == 0
    page.get_by_text("充电结束，等待账单…").wait_for(timeout=15_000)
    shot(page, "r5-roaming-finished")
    with django_db_blocker.unblock():
        ret, _msg, data = peer.push("notification_charge_order_info",
                                    peer.order_info(order.seq, kwh=10, elec=9.0, service=6.0))
        assert (ret, data["ConfirmResult"]) == (0, 0)

    # The bill (the partner's figures), the wallet charged once.
    page.get_by_text("充电已完成").wait_for(timeout=15_000)
    bill = page.locator(".roaming-bill").inner_text()
    assert "¥9.00" in bill and "¥6.00" in bill and "¥15.00" in bill
    lines = page.locator(".roaming-bill .bill-line").all_inner_texts()  # the partner's one line
    assert len(lines) == 1 and "10.000" in lines[0] and "¥9.00" in lines[0] and "¥6.00" in lines[0]
    assert re.search(r"\d\d:\d\d–\d\d:\d\d", lines[0])
    page.wait_for_function("() => { const e = document.querySelector('.wallet-after');"
                           " return e && /\\d/.test(e.textContent); }")
    assert money(page.locator(".wallet-after").inner_text()) == balance - Decimal("15.00")
    shot(page, "r6-roaming-bill")

    # In the order history, under 互联订单, and its detail again.
    _go(page, app_url(platform) + "#/pages/orders/list")
    page.get_by_text("互联订单", exact=True).click()
    row = page.locator(".roaming-order").first
    row.wait_for()
    text = row.inner_text()
    assert STATION_NAME in text and "已完成" in text and "¥15.00" in text and "10.000 度" in text
    shot(page, "r7-roaming-orders")
    row.click()
    page.locator(".roaming-bill").wait_for()
    assert order.number in page.locator(".card:visible").nth(2).inner_text()
    assert page.locator(".head:visible").inner_text().startswith("已完成")  # the plain state now
    with django_db_blocker.unblock():
        settled = _order(platform, order_id)
    assert (settled.state, settled.paid_amount) == ("settled", Decimal("15.00"))
    assert not page.problems, page.problems


def test_roaming_refusals_are_shown_in_chinese(platform, peer, phone, django_db_blocker):  # noqa: F811
    from stations.models import PartnerConnector

    page = phone
    _track(page)
    login(page, platform, "sara")

    # No money: the API refuses; the driver is offered the wallet.
    _open_partner_station(page, platform)
    page.locator(".start-roaming:visible").click()
    page.get_by_text("钱包余额不足以启动充电，请先充值。").wait_for()
    page.locator(".uni-modal__btn_default", has_text="稍后").click()
    with django_db_blocker.unblock():
        _top_up(platform, "sara", "50.00")

    # The connector got taken meanwhile (the partner's status push): the API's
    # connector_unavailable, in words.
    _open_partner_station(page, platform)
    idle_pk = _connector_pk(platform, IDLE)
    with django_db_blocker.unblock():
        _in_demo(platform, lambda: PartnerConnector.objects.filter(pk=idle_pk).update(status="charging"))
    page.locator(".start-roaming:visible").click()
    page.get_by_text("该充电枪当前不可用（离线、故障或正在使用），请换一个").wait_for()
    shot(page, "r8-connector-unavailable")
    page.locator(".uni-modal__btn_primary").click()
    with django_db_blocker.unblock():
        _in_demo(platform, lambda: PartnerConnector.objects.filter(pk=idle_pk).update(status="idle"))

    # The partner refuses the start (FailReason 2, 此设备离线): failed, the hold released.
    peer.refuse_starts = 2
    try:
        _open_partner_station(page, platform)
        page.locator(".start-roaming:visible").click()
        order_id = _order_id(page)
        page.get_by_text("该充电桩已离线，冻结的余额已退回").wait_for(timeout=30_000)
        assert page.get_by_text("启动失败", exact=True).count() == 1
        assert page.get_by_text("停止充电").count() == 0
        shot(page, "r9-partner-refused")
    finally:
        peer.refuse_starts = 0
    with django_db_blocker.unblock():
        assert (_order(platform, order_id).state, _order(platform, order_id).fail_reason) == ("failed", 2)

    # The partner cannot be reached: failed too, the driver told so; nothing crashes.
    peer.inject_failure(path="/evcs/v1/query_start_charge", mode="reset", count=None)
    try:
        _open_partner_station(page, platform)
        page.locator(".start-roaming:visible").click()
        order_id = _order_id(page)
        page.get_by_text("暂时无法连接互联运营商，请稍后再试，冻结的余额已退回").wait_for(timeout=60_000)
        shot(page, "r10-partner-unreachable")
    finally:
        peer.failures.clear()
    with django_db_blocker.unblock():
        assert _order(platform, order_id).fail_reason == -1

    # Both failed orders among 互联订单, marked so; the wallet whole again.
    _go(page, app_url(platform) + "#/pages/orders/list")
    page.get_by_text("互联订单", exact=True).click()
    page.locator(".roaming-order").first.wait_for()
    assert page.locator(".roaming-order", has_text="启动失败").count() == 2
    _go(page, app_url(platform) + "#/pages/wallet/wallet")
    page.wait_for_function("() => { const e = document.querySelector('.wallet-available');"
                           " return e && /\\d/.test(e.textContent); }")
    assert money(page.locator(".wallet-available").inner_text()) == Decimal("50.00")
    assert not page.problems, page.problems
