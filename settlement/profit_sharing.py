"""Owner shares paid by WeChat Pay 分账 (profit sharing): the ledger side.

billing (``billing.payments.services.profit_sharing``) talks to WeChat; here the money moves:

- ``profit_share_hold`` when a split is opened (in the order's settlement transaction): each
  owner's share leaves the owner's payable for payouts in transit (one ``SplitLine``
  ``profit_sharing`` of −share per owner), so no statement pays it again;
- ``profit_share_close`` on WeChat's final answer: what reached an owner goes from transit to
  WeChat clearing (the money left the merchant's account); what did not (refused, closed,
  cancelled by a refund) goes back to the owner's payable (``SplitLine`` ``ps_return``), to
  be paid by the next statement.

Service-provider mode: the platform's commission split to the provider leaves the operator's
commission payable for WeChat clearing (``commission_share_paid``, key
``wx:ps:<out_order_no>:platform``, kind ``payout_success``); a 分账回退 of it brings it back
(``commission_share_returned``, key ``wx:psr:<out_return_no>``, kind ``payout_return``), to
be netted by the order's refund reversal.

Keys: ``ps:<out_order_no>`` (hold), ``wx:ps:<out_order_no>`` (paid), ``ps:<out_order_no>:return``
(back to payables); each posting once, so a repeated answer moves nothing. Amounts in yuan.
Locks: the ledger's (account rows in primary-key order).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from evplatform.money import ZERO, yuan

from . import services as ledger
from .models import Account, OrderSplit, Posting, SplitLine


@transaction.atomic
def profit_share_hold(*, out_order_no: str, order_ref: str, parts: dict[int, Decimal]) -> Posting | None:
    """Move ``parts`` ({owner user id: yuan}) from the owners' payables to payouts in
    transit. Idempotent by ``out_order_no``; None when there is nothing to move."""
    parts = {oid: yuan(v) for oid, v in parts.items() if yuan(v) > 0}
    if not parts:
        return None
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    lines = [(ledger.owner_account(oid), amount) for oid, amount in parts.items()]
    lines.append((transit, -sum(parts.values(), ZERO)))
    posting = ledger.posting_create(
        key=f"ps:{out_order_no}", kind=Posting.Kind.PAYOUT, lines=lines, ref=order_ref[:64],
        memo=f"profit sharing {out_order_no}",
    )
    if not SplitLine.objects.filter(posting=posting).exists():
        split = OrderSplit.objects.filter(order_ref=order_ref).first()
        now = timezone.now()
        SplitLine.objects.bulk_create(
            SplitLine(owner_id=oid, kind=SplitLine.Kind.PROFIT_SHARING, split=split,
                      posting=posting, amount=-amount, occurred_at=now)
            for oid, amount in parts.items()
        )
    return posting


@transaction.atomic
def profit_share_close(
    *, out_order_no: str, order_ref: str, paid: dict[int, Decimal], returned: dict[int, Decimal]
) -> None:
    """WeChat's final answer on a held split: ``paid`` ({owner: yuan}) reached the owners
    (transit → clearing), ``returned`` did not (transit → their payables, to be paid by
    statement). Idempotent by ``out_order_no``."""
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    paid = {oid: yuan(v) for oid, v in paid.items() if yuan(v) > 0}
    returned = {oid: yuan(v) for oid, v in returned.items() if yuan(v) > 0}
    if paid:
        total = sum(paid.values(), ZERO)
        ledger.posting_create(
            key=f"wx:ps:{out_order_no}", kind=Posting.Kind.PAYOUT_SUCCESS,
            lines=[(transit, total), (ledger.system_account(Account.Kind.CLEARING), -total)],
            ref=order_ref[:64], memo=f"profit sharing {out_order_no}",
        )
    if returned:
        lines = [(ledger.owner_account(oid), -amount) for oid, amount in returned.items()]
        lines.append((transit, sum(returned.values(), ZERO)))
        posting = ledger.posting_create(
            key=f"ps:{out_order_no}:return", kind=Posting.Kind.PAYOUT_RETURN, lines=lines,
            ref=order_ref[:64], memo=f"profit sharing {out_order_no} not paid",
        )
        if not SplitLine.objects.filter(posting=posting).exists():
            split = OrderSplit.objects.filter(order_ref=order_ref).first()
            now = timezone.now()
            SplitLine.objects.bulk_create(
                SplitLine(owner_id=oid, kind=SplitLine.Kind.PROFIT_SHARING_RETURN, split=split,
                          posting=posting, amount=amount, occurred_at=now)
                for oid, amount in returned.items()
            )


@transaction.atomic
def commission_share_paid(*, out_order_no: str, order_ref: str, amount: Decimal) -> Posting | None:
    """The platform's commission ``amount`` reached the service provider by 分账: the
    operator's commission payable is settled from WeChat clearing. Idempotent."""
    amount = yuan(amount)
    if amount <= 0:
        return None
    return ledger.posting_create(
        key=f"wx:ps:{out_order_no}:platform", kind=Posting.Kind.PAYOUT_SUCCESS,
        lines=[(ledger.system_account(Account.Kind.COMMISSION), amount),
               (ledger.system_account(Account.Kind.CLEARING), -amount)],
        ref=order_ref[:64], memo=f"platform commission by profit sharing {out_order_no}",
    )


@transaction.atomic
def commission_share_return_booked(*, out_return_no: str) -> bool:
    """Whether :func:`commission_share_returned` has booked return ``out_return_no``."""
    return Posting.objects.filter(key=f"wx:psr:{out_return_no}").exists()


def commission_share_returned(*, out_return_no: str, order_ref: str, amount: Decimal) -> Posting | None:
    """The provider returned ``amount`` of the commission (分账回退 after a refund): back
    into WeChat clearing and the commission payable (which the refund's reversal of the
    split then nets). Idempotent by ``out_return_no``."""
    amount = yuan(amount)
    if amount <= 0:
        return None
    return ledger.posting_create(
        key=f"wx:psr:{out_return_no}", kind=Posting.Kind.PAYOUT_RETURN,
        lines=[(ledger.system_account(Account.Kind.CLEARING), amount),
               (ledger.system_account(Account.Kind.COMMISSION), -amount)],
        ref=order_ref[:64], memo=f"platform commission returned {out_return_no}",
    )
