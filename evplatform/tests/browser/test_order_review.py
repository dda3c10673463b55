"""An order held for review (issue 23) as the operator admin meets it in Chromium: the reason
on the order page, the "needs review" filter, the approve / reject actions, the frame log."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from evplatform.tests.estate import ADMIN


@pytest.fixture(scope="module")
def held_order(site, django_db_blocker):
    """A session whose pile reports ¥0.00 while we bill more: held, nothing charged."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from charging import port, services
    from charging.models import TransactionRecord
    from protocols.models import FrameLog
    from protocols.tests.helpers import record
    from protocols.ykc.frame import encode_frame

    with django_db_blocker.unblock():
        # An earlier module's teardown ends the database's other sessions: start afresh.
        connection.close_if_unusable_or_obsolete()
    with django_db_blocker.unblock(), tenant_context(site.operator):
        connector = site.estate.owned_pile.connectors.get(number=1)
        order = services.order_start(member=site.estate.member, connector=connector)
        now = timezone.now()
        services.record_store(port.TransactionRecord(
            pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
            started_at=now - timedelta(minutes=30), stopped_at=now,
            meter_start_kwh=Decimal("200"), meter_stop_kwh=Decimal("212"),
            energy_kwh=Decimal("12"), pile_amount_yuan=Decimal("0"),
            stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40, raw_hex="68",
        ))
        order = services.record_settle(
            record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
        frame = encode_frame(record(order.pile.code, order.trade_no, amount="0"), 1)
        FrameLog.objects.create(pile_code=order.pile.code, at=now, direction="in",
                                frame_type=0x3B, name="TransactionRecord",
                                trade_no=order.trade_no, hex=frame.hex().upper())
        assert order.state == "review"
    return order


def test_a_held_order_says_why_and_offers_the_decision(held_order, open_page):
    page = open_page()
    page.login(*ADMIN)
    page.goto("/admin/charging/chargingorder/?review=held")
    page.assert_styled()
    page.assert_chinese()
    page.assert_fits()
    assert held_order.number in page.text()
    page.screenshot("list")
    page.goto(f"/admin/charging/chargingorder/{held_order.pk}/change/")
    page.assert_styled()
    page.assert_chinese()
    page.assert_fits()
    text = page.text()
    assert "充电桩金额为 ¥0.00" in text and "暂缓结算" in text
    assert page.page.get_by_role("link", name="审核通过并扣费").count() == 1
    assert page.page.get_by_role("link", name="驳回：不扣费").count() == 1
    page.screenshot("order")
    page.page.get_by_role("link", name="本次充电的报文").click()
    page.page.wait_for_selector("#result_list")
    page.page.locator("#result_list tbody a").first.click()
    page.page.wait_for_selector(".field-record_review")
    assert "充电桩金额为 ¥0.00" in page.text(".field-record_review")
    page.assert_chinese()
    page.screenshot("frame")
