"""Celery tasks of invoicing: take ids, call a service (queued on commit, with the schema)."""

from __future__ import annotations

from evplatform.celery import app

from . import services


@app.task(name="billing.invoice_submit")
def invoice_submit_task(invoice_id: int) -> str:
    return services.invoice_submit(invoice_id=invoice_id).status


@app.task(name="billing.invoice_sync")
def invoice_sync_task(invoice_id: int) -> str:
    return services.invoice_sync(invoice_id=invoice_id).status


@app.task(name="billing.invoices_reconcile")
def invoices_reconcile_task() -> dict:
    return services.invoices_reconcile()


__all__ = ["invoice_submit_task", "invoice_sync_task", "invoices_reconcile_task"]
