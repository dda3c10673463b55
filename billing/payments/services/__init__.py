"""Payments through WeChat Pay: top-ups, pay-per-order prepayments, refunds, withdrawals.

Modules: ``payments`` (top-ups, prepayments), ``refunds``, ``withdrawals``, ``notifications``,
``reconcile``, ``common`` (refusals, locks, the gateway). Import from this package.

Calls to WeChat are made OUTSIDE database transactions (never hold a row lock across the
network); state changes and ledger postings are made inside one, under a row lock taken
with ``_locked``. Every outbound id is stored before the first call and reused by retries;
an unclear answer (timeout, 5xx) is resolved by a query, never by a new id.

Ledger keys: ``wx:txn:<transaction_id>`` (money in), ``wx:refund:<out_refund_no>`` and
``wx:transfer:<out_bill_no>`` (money out), so a duplicate notification, a query job and
a notification racing each other all post once.
"""

from __future__ import annotations

from ..wechatpay import NotifyRejected
from .bills import bill_reconcile, bills_reconcile_due, parse_trade_bill
from .common import BillingError, NotificationMismatch
from .fundflow import fundflow_reconcile, parse_fundflow_bill
from .notifications import notification_handle
from .payments import (
    PaymentStart,
    PrepaySettlement,
    payment_apply_transaction,
    payment_sync,
    prepay_create,
    prepay_settle,
    purchase_create,
    top_up_create,
)
from .payouts import owner_payout_apply, owner_payout_submit, owner_payout_sync
from .profit_sharing import (
    profit_share_apply,
    profit_share_open,
    profit_share_order_refunded,
    profit_share_submit,
    profit_share_sync,
)
from .reconcile import reconcile
from .refunds import (
    payment_refund_apply,
    payment_refund_submit,
    payment_refund_sync,
    purchase_refund,
    wallet_refund_request,
    wallet_refund_review,
)
from .withdrawals import (
    withdrawal_apply,
    withdrawal_request,
    withdrawal_review,
    withdrawal_submit,
    withdrawal_sync,
)

__all__ = [
    "BillingError",
    "NotificationMismatch",
    "NotifyRejected",
    "PaymentStart",
    "PrepaySettlement",
    "top_up_create",
    "prepay_create",
    "prepay_settle",
    "purchase_create",
    "purchase_refund",
    "payment_apply_transaction",
    "payment_sync",
    "notification_handle",
    "wallet_refund_request",
    "wallet_refund_review",
    "payment_refund_submit",
    "payment_refund_sync",
    "payment_refund_apply",
    "withdrawal_request",
    "withdrawal_review",
    "withdrawal_submit",
    "withdrawal_sync",
    "withdrawal_apply",
    "reconcile",
    "bill_reconcile",
    "bills_reconcile_due",
    "parse_trade_bill",
    "fundflow_reconcile",
    "parse_fundflow_bill",
    "owner_payout_submit",
    "owner_payout_sync",
    "owner_payout_apply",
    "profit_share_open",
    "profit_share_submit",
    "profit_share_sync",
    "profit_share_apply",
    "profit_share_order_refunded",
]
