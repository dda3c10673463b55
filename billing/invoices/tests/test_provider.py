"""Talking to the provider: outages queue and never lose a request, an unclear answer is
queried before any retry (one invoice, never two), refusals fail clearly, staff retry."""

from datetime import timedelta

from django.utils import timezone

from billing.invoices import services
from billing.invoices.models import Invoice

from .conftest import wait_issued


def _invoice(member, settle, **extra):
    order = settle("10")
    return services.invoice_request(
        member=member, order_numbers=[order.number], title_kind="personal",
        title_name=extra.pop("title_name", "李四"), email="lisi@example.com", **extra,
    )


def _later():
    return timezone.now() + timedelta(hours=2)


def test_an_outage_queues_the_request_and_a_later_run_sends_it(invoicing, settle, funded_member, fapiao_server):
    invoice = _invoice(funded_member, settle)
    fapiao_server.inject_failure(path="/open/v1/services", mode="reset", count=None)
    invoice = services.invoice_submit(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.QUEUED and invoice.unclear and invoice.last_error
    assert invoice.next_try_at > timezone.now()
    assert services.invoices_reconcile()["submitted"] == 0  # not due yet
    fapiao_server.failures.clear()
    counts = services.invoices_reconcile(now=_later())
    assert counts["submitted"] == 1
    invoice.refresh_from_db()
    assert invoice.status in (Invoice.Status.SUBMITTED, Invoice.Status.ISSUED) and invoice.attempts == 2
    wait_issued(fapiao_server, invoice.number)
    services.invoices_reconcile(now=_later())
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED
    assert len(fapiao_server.invoices) == 1


def test_an_answer_lost_after_the_provider_took_it_is_queried_not_sent_twice(
    invoicing, settle, funded_member, fapiao_server
):
    invoice = _invoice(funded_member, settle)
    # The provider takes the request, then the connection drops before the answer.
    fapiao_server.inject_failure(path="/open/v1/services", mode="timeout", delay=0.5, apply=True)
    invoice = services.invoice_submit(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.QUEUED and invoice.unclear
    assert len(fapiao_server.invoices) == 1  # it does have it
    invoice = services.invoice_submit(invoice_id=invoice.pk)  # the retry asks first
    assert invoice.status in (Invoice.Status.SUBMITTED, Invoice.Status.ISSUED) and not invoice.unclear
    wait_issued(fapiao_server, invoice.number)
    assert services.invoice_sync(invoice_id=invoice.pk).status == Invoice.Status.ISSUED
    assert len(fapiao_server.invoices) == 1


def test_a_repeated_request_number_is_answered_from_the_provider_record(
    invoicing, settle, funded_member, fapiao_server
):
    invoice = _invoice(funded_member, settle)
    services.invoice_submit(invoice_id=invoice.pk)
    wait_issued(fapiao_server, invoice.number)
    # Our state lost (e.g. restored backup): sending again finds the provider's invoice.
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.QUEUED, unclear=False)
    invoice = services.invoice_submit(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.ISSUED and len(fapiao_server.invoices) == 1


def test_a_refusal_fails_and_staff_retry_under_a_new_number(invoicing, settle, funded_member, fapiao_server):
    invoice = _invoice(funded_member, settle, title_name="拒开")
    services.invoice_submit(invoice_id=invoice.pk)
    wait_issued(fapiao_server, invoice.number, status="22")
    invoice = services.invoice_sync(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.FAILED and "购方名称不合规" in invoice.last_error
    old = invoice.number
    Invoice.objects.filter(pk=invoice.pk).update(title_name="李四")
    invoice = services.invoice_retry(invoice=invoice)
    assert invoice.status == Invoice.Status.QUEUED and invoice.number != old
    services.invoice_submit(invoice_id=invoice.pk)
    wait_issued(fapiao_server, invoice.number)
    assert services.invoice_sync(invoice_id=invoice.pk).status == Invoice.Status.ISSUED


def test_a_clear_refusal_by_the_provider_fails_at_once(invoicing, settle, funded_member, fapiao_server):
    invoice = _invoice(funded_member, settle)
    fapiao_server.inject_failure(path="/open/v1/services", mode="error", status=200,
                                 body={"code": "E9999", "describe": "税号未授权"})
    invoice = services.invoice_submit(invoice_id=invoice.pk)
    assert invoice.status == Invoice.Status.FAILED and "E9999" in invoice.last_error
    assert not invoice.unclear


def test_bad_credentials_are_a_refusal_not_a_retry_loop(invoicing, settle, funded_member, fapiao_server):
    invoicing.app_secret = "wrong-secret"
    invoicing.save()
    invoice = services.invoice_submit(invoice_id=_invoice(funded_member, settle).pk)
    assert invoice.status == Invoice.Status.FAILED and "token" in invoice.last_error
    assert not fapiao_server.invoices


def test_credentials_are_stored_encrypted(invoicing):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT app_secret FROM billing_invoicesettings WHERE id = %s", [invoicing.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and "demo-app-secret" not in stored
    assert "demo-app-secret-0001" not in invoicing.app_secret_masked
