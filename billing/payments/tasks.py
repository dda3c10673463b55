"""Celery tasks of billing: take ids, call a service (queued on commit, with the schema)."""

from __future__ import annotations

from evplatform.celery import app

from . import services
from .models import Payment


@app.task(name="billing.payment_sync")
def payment_sync_task(payment_id: int) -> str:
    return services.payment_sync(payment=Payment.objects.get(pk=payment_id)).status


@app.task(name="billing.payment_refund_submit")
def payment_refund_submit_task(refund_id: int) -> str:
    return services.payment_refund_submit(refund_id=refund_id).status


@app.task(name="billing.withdrawal_submit")
def withdrawal_submit_task(withdrawal_id: int) -> str:
    return services.withdrawal_submit(withdrawal_id=withdrawal_id).status


@app.task(name="billing.owner_payout_submit")
def owner_payout_submit_task(payout_id: int) -> str:
    return services.owner_payout_submit(payout_id=payout_id).status


@app.task(name="billing.profit_share_submit")
def profit_share_submit_task(share_id: int) -> str:
    return services.profit_share_submit(share_id=share_id).status


@app.task(name="billing.reconcile_tenant")
def reconcile_tenant_task() -> dict:
    result = services.reconcile()
    return {"payments": result.payments, "refunds": result.refunds, "withdrawals": result.withdrawals,
            "profit_shares": result.profit_shares}


@app.task(name="billing.bills_reconcile")
def bills_reconcile_task() -> str | None:
    """The daily job for one operator: yesterday's WeChat trade bill against our records."""
    check = services.bills_reconcile_due()
    return check.status if check else None


__all__ = [
    "bills_reconcile_task",
    "payment_sync_task", "payment_refund_submit_task", "withdrawal_submit_task",
    "reconcile_tenant_task", "owner_payout_submit_task", "profit_share_submit_task",
]
