"""The driver screens of the APIs that landed after the first mini-program (issue #19), in
the H5 app in a real browser on a 390×844 screen against the whole platform (see
conftest.py): SVIP bought with (the fake) WeChat Pay, a coupon on sale bought for cash,
the invite code and entering a friend's code, and the departure time on the live
charging screen. Screenshots: var/screenshots/h5-m*.png."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from .test_h5_journey import app_url, browser, confirm, driver_api, field, login, phone, shot  # noqa: F401

pytestmark = pytest.mark.django_db


def _in_demo(platform, fn):
    """Run ``fn`` in the demo operator's schema, committed (the web process must see it)."""
    from django_tenants.utils import schema_context

    from protocols.tests.helpers import committed

    def run():
        with schema_context(platform.operator.schema_name):
            return fn()

    return committed(run)


def _top_up(platform, name: str, amount: str) -> None:
    from accounts.models import Member
    from demo.seed import DEMO_APPID
    from fakes.wechat_api import demo_openid
    from settlement.services import wallet_top_up

    def run():
        member = Member.objects.get(openid=demo_openid(DEMO_APPID, name))
        wallet_top_up(member=member, amount=Decimal(amount), key=f"h5m:{name}:wallet", memo="test")

    _in_demo(platform, run)


def test_svip_bought_with_wechat_pay(platform, phone):  # noqa: F811
    page = phone
    api = driver_api(platform, "gina")  # nothing in the wallet: WeChat Pay is the way
    login(page, platform, "gina")
    plan = next(p for p in api._call("GET", "/svip")["plans"] if p["name"] == "SVIP 月卡")
    page.goto(app_url(platform) + "#/pages/svip/svip")
    row = page.locator(".plan", has_text=plan["name"])
    row.wait_for()
    assert row.get_by_text("微信支付开通", exact=True).count() == 1
    assert row.get_by_text("钱包开通", exact=True).count() == 1
    shot(page, "m1-svip-choices")
    row.get_by_text("微信支付开通", exact=True).click()
    assert f"微信支付 ¥{plan['price']}" in page.locator(".uni-modal").inner_text()
    confirm(page, "去支付")
    page.get_by_text("有效期至").wait_for(timeout=30_000)
    status = api._call("GET", "/svip")
    assert status["active"] and status["plan"] == plan["name"]
    bought = api._call("GET", "/svip/purchases")[0]
    assert bought["status"] == "paid" and bought["paid_with"] == "wechat"
    assert Decimal(bought["amount"]) == Decimal(plan["price"])
    assert Decimal(api.wallet()["available"]) == 0  # the wallet was not touched
    page.locator(".purchase", has_text="已支付 · 微信").wait_for()
    page.get_by_text("续费", exact=False).first.wait_for()
    page.wait_for_timeout(1600)  # the toast has gone
    shot(page, "m2-svip-wechat-paid")
    assert not page.problems, page.problems


def test_coupon_on_sale_bought_for_cash(platform, phone):  # noqa: F811
    from marketing.models import CouponTemplate

    page = phone
    api = driver_api(platform, "hana")
    _in_demo(platform, lambda: CouponTemplate.objects.create(
        name="快充立减10元", kind="fixed", amount=Decimal("10.00"), claimable=True, per_member_limit=1,
        valid_days=30, price=Decimal("3.00")))
    login(page, platform, "hana")
    page.goto(app_url(platform) + "#/pages/coupons/list")
    page.get_by_text("领券中心", exact=True).click()
    card = page.locator(".coupon.claimable", has_text="快充立减10元")
    card.wait_for()
    assert card.get_by_text("¥3.00 购买", exact=True).count() == 1
    # A free coupon keeps its 领取 button.
    assert page.locator(".coupon.claimable", has_text="新人立减1元").get_by_text("领取", exact=True).count() == 1
    shot(page, "m3-coupon-on-sale")
    card.get_by_text("¥3.00 购买", exact=True).click()
    confirm(page, "去支付")
    card.wait_for(state="detached", timeout=30_000)  # bought up to the member's limit
    mine = api._call("GET", "/coupons", params={"status": "usable"})["results"]
    assert [c["template"]["name"] for c in mine] == ["快充立减10元"]
    page.get_by_text("可使用", exact=True).click()
    page.locator(".coupon.mine", has_text="快充立减10元").wait_for()
    shot(page, "m4-coupon-bought")
    assert not page.problems, page.problems


def test_invite_code_and_entering_a_friends_code(platform, phone):  # noqa: F811
    from marketing.models import ReferralProgram

    page = phone
    inviter = driver_api(platform, "ivan")
    code = inviter._call("GET", "/referral")["code"]
    driver_api(platform, "jane")
    login(page, platform, "jane")
    page.goto(app_url(platform) + "#/pages/mine/mine")
    page.get_by_text("邀请好友", exact=True).click()
    page.locator(".invite-code").wait_for()
    mine = page.locator(".invite-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{8}", mine) and mine != code
    assert page.get_by_text("邀请活动暂未开启").count() >= 1
    # The program is off: the refusal in words.
    field(page, "请输入好友的邀请码").fill(code)
    page.get_by_text("确认", exact=True).click()
    page.locator(".uni-modal", has_text="邀请活动暂未开启").wait_for()
    confirm(page, "确定")
    page.locator(".uni-modal").wait_for(state="hidden")

    _in_demo(platform, lambda: ReferralProgram.objects.create(active=True, inviter_points=50))
    page.reload()
    page.locator(".invite-code").wait_for()
    field(page, "请输入好友的邀请码").fill(mine)  # one's own code
    page.get_by_text("确认", exact=True).click()
    page.locator(".uni-modal", has_text="不能填写自己的邀请码").wait_for()
    confirm(page, "确定")
    page.locator(".uni-modal").wait_for(state="hidden")
    field(page, "请输入好友的邀请码").fill("ZZZZ9999")
    page.get_by_text("确认", exact=True).click()
    page.locator(".uni-modal", has_text="邀请码不存在").wait_for()
    confirm(page, "确定")
    page.locator(".uni-modal").wait_for(state="hidden")
    shot(page, "m5-referral")
    field(page, "请输入好友的邀请码").fill(code)
    page.wait_for_timeout(300)
    with page.expect_response(lambda r: r.url.endswith("/referral/bind")) as bound:
        page.get_by_text("确认", exact=True).click()
    assert bound.value.status == 201, bound.value.text()
    page.locator(".bound").wait_for()
    assert "您已接受" in page.locator(".bound").inner_text()
    assert inviter._call("GET", "/referral")["invited"] == 1
    assert "50 积分" in page.locator(".card").nth(1).inner_text()
    page.wait_for_timeout(1600)
    shot(page, "m6-referral-bound")
    assert not page.problems, page.problems


def test_departure_time_on_the_charging_screen(platform, phone):  # noqa: F811
    page = phone
    api = driver_api(platform, "kate")
    _top_up(platform, "kate", "100.00")
    order = api.start(api.pick_connector())
    login(page, platform, "kate")
    page.goto(app_url(platform) + f"#/pages/charging/charging?id={order['id']}")
    page.get_by_text("设置离开时间 ›").wait_for(timeout=30_000)
    page.get_by_text("设置离开时间 ›").click()
    page.locator(".uni-picker-action-confirm").click()  # the default: an hour from now
    page.get_by_text("已设置离开时间").wait_for()
    set_at = api._call("GET", f"/orders/{order['id']}")["departure_at"]
    assert set_at
    line = page.locator(".departure").inner_text()
    assert "清除" in line and re.search(r"\d\d:\d\d", line)
    page.wait_for_timeout(1600)
    shot(page, "m7-departure-set")
    page.get_by_text("清除", exact=True).click()
    page.get_by_text("设置离开时间 ›").wait_for()
    assert api._call("GET", f"/orders/{order['id']}")["departure_at"] is None
    api._call("POST", f"/orders/{order['id']}/stop", expect=(200, 202))
    assert not page.problems, page.problems
