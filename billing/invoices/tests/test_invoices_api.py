"""The driver's invoice API: invoiceable orders, saved titles, a request issued through the
fake 诺诺 platform, status, PDF; and every refusal, each leaving nothing behind."""

import json
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from billing.invoices import services
from billing.invoices.models import Invoice, InvoiceOrder, InvoiceTitle
from billing.invoices.uscc import uscc_check_char

from .conftest import wait_issued

COMPANY_TAX = "91350100M000100Y43"
FORM = "application/x-www-form-urlencoded"


def _request(member_api, numbers, **extra):
    body = {"order_numbers": numbers, "title_kind": "personal", "title_name": "李四",
            "email": "lisi@example.com", **extra}
    return member_api.post("/api/app/v1/invoices", body, format="json")


def test_request_is_issued_through_the_provider_and_downloadable(member_api, invoicing, settle, fapiao_server):
    first, second = settle("10"), settle("4")
    r = member_api.get("/api/app/v1/invoices/orders")
    assert r.status_code == 200
    assert {o["number"]: Decimal(o["net"]) for o in r.json()} == {
        first.number: Decimal("15.00"), second.number: Decimal("6.00")}

    r = _request(member_api, [first.number, second.number], title_kind="company",
                 title_name="广州某某物流有限公司", tax_number=COMPANY_TAX.lower(), save_title=True)
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["status"] == "queued" and Decimal(body["total"]) == Decimal("21.00")
    assert body["tax_number"] == COMPANY_TAX
    assert [(line["kind"], line["amount"], line["amount_ex_tax"], line["tax"]) for line in body["lines"]] == [
        ("electricity", "14.00", "12.39", "1.61"), ("service", "7.00", "6.60", "0.40")]
    assert InvoiceTitle.objects.get(member=member_api.member).tax_number == COMPANY_TAX
    # Chosen orders are no longer offered.
    assert member_api.get("/api/app/v1/invoices/orders").json() == []
    # No PDF before it is issued.
    assert member_api.get(f"/api/app/v1/invoices/{body['id']}/pdf").json()["code"] == "invoice_not_issued"

    invoice = services.invoice_submit(invoice_id=body["id"])
    assert invoice.status == Invoice.Status.SUBMITTED and invoice.provider_serial
    wait_issued(fapiao_server, invoice.number)
    invoice = services.invoice_sync(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.ISSUED and len(invoice.invoice_no) == 20
    assert invoice.pdf_url.startswith(fapiao_server.url)

    r = member_api.get(f"/api/app/v1/invoices/{invoice.pk}")
    assert r.json()["status"] == "issued" and r.json()["pdf_available"]
    r = member_api.get(f"/api/app/v1/invoices/{invoice.pk}/pdf")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and b"STSong-Light" in r.content
    assert member_api.get("/api/app/v1/invoices").json()["results"][0]["number"] == invoice.number


def test_the_provider_call_back_is_checked_by_a_query(member_api, invoicing, settle, fapiao_server, api):
    order = settle("10")
    invoice_id = _request(member_api, [order.number]).json()["id"]
    invoice = services.invoice_submit(invoice_id=invoice_id)
    wait_issued(fapiao_server, invoice.number)
    # A forged "issued" call-back for the request: we ask the provider, who says the truth.
    forged = {"orderNo": invoice.number, "status": "2", "invoiceNo": "FORGED"}
    body = urlencode({"content": json.dumps(forged)})
    r = api.post("/api/pay/notify/tenant-a/fapiao", body, content_type=FORM)
    assert r.status_code == 200 and r.json()["status"] == "0000"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED and invoice.invoice_no != "FORGED"
    # A call-back naming nothing of ours is acknowledged and changes nothing.
    assert api.post("/api/pay/notify/tenant-a/fapiao", "content=%7B%7D", content_type=FORM).status_code == 200
    assert api.post("/api/pay/notify/tenant-a/fapiao", b"\xff", content_type=FORM).status_code == 200


def test_review_mode_waits_for_staff(member_api, invoicing, settle, django_user_model):
    invoicing.auto_issue = False
    invoicing.save()
    order = settle("10")
    invoice = Invoice.objects.get(pk=_request(member_api, [order.number]).json()["id"])
    assert invoice.status == Invoice.Status.REVIEW
    assert services.invoice_submit(invoice_id=invoice.pk).status == Invoice.Status.REVIEW  # not sent
    staff = django_user_model.objects.create_user("reviewer")
    services.invoice_review(invoice=invoice, approve=False, reviewer=staff, note="抬头有误")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.REJECTED
    # The order can be invoiced again.
    assert _request(member_api, [order.number]).status_code == 201


def test_titles_are_saved_validated_and_one_is_default(member_api, tenant):
    url = "/api/app/v1/invoices/titles"
    r = member_api.post(url, {"kind": "company", "name": "某公司", "tax_number": "91350100M000100Y44"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "tax_number_invalid" and "tax_number" in r.json()["fields"]
    r = member_api.post(url, {"kind": "company", "name": "某公司"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "tax_number_required"
    assert not InvoiceTitle.objects.exists()
    a = member_api.post(url, {"kind": "company", "name": "某公司", "tax_number": COMPANY_TAX,
                              "is_default": True}, format="json").json()
    b = member_api.post(url, {"kind": "personal", "name": "李四", "is_default": True}, format="json").json()
    titles = member_api.get(url).json()
    assert [t["id"] for t in titles] == [b["id"], a["id"]] and [t["is_default"] for t in titles] == [True, False]
    r = member_api.put(f"{url}/{a['id']}", {"kind": "company", "name": "某公司（新）", "tax_number": COMPANY_TAX},
                       format="json")
    assert r.status_code == 200 and r.json()["name"] == "某公司（新）"
    assert member_api.delete(f"{url}/{b['id']}").status_code == 204
    assert [t["id"] for t in member_api.get(url).json()] == [a["id"]]


def test_refusals_have_codes_and_leave_nothing(member_api, invoicing, settle, connector, funded_member):
    from accounts.models import Member
    from charging import services as charging

    order = settle("10")
    cases = [
        ({"order_numbers": [order.number], "title_kind": "company", "title_name": "某公司",
          "tax_number": "91350100M000100Y44"}, 400, "tax_number_invalid"),
        ({"order_numbers": [order.number], "title_kind": "company", "title_name": "某公司"}, 400,
         "tax_number_required"),
        ({"order_numbers": [order.number], "title_name": " "}, 400, "validation_error"),
        ({"order_numbers": ["NOSUCHORDER"]}, 404, "order_not_found"),
        ({"order_numbers": [f"N{i}" for i in range(101)]}, 400, "too_many_orders"),
        ({"order_numbers": []}, 400, "validation_error"),
        ({"order_numbers": [order.number], "email": "not-an-email"}, 400, "validation_error"),
    ]
    for extra, status, code in cases:
        r = _request(member_api, extra.pop("order_numbers"), **extra)
        assert (r.status_code, r.json()["code"]) == (status, code), (extra, r.json())
    # Someone else's order: not found (its existence is not revealed).
    other = Member.objects.create(openid="openid-other")
    assert services.InvoiceError is not None
    with pytest.raises(services.InvoiceError) as refused:
        services.invoice_request(member=other, order_numbers=[order.number], title_kind="personal",
                                 title_name="王五", email="w@example.com")
    assert refused.value.code == "order_not_found" and refused.value.status == 404
    # Unsettled: an order still starting.
    active = charging.order_start(member=funded_member, connector=connector)
    r = _request(member_api, [active.number])
    assert (r.status_code, r.json()["code"]) == (409, "order_not_settled")
    assert not Invoice.objects.exists() and not InvoiceOrder.objects.exists()
    # Already invoiced.
    assert _request(member_api, [order.number]).status_code == 201
    r = _request(member_api, [order.number])
    assert (r.status_code, r.json()["code"]) == (409, "order_already_invoiced")
    assert Invoice.objects.count() == 1


def test_zero_amount_order_is_refused(member_api, invoicing, settle, django_user_model):
    from charging import services as charging

    order = settle("2")  # ¥3.00
    charging.order_refund_partial(order_id=order.pk, amount=Decimal("3.00"),
                                  user=django_user_model.objects.create_user("ops"), reason="全额补偿")
    r = _request(member_api, [order.number])
    assert (r.status_code, r.json()["code"]) == (409, "order_zero_amount")
    assert member_api.get("/api/app/v1/invoices/orders").json() == []


def test_disabled_or_unconfigured_operator_refuses(member_api, invoicing, settle):
    order = settle("2")
    invoicing.service_goods_code = ""
    invoicing.save()
    assert _request(member_api, [order.number]).json()["code"] == "invoicing_not_configured"
    invoicing.enabled = False
    invoicing.save()
    r = _request(member_api, [order.number])
    assert (r.status_code, r.json()["code"]) == (409, "invoicing_disabled")


def test_the_database_refuses_a_second_live_invoice_for_an_order(invoicing, settle, funded_member):
    from django.db import IntegrityError, transaction

    order = settle("2")
    invoice = services.invoice_request(member=funded_member, order_numbers=[order.number],
                                       title_kind="personal", title_name="李四", email="l@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceOrder.objects.create(invoice=invoice, order_number=order.number, amount=Decimal("1"))


def test_seller_tax_number_fixture_is_valid():
    from .conftest import _seller_tax

    assert uscc_check_char(_seller_tax()[:17]) == _seller_tax()[17]
