"""A refund of an invoiced order: 红冲 (red-letter reversal) of the invoice, then a new
invoice for what remains; before issue the request is corrected instead."""

from decimal import Decimal

import pytest

from billing.invoices import services
from billing.invoices.models import Invoice, InvoiceOrder

from .conftest import wait_issued


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops-refunds")


def _issue(invoice, server):
    services.invoice_submit(invoice_id=invoice.pk)
    wait_issued(server, invoice.number)
    return services.invoice_sync(invoice_id=invoice.pk)


def _refund(order, amount, staff):
    from charging import services as charging

    return charging.order_refund_partial(order_id=order.pk, amount=Decimal(amount), user=staff, reason="补偿")


def test_refund_red_reverses_the_invoice_then_reissues_what_remains(
    invoicing, settle, funded_member, fapiao_server, staff, member_api
):
    first, second = settle("10"), settle("4")  # ¥15 + ¥6
    blue = services.invoice_request(
        member=funded_member, order_numbers=[first.number, second.number], title_kind="personal",
        title_name="李四", email="lisi@example.com",
    )
    blue = _issue(blue, fapiao_server)
    assert blue.status == Invoice.Status.ISSUED and blue.total == Decimal("21.00")

    _refund(first, "5.00", staff)
    blue.refresh_from_db()
    red = blue.reversals.get()
    assert blue.needs_reversal and blue.status == Invoice.Status.ISSUED
    assert red.kind == Invoice.Kind.RED and red.status == Invoice.Status.QUEUED
    assert red.total == Decimal("-21.00") and sum(line.amount for line in red.lines.all()) == red.total
    assert [(line.amount_ex_tax, line.tax) for line in red.lines.all()] == [
        (-line.amount_ex_tax, -line.tax) for line in blue.lines.all()]

    red = _issue(red, fapiao_server)
    assert red.status == Invoice.Status.ISSUED
    blue.refresh_from_db()
    assert blue.status == Invoice.Status.REVERSED and not blue.needs_reversal
    provider_blue = next(r for r in fapiao_server.invoices.values() if r["orderNo"] == blue.number)
    assert provider_blue["reversedBy"] == red.number

    again = blue.reissues.get()
    assert again.status == Invoice.Status.QUEUED and again.total == Decimal("16.00")  # 10 + 6
    assert dict(again.orders.values_list("order_number", "amount")) == {
        first.number: Decimal("10.00"), second.number: Decimal("6.00")}
    assert not InvoiceOrder.objects.filter(invoice=blue, active=True).exists()
    again = _issue(again, fapiao_server)
    assert again.status == Invoice.Status.ISSUED and again.title_name == "李四"

    # The driver sees all three, and can download the red one too.
    listed = member_api.get("/api/app/v1/invoices").json()["results"]
    assert {i["number"]: i["status"] for i in listed} == {
        blue.number: "reversed", red.number: "issued", again.number: "issued"}
    r = member_api.get(f"/api/app/v1/invoices/{red.pk}/pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


def test_full_refund_reverses_and_reissues_nothing(invoicing, settle, funded_member, fapiao_server, staff):
    order = settle("2")
    blue = _issue(services.invoice_request(
        member=funded_member, order_numbers=[order.number], title_kind="personal", title_name="李四",
        email="l@example.com"), fapiao_server)
    _refund(order, "3.00", staff)
    red = _issue(blue.reversals.get(), fapiao_server)
    assert red.status == Invoice.Status.ISSUED
    blue.refresh_from_db()
    assert blue.status == Invoice.Status.REVERSED and not blue.reissues.exists()


def test_refund_before_issue_corrects_the_request(invoicing, settle, funded_member, fapiao_server, staff):
    order = settle("10")
    invoice = services.invoice_request(
        member=funded_member, order_numbers=[order.number], title_kind="personal", title_name="李四",
        email="l@example.com")
    _refund(order, "5.00", staff)
    invoice = services.invoice_submit(invoice_id=invoice.pk)  # recomputed before it is sent
    assert invoice.total == Decimal("10.00") and not invoice.reversals.exists()
    invoice = _issue(invoice, fapiao_server)
    assert invoice.status == Invoice.Status.ISSUED
    sent = next(iter(fapiao_server.invoices.values()))
    assert Decimal(sent["total"]) == Decimal("10.00")


def test_refund_while_being_issued_reverses_once_issued(invoicing, settle, funded_member, fapiao_server, staff):
    order = settle("10")
    invoice = services.invoice_request(
        member=funded_member, order_numbers=[order.number], title_kind="personal", title_name="李四",
        email="l@example.com")
    invoice = services.invoice_submit(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.SUBMITTED
    _refund(order, "1.00", staff)
    assert not invoice.reversals.exists()
    wait_issued(fapiao_server, invoice.number)
    invoice = services.invoice_sync(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.ISSUED
    red = invoice.reversals.get()
    assert red.total == -invoice.total == Decimal("-15.00")


def test_review_request_refunded_is_recomputed(invoicing, settle, funded_member, staff):
    invoicing.auto_issue = False
    invoicing.save()
    order = settle("10")
    invoice = services.invoice_request(
        member=funded_member, order_numbers=[order.number], title_kind="personal", title_name="李四",
        email="l@example.com")
    _refund(order, "15.00", staff)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.REJECTED and not invoice.orders.filter(active=True).exists()


def test_a_failed_reversal_is_retried_not_rejected(invoicing, settle, funded_member, fapiao_server, staff):
    order = settle("10")
    blue = _issue(services.invoice_request(
        member=funded_member, order_numbers=[order.number], title_kind="personal", title_name="李四",
        email="l@example.com"), fapiao_server)
    _refund(order, "2.00", staff)
    red = blue.reversals.get()
    fapiao_server.inject_failure(path="/open/v1/services", mode="error", status=200,
                                 body={"code": "E9998", "describe": "红冲暂不可用"})
    red = services.invoice_submit(invoice_id=red.pk)
    assert red.status == Invoice.Status.FAILED
    with pytest.raises(services.InvoiceError) as refused:
        services.invoice_reject(invoice=red, user=staff)
    assert refused.value.code == "reversal_required"
    red = services.invoice_retry(invoice=red, user=staff)
    red = _issue(red, fapiao_server)
    assert red.status == Invoice.Status.ISSUED
    blue.refresh_from_db()
    assert blue.status == Invoice.Status.REVERSED and blue.reissues.get().total == Decimal("13.00")
