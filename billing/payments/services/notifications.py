"""WeChat Pay notifications (payment, refund, transfer) → the matching apply service."""

from __future__ import annotations

from ..wechatpay import NotifyRejected
from .common import (
    NotificationMismatch,
    _gateway,
)
from .payments import payment_apply_transaction
from .payouts import OWNER_PAYOUT_PREFIX, owner_payout_apply
from .refunds import payment_refund_apply
from .withdrawals import withdrawal_apply


def notification_handle(*, kind: str, headers, body: bytes, partner: bool = False) -> None:
    """A WeChat Pay notification for this operator (``kind``: payment, refund, transfer),
    to its own merchant, or (``partner``, at ``…/<kind>/sp``) to it as a sub-merchant of the
    platform's service provider, verified and decrypted with the provider's keys.

    Raises NotifyRejected (bad signature, stale, undecryptable: answer 401) or
    NotificationMismatch (answer 400). Returns when applied or already applied.
    """
    gateway = _gateway(partner=partner)
    data = gateway.parse_notification(headers, body)
    event, resource = data.get("event_type", ""), data["resource"]
    if kind == "payment" and event.startswith("TRANSACTION."):
        payment_apply_transaction(txn=resource)
    elif kind == "refund" and event.startswith("REFUND."):
        theirs = (resource.get("sp_mchid"), resource.get("sub_mchid")) if partner else resource.get("mchid")
        ours = (gateway.sp_mchid, gateway.sub_mchid) if partner else gateway.mchid
        if theirs != ours:
            raise NotificationMismatch("refund notification of another merchant")
        payment_refund_apply(data=resource)
    elif kind == "transfer" and event.startswith("MCHTRANSFER.") and not partner:
        if resource.get("mch_id", gateway.mchid) != gateway.mchid:
            raise NotificationMismatch("transfer notification of another merchant")
        if str(resource.get("out_bill_no", "")).startswith(OWNER_PAYOUT_PREFIX):
            owner_payout_apply(data=resource)
        else:
            withdrawal_apply(data=resource)
    else:
        raise NotifyRejected(f"unexpected event {event!r} at {kind}")
