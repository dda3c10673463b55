"""Interconnection in the operator admin (Chromium): partners with masked secrets, the push
log's dead letters and their "send again" action."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from evplatform.tests.estate import ADMIN

# Field names of the standard, shown beside their Chinese labels.
CEC_TERMS = frozenset({"OperatorID", "OperatorSecret", "DataSecret", "DataSecretIV", "SigSecret",
                       "TotalSeviceMoney", "TotalServiceMoney", "Ret", "Bearer"})


SECRET = "BrowserSecret123"


@pytest.fixture(scope="module")
def dead_push(site, django_db_blocker):
    """A regulator partner and one dead push, committed (the browser is another client)."""
    from django.db import connection

    from protocols.cec.models import Partner, Push

    with django_db_blocker.unblock(), tenant_context(site.operator):
        connection.close()  # a fresh one: an earlier module's server teardown may have ended it
        partner, _ = Partner.objects.update_or_create(operator_id="MA1BROWS1", defaults={
            "name": "浏览器测试平台", "our_operator_id": "MA5BROWS1",
            "in_operator_secret": SECRET, "in_data_secret": SECRET, "in_data_iv": SECRET,
            "in_sig_secret": SECRET, "base_url": "http://127.0.0.1:9", "is_regulator": True})
        push, _ = Push.objects.update_or_create(partner=partner, key="order_info:CD1", defaults={
            "interface": "notification_charge_order_info", "payload": "{}", "state": Push.State.DEAD,
            "attempts": 6, "last_error": "ConnectError: refused"})
    yield push
    with django_db_blocker.unblock(), tenant_context(site.operator):
        Partner.objects.filter(pk=partner.pk).delete()


def test_partner_and_dead_push_retry(open_page, site, dead_push):
    from protocols.cec.models import Push

    push, partner, secret = dead_push, dead_push.partner, SECRET
    page = open_page()
    page.login(*ADMIN)
    page.goto(f"/admin/protocols/partner/{partner.pk}/change/")
    page.assert_styled()
    page.assert_chinese(CEC_TERMS | {"admin", "browser"})
    assert secret not in page.page.content() and "••••" in page.text()
    page.screenshot("partner")
    page.goto("/admin/protocols/partner/")
    page.assert_fits()
    page.page.get_by_role("link", name="1", exact=True).click()  # the dead pushes' count links the list
    page.page.wait_for_selector("#result_list")
    assert "order_info:CD1" in page.text("#result_list")
    # The last error is the transport's own text (data for whoever debugs the partner link).
    page.assert_chinese(CEC_TERMS | {"admin", "browser", "ConnectError", "refused"})
    page.screenshot("dead-letters")
    page.page.locator("#result_list input.action-select").first.check()
    page.page.select_option("select[name=action]", "retry")
    page.page.click("button[name=index]")
    page.page.wait_for_selector(".messagelist")
    assert "已重新排队 1 条推送" in page.text(".messagelist")
    page.screenshot("retried")
    with tenant_context(site.operator):
        push.refresh_from_db()
        assert push.state == Push.State.PENDING and push.attempts == 0
