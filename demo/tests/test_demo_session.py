"""The driver journey of `manage.py demo_session`, end to end over real sockets: log in
(fake WeChat), top up ¥100 (fake WeChat Pay), scan, start, live progress over the
WebSocket, stop, the pile's record, settlement, bill and balance; the ledger is clean."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from billing.tariffs import pricing
from demo.journey import Journey
from protocols.tests.helpers import committed, wait_for

pytestmark = pytest.mark.django_db  # reads only: what the servers' threads must see is
# written through `committed` (another thread, autocommit)



def _minimum_charge(platform, order) -> Decimal:
    """The minimum charge of the tariff locked on ``order`` (0 without one)."""
    with schema_context(platform.operator.schema_name):
        from charging.models import ChargingOrder

        snapshot = pricing.TariffSnapshot.from_dict(
            ChargingOrder.objects.get(pk=order["id"]).tariff_snapshot)
    return snapshot.minimum_charge or Decimal("0")


def test_a_new_driver_charges_and_is_billed_correctly(platform, capsys):
    lines = []
    journey = Journey(
        api_url=platform.web.url, pay_url=platform.pay.url, stop_at_kwh=Decimal("1.0"),
        timeout_s=60, say=lines.append,
    )
    result = journey.run()
    order, before, after = result["order"], result["before"], result["after"]

    assert order["state"] == "settled" and Decimal(order["energy_kwh"]) >= Decimal("1.0")
    # The bill: lines rounded once each, the total is their sum raised to the tariff's
    # minimum charge (1 kWh in the night's valley costs less than the demo's ¥1 minimum),
    # the wallet paid it.
    lines_sum = sum(
        (Decimal(line["electricity_yuan"]) + Decimal(line["service_yuan"]) for line in order["bill_lines"]),
        Decimal("0"),
    )
    total = max(lines_sum, _minimum_charge(platform, order))
    assert order["bill_lines"] and lines_sum > 0 and Decimal(order["total_amount"]) == total
    assert Decimal(after["available"]) == Decimal(before["available"]) - total
    assert Decimal(before["available"]) == Decimal("150.00")  # seeded ¥50 + the ¥100 top-up
    # Progress reached the driver over the WebSocket while charging.
    assert any(o["state"] == "charging" and o["progress"] for o in journey.log)

    with schema_context(platform.operator.schema_name):
        from charging.models import ChargingOrder, TransactionRecord
        from protocols.models import FrameLog
        from settlement.models import Posting

        db_order = ChargingOrder.objects.get(pk=order["id"])
        record = TransactionRecord.objects.get(trade_no=db_order.trade_no)
        # Priced from the pile's per-period energy and the locked snapshot.
        by_period = record.energy_by_period()
        snapshot = pricing.TariffSnapshot.from_dict(db_order.tariff_snapshot)
        expected = pricing.price_pile_energy(snapshot, {pricing.Period(k): v for k, v in by_period.items()})
        assert expected.total_yuan == total and not db_order.amount_mismatch
        assert Posting.objects.filter(key=f"order:{db_order.number}:charge").count() == 1
        frames = FrameLog.objects.filter(pile_code=db_order.pile.code)
        # Every frame in and out is in the pile's log (written in batches every 0.5 s).
        wait_for(lambda: {0x34, 0x33, 0x13, 0x36, 0x3B, 0x40} <= set(frames.values_list("frame_type", flat=True)), timeout=30)
    # The member was told (subscribe message recorded by the fake WeChat).
    assert any(m["data"]["character_string1"]["value"] == order["number"] for m in platform.wechat.messages())

    capsys.readouterr()
    call_command("ledger_verify", tenant="demo")  # exits non-zero on any problem
    assert capsys.readouterr().out.strip().endswith("postings: ok")
    # What the driver was shown, in order.
    said = "\n".join(lines)
    for step in ("登录成功", "充值", "启动充电", "停止充电", "账单", "合计", "余额 / balance now"):
        assert step in said, said


def test_a_coupon_and_an_svip_discount_on_the_demo_bill_with_the_ledger_clean(platform, capsys):
    """Must-show (#15): `demo_session --marketing`: the driver buys the SVIP plan from the
    wallet and claims a coupon, charges, and the bill carries both discounts as lines."""
    lines = []
    journey = Journey(api_url=platform.web.url, pay_url=platform.pay.url, driver="dora", marketing=True,
                      stop_at_kwh=Decimal("1.0"), timeout_s=60, say=lines.append)
    result = journey.run()
    order, before, after = result["order"], result["before"], result["after"]
    assert journey.perks["svip"] and journey.perks["coupon"]
    kinds = {line["kind"]: Decimal(line["amount"]) for line in order["discount_lines"]}
    gross = max(sum((Decimal(x["electricity_yuan"]) + Decimal(x["service_yuan"]) for x in order["bill_lines"]),
                    Decimal(0)), _minimum_charge(platform, order))  # (raised to the minimum at night)
    service = sum((Decimal(x["service_yuan"]) for x in order["bill_lines"]), Decimal(0))
    assert kinds["svip"] == (service * Decimal("0.20")).quantize(Decimal("0.01"))  # the plan's 20 % of the service fee
    assert kinds["coupon"] == min(Decimal("1.00"), gross - kinds["svip"])
    assert Decimal(order["discount_amount"]) == kinds["svip"] + kinds["coupon"]
    assert Decimal(order["total_amount"]) == Decimal(order["paid_amount"]) == gross - Decimal(order["discount_amount"])
    assert Decimal(before["available"]) == Decimal("85.00")  # ¥100 top-up − ¥15 SVIP
    assert Decimal(after["available"]) == Decimal(before["available"]) - Decimal(order["paid_amount"])
    capsys.readouterr()
    call_command("ledger_verify", tenant="demo")
    assert capsys.readouterr().out.strip().endswith("postings: ok")
    said = "\n".join(lines)
    for step in ("开通 / SVIP", "领券", "优惠 / svip", "优惠 / coupon"):
        assert step in said, said


def test_owner_is_credited_paid_and_a_later_refund_nets_off(platform, capsys):
    """Must-show: the station owner's payable credited by the rule (owner center and admin),
    a statement built, confirmed and paid through the fake WeChat Pay, a refund after the
    payout netting off the next statement, ledger_verify clean throughout."""
    from demo.owner_settlement import owner_settlement_run

    lines = []
    journey = Journey(api_url=platform.web.url, pay_url=platform.pay.url, driver="carol",
                      stop_at_kwh=Decimal("1.0"), timeout_s=60, say=lines.append)
    order = journey.run()["order"]
    shown = committed(
        owner_settlement_run, operator=platform.operator, order_number=order["number"],
        api_url=platform.web.url, pay_url=platform.pay.url, say=lines.append,
    )
    assert shown["share"] > 0 and shown["payable_before"] >= shown["share"]
    assert Decimal(shown["overview"]["payable"]) == shown["payable_before"]
    assert shown["overview"]["today"]["orders"] >= 1
    assert shown["paid"]
    # The refund after the payout: the owner's part comes back as a correction on the next one.
    assert shown["next_adjustments"] < 0
    with schema_context(platform.operator.schema_name):
        from settlement.models import OrderSplit, Payout

        split = OrderSplit.objects.get(order_ref=order["number"])
        # The platform's 5 % of the base, to within the fen the largest remainder allows.
        assert split.commission_percent == Decimal("5.00") and split.base > 0
        assert abs(split.commission - split.base * Decimal("0.05")) < Decimal("0.01")
        assert Payout.objects.filter(statement__number=shown["statement"], status="success").count() == 1
    capsys.readouterr()
    call_command("ledger_verify", tenant="demo")
    assert capsys.readouterr().out.strip().endswith("postings: ok")
    said = "\n".join(lines)
    for step in ("分账", "站长中心", "结算单", "已付款", "退款", "下期结算单"):
        assert step in said, said


def test_disconnect_mid_session_then_reconnect_settles_once(platform):
    journey = Journey(api_url=platform.web.url, pay_url=platform.pay.url, driver="bob", say=lambda _: None)
    journey.login()
    journey.top_up_and_pay()
    connector = journey.pick_connector()
    order = journey.start(connector)
    with schema_context(platform.operator.schema_name):
        from charging.models import ChargingOrder

        pile_code = ChargingOrder.objects.select_related("pile").get(pk=order["id"]).pile.code
    pile = platform.simulator.piles[pile_code]
    def progress_at():
        body = journey._call("GET", f"/orders/{order['id']}")
        return body["state"] == "charging" and (body["progress"] or {}).get("at")

    seen = wait_for(progress_at, timeout=30)
    # The link drops; the pile logs in again and keeps charging and reporting.
    platform.simulator.call(pile.drop_connection)
    wait_for(lambda: pile.logged_in.is_set() and progress_at() not in (None, False, seen), timeout=30)
    journey._call("POST", f"/orders/{order['id']}/stop", expect=(202,))
    final = wait_for(lambda: (o := journey._call("GET", f"/orders/{order['id']}"))["state"] == "settled" and o, timeout=30)
    with schema_context(platform.operator.schema_name):
        from charging.models import TransactionRecord
        from settlement.models import Posting

        assert TransactionRecord.objects.filter(trade_no__startswith=pile_code).filter(
            order_id=order["id"]
        ).count() == 1
        assert Posting.objects.filter(key=f"order:{final['number']}:charge").count() == 1
    assert Decimal(final["total_amount"]) > 0


def test_card_start_at_the_pile_is_authorised_and_billed(platform):
    import asyncio

    with schema_context(platform.operator.schema_name):
        from accounts.models import Member
        from charging.models import ChargingOrder, MemberCredential

        member = Member.objects.get(nickname="演示车主")

    def bind_card():
        with schema_context(platform.operator.schema_name):
            MemberCredential.objects.get_or_create(member_id=member.pk, kind="card", value="00000000D14B0A54")

    committed(bind_card)
    with schema_context(platform.operator.schema_name):
        busy = set(ChargingOrder.objects.filter(state__in=["starting", "charging", "stopping"]).values_list("pile__code", flat=True))
    code = next(c for c in platform.simulator.piles if c not in busy)
    pile = platform.simulator.piles[code]
    future = asyncio.run_coroutine_threadsafe(pile.card_start(1, card_no="00000000D14B0A54"), platform.simulator.loop)
    assert future.result(15)  # 0x32 authorised
    with schema_context(platform.operator.schema_name):
        order = wait_for(lambda: ChargingOrder.objects.filter(pile__code=code, state="charging").first(), timeout=30)
        assert order.mode == "card" and order.pile_initiated and order.member_id == member.pk
    platform.simulator.call(pile.stop_local, 1, 0x45)
    with schema_context(platform.operator.schema_name):
        settled = wait_for(lambda: ChargingOrder.objects.filter(pk=order.pk, state="settled").first(), timeout=30)
        assert settled.total_amount > 0 and settled.stop_reason == "at_pile"


def test_owner_settlement_in_the_admin_in_a_browser(platform):
    """What the operator looks at: a split rule with its worked example, and the statements
    (after the owner's settlement above), in Chromium; screenshots in var/screenshots/."""
    from pathlib import Path

    from django.conf import settings
    from playwright.sync_api import sync_playwright

    from demo.seed import DEMO_ADMIN

    shots = Path(settings.BASE_DIR) / "var" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    base = f"http://demo.{settings.TENANT_HOST_SUFFIX}:{platform.web.port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", DEMO_ADMIN[0])
        page.fill("#id_password", DEMO_ADMIN[1])
        page.click("input[type=submit]")
        page.goto(f"{base}/admin/settlement/splitrule/")
        page.click("#result_list tbody tr th a")
        page.wait_for_selector(".field-worked_example")
        example = page.inner_text(".field-worked_example")
        assert "计算示例" in example and "¥" in example and "运营商" in example
        page.screenshot(path=str(shots / "settlement_split_rule.png"), full_page=True)
        page.goto(f"{base}/admin/settlement/statement/")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() >= 1
        assert "XLSX" in page.inner_text("#result_list")
        page.screenshot(path=str(shots / "settlement_statements.png"), full_page=True)
        browser.close()
