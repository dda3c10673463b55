"""The operator's admin: settings with the secret masked and kept, the invoice list, export,
retry of a failed request."""

import pytest
from django.test import Client

from billing.invoices import services
from billing.invoices.models import Invoice, InvoiceSettings

from .conftest import APP_SECRET, wait_issued

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff_client(tenant, django_user_model):
    user = django_user_model.objects.create_superuser("ops-invoices", password="x-pass-123")
    client = Client()
    client.force_login(user)
    return client


def test_settings_page_masks_the_secret_and_keeps_it_when_left_empty(staff_client, invoicing):
    url = f"/admin/billing/invoicesettings/{invoicing.pk}/change/"
    r = staff_client.get(url, **HOST)
    body = r.content.decode()
    assert r.status_code == 200 and APP_SECRET not in body and "••••" in body
    form = {f: getattr(invoicing, f) for f in (
        "seller_name", "seller_tax_number", "seller_address", "seller_phone", "seller_bank_account",
        "clerk", "invoice_line", "electricity_goods_name", "electricity_goods_code",
        "electricity_tax_rate", "service_goods_name", "service_goods_code", "service_tax_rate",
        "provider", "api_url", "token_url", "app_key", "callback_base_url")}
    form.update(enabled="on", auto_issue="", app_secret="", seller_name="新名称")
    r = staff_client.post(url, form, **HOST)
    assert r.status_code == 302, r.content.decode()[:2000]
    row = InvoiceSettings.objects.get()
    assert row.seller_name == "新名称" and row.app_secret == APP_SECRET and not row.auto_issue


def test_list_export_and_retry(staff_client, invoicing, settle, funded_member, fapiao_server):
    order = settle("10")
    invoice = services.invoice_request(member=funded_member, order_numbers=[order.number],
                                       title_kind="personal", title_name="拒开", email="x@example.com")
    services.invoice_submit(invoice_id=invoice.pk)
    wait_issued(fapiao_server, invoice.number, status="22")
    services.invoice_sync(invoice_id=invoice.pk)
    r = staff_client.get("/admin/billing/invoice/?status__exact=failed", **HOST)
    assert r.status_code == 200 and invoice.number in r.content.decode()
    r = staff_client.get(f"/admin/billing/invoice/?q={order.number}", **HOST)
    assert invoice.number in r.content.decode()
    r = staff_client.get(f"/admin/billing/invoice/{invoice.pk}/change/", **HOST)
    assert r.status_code == 200 and order.number in r.content.decode()
    r = staff_client.post("/admin/billing/invoice/export/", {"format": "0", "resource": "0"}, **HOST)
    assert r.status_code == 200
    r = staff_client.post("/admin/billing/invoice/", {
        "action": "retry", "_selected_action": [invoice.pk], "reason": ""}, **HOST)
    assert r.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.QUEUED
