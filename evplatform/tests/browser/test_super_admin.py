"""The super admin on the platform host in Chromium: Chinese, an operator created through
the provisioning service, suspend/resume behind a confirmation with a reason, no bulk
delete of operators, and the platform's own row offered nowhere."""

from __future__ import annotations

from django.db import connection

from evplatform.tests.browser.conftest import PLATFORM_HOST, ROOT
from tenants.models import Operator


def test_super_admin_pages_are_chinese_and_never_offer_the_platform_row(open_page, site):
    page = open_page(PLATFORM_HOST)
    page.login(*ROOT)
    page.assert_styled()
    page.assert_chinese()
    page.screenshot("index")
    page.goto("/admin/tenants/operator/")
    page.assert_chinese()
    page.assert_fits()
    names = page.page.locator("#result_list .field-name").all_inner_texts()
    assert site.operator.name in names and "平台" not in names  # the platform's own row
    options = page.page.locator("select[name=action] option").all_inner_texts()
    assert not any("删除" in o for o in options), options  # no bulk delete of operators
    page.screenshot("operators")
    page.goto(f"/admin/tenants/operator/{site.operator.pk}/change/")
    page.assert_chinese()
    assert page.page.locator("input[name=_save]").count() == 1
    assert page.page.locator("a.deletelink").count() == 0
    page.screenshot("operator")
    page.goto("/admin/tenants/miniprogram/add/")
    page.assert_chinese()
    choices = page.page.locator("select[name=operator] option").all_inner_texts()
    assert site.operator.name in choices and "平台" not in choices
    for path in ("/admin/tenants/refusedpilelogin/", "/admin/auth/user/"):
        page.goto(path)
        page.assert_chinese()
        page.assert_fits()


def test_create_suspend_and_resume_an_operator(open_page, site, django_db_blocker):
    page = open_page(PLATFORM_HOST)
    page.login(*ROOT)
    page.goto("/admin/tenants/operator/add/")
    page.assert_chinese()
    form = page.page
    form.fill("#id_name", "新建测试运营商")
    form.fill("#id_slug", "created-in-browser")
    form.fill("#id_domain", "created-in-browser.localhost")
    form.fill("#id_admin_username", "boss")
    page.screenshot("create-form")
    form.click("#operator-create input[type=submit]")
    form.wait_for_selector(".messagelist", timeout=60000)
    try:
        message = page.text(".messagelist")
        assert "新建测试运营商" in message and "开通用时" in message and "只显示这一次" in message
        page.screenshot("created")

        page.goto("/admin/tenants/operator/")
        row = form.locator("#result_list tr", has_text="新建测试运营商")
        row.locator("input[type=checkbox]").check()
        form.select_option("select[name=action]", "suspend")
        form.click("button[name=index]")
        form.wait_for_selector("input[name=reason]")
        page.assert_chinese()
        page.screenshot("suspend-confirm")
        assert form.locator("input[name=reason]").get_attribute("required") is not None
        form.fill("input[name=reason]", "欠费停服")
        form.click(".submit-row input[type=submit]")
        form.wait_for_selector(".messagelist")
        with django_db_blocker.unblock():
            created = Operator.objects.get(slug="created-in-browser")
            assert created.status == Operator.Status.SUSPENDED
            from django.contrib.admin.models import LogEntry

            assert LogEntry.objects.filter(object_id=str(created.pk),
                                           change_message__contains="欠费停服").exists()
    finally:
        with django_db_blocker.unblock():
            connection.set_schema_to_public()
            for operator in Operator.objects.filter(slug="created-in-browser"):
                operator.delete(force_drop=True)
