"""WeChat Pay 分账 (profit sharing) of pay-per-order payments: the owners' shares of an order
sent to their WeChat after settlement, where the station's split rule says so and WeChat's
limits fit (``../shared/reference/wechat-pay-and-billing.md`` §6).

1. ``prepay_create`` makes the payment with ``settle_info.profit_sharing`` when the rule in
   force says so (``charging.services.order_prepay_create`` asks).
2. ``profit_share_open`` (in the order's settlement transaction, after the split): one
   :class:`ProfitShare` per payment. Eligible — every owner has an openid in the contract, at
   most 50 receivers, the shares at most ``MAX_PERCENT`` of the payment and of what is left
   after the unused prepayment's refund — it is PENDING, not before a minute after payment,
   and the shares move to payouts in transit (``settlement.profit_sharing``). Otherwise it is
   SKIPPED with the reason: the owners are paid by statement, the frozen funds released.
3. ``profit_share_submit`` (task, after commit, and the reconcile job): receivers added, the
   split requested with ``out_order_no`` = ``PS<out_trade_no>`` and ``unfreeze_unsplit``; an
   unclear answer (timeout, 5xx) makes it UNCLEAR and the next attempt queries before sending,
   so WeChat splits exactly once; a refusal makes it FAILED (shares back to the payables).
4. ``profit_share_sync`` queries PROCESSING ones; ``profit_share_apply`` applies the result:
   FINISHED — each receiver SUCCESS is paid (transit → clearing), CLOSED goes back to the
   payable.
5. A refund of the order (``profit_share_order_refunded``): before the split was sent it is
   CANCELLED (shares back to the payables, whose refund reversal then nets them; the frozen
   rest is released). After it, the owners are PERSONAL_OPENID receivers, from whom WeChat
   allows no 分账回退: the split's reversal takes the payable negative and the next statement
   nets it off (the issue's rule for an owner already paid).

WeChat calls are made outside transactions; state changes under the row lock.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from evplatform.money import ZERO, to_fen, yuan
from evplatform.queue import task_queue_on_commit
from settlement import profit_sharing as ledger_ps
from settlement.models import OwnerContract

from ..models import Payment, ProfitShare
from ..wechatpay import PayError
from .common import _gateway, _locked, logger

S = ProfitShare.Status
MAX_RECEIVERS = 50
WAIT_AFTER_PAYMENT = timedelta(seconds=65)  # WeChat: at least one minute after payment


def max_percent() -> Decimal:
    """The merchant's configured maximum split ratio (%), WeChat's default 30."""
    return Decimal(str(getattr(settings, "WECHATPAY_PROFIT_SHARING_MAX_PERCENT", 30)))


def _eligibility(payment: Payment, parts: dict[int, Decimal], openids: dict[int, str]) -> str:
    """Why the owners' ``parts`` cannot go by 分账 ("" when they can)."""
    if not payment.transaction_id:
        return "payment has no WeChat transaction"
    if missing := [oid for oid in parts if not openids.get(oid)]:
        return f"owners without an openid in the contract: {missing}"
    if len(parts) > MAX_RECEIVERS:
        return f"{len(parts)} receivers (WeChat allows {MAX_RECEIVERS})"
    total = sum(parts.values(), ZERO)
    limit = yuan(payment.amount * max_percent() / 100)
    if total > limit:
        return f"shares {total} above {max_percent()}% of the payment ({limit})"
    if total > payment.amount - payment.refunded_amount:
        return f"shares {total} above what is left after refunds"
    return ""


def profit_share_open(*, order_ref: str, parts: dict[int, Decimal]) -> ProfitShare | None:
    """Open the 分账 of pay-per-order ``order_ref`` for the owners' ``parts`` ({user id:
    yuan}). Call it in the settlement transaction, after the split and the prepayment's
    settlement. None when the payment was not made for profit sharing. Idempotent."""
    payment = Payment.objects.filter(
        purpose=Payment.Purpose.PREPAY, order_ref=order_ref, status=Payment.Status.PAID,
        profit_sharing=True,
    ).first()
    if payment is None:
        return None
    if existing := ProfitShare.objects.filter(payment=payment).first():
        return existing
    parts = {oid: yuan(v) for oid, v in parts.items() if yuan(v) > 0}
    openids = dict(OwnerContract.objects.filter(owner_id__in=list(parts)).values_list("owner_id", "openid"))
    reason = "no owner share" if not parts else _eligibility(payment, parts, openids)
    share = ProfitShare.objects.create(
        payment=payment, order_ref=order_ref, out_order_no=f"PS{payment.out_trade_no}"[:64],
        status=S.SKIPPED if reason else S.PENDING, reason=reason[:200],
        receivers=[] if reason else [
            {"owner_id": oid, "openid": openids[oid], "amount": str(amount)}
            for oid, amount in parts.items()
        ],
        amount=ZERO if reason else sum(parts.values(), ZERO),
        not_before=(payment.paid_at or timezone.now()) + WAIT_AFTER_PAYMENT,
    )
    if not reason:
        ledger_ps.profit_share_hold(out_order_no=share.out_order_no, order_ref=order_ref, parts=parts)
    delay = max((share.not_before - timezone.now()).total_seconds(), 0) + 1
    task_queue_on_commit("billing.profit_share_submit", share.pk, countdown=int(delay))
    return share


def _parts(share: ProfitShare) -> dict[int, Decimal]:
    return {int(r["owner_id"]): Decimal(r["amount"]) for r in share.receivers}


def _unfreeze(share: ProfitShare) -> ProfitShare:
    """Release the frozen funds of a payment that will not be split (skipped, failed,
    cancelled). Retried by the reconcile job until WeChat says yes."""
    if share.unfrozen or share.status in ProfitShare.OPEN or share.status == S.FINISHED:
        return share
    if timezone.now() < share.not_before:
        return share
    try:
        _gateway().profit_sharing_unfreeze(
            transaction_id=share.payment.transaction_id, out_order_no=f"{share.out_order_no}U",
            description="解冻全部剩余资金")
    except PayError as exc:
        logger.warning("profit sharing %s: unfreeze failed: %s", share.out_order_no, exc)
        ProfitShare.objects.filter(pk=share.pk).update(attempts=share.attempts + 1)
        return share
    ProfitShare.objects.filter(pk=share.pk).update(unfrozen=True)
    share.unfrozen = True
    return share


def profit_share_submit(*, share_id: int) -> ProfitShare:
    """Send the split (or, after an unclear answer, first query it). Not before
    ``not_before``; a finished, failed or cancelled split is returned as it is."""
    share = ProfitShare.objects.select_related("payment").get(pk=share_id)
    if share.status not in (S.PENDING, S.UNCLEAR):
        return _unfreeze(share) if share.status in (S.SKIPPED, S.FAILED, S.CANCELLED) else share
    if timezone.now() < share.not_before:
        return share
    gateway = _gateway()
    tid = share.payment.transaction_id
    try:
        if share.status == S.UNCLEAR:
            known = gateway.profit_sharing_query(transaction_id=tid, out_order_no=share.out_order_no)
            if known is not None:
                return profit_share_apply(share_id=share.pk, data=known)
        for r in share.receivers:
            gateway.profit_sharing_receiver_add(openid=r["openid"])
        data = gateway.profit_sharing_order(
            transaction_id=tid, out_order_no=share.out_order_no,
            receivers=[(r["openid"], to_fen(Decimal(r["amount"])), "充电站站长分成")
                       for r in share.receivers],
            unfreeze_unsplit=True,
        )
    except PayError as exc:
        with transaction.atomic():
            (locked,) = _locked(ProfitShare, share.pk)
            if locked.status not in (S.PENDING, S.UNCLEAR):
                return locked
            locked.attempts += 1
            locked.reason = str(exc)[:200]
            if exc.unclear:
                locked.status = S.UNCLEAR
                locked.save(update_fields=["attempts", "reason", "status", "updated_at"])
                return locked
            locked.status, locked.finished_at = S.FAILED, timezone.now()
            locked.save(update_fields=["attempts", "reason", "status", "finished_at", "updated_at"])
            ledger_ps.profit_share_close(out_order_no=locked.out_order_no, order_ref=locked.order_ref,
                                         paid={}, returned=_parts(locked))
        return _unfreeze(locked)
    return profit_share_apply(share_id=share.pk, data=data)


@transaction.atomic
def profit_share_apply(*, share_id: int, data: dict[str, Any]) -> ProfitShare:
    """Apply WeChat's answer (reply or query) to the split. PROCESSING: waiting (queried by
    the reconcile job); FINISHED: receivers SUCCESS paid, CLOSED back to the payables."""
    (share,) = _locked(ProfitShare, share_id)
    if share.status not in ProfitShare.OPEN:
        return share
    share.order_id = data.get("order_id") or share.order_id
    if data.get("state") != "FINISHED":
        share.status = S.PROCESSING
        share.save(update_fields=["order_id", "status", "updated_at"])
        return share
    by_openid = {r["openid"]: int(r["owner_id"]) for r in share.receivers}
    parts = _parts(share)
    paid = {}
    for r in data.get("receivers") or []:
        oid = by_openid.get(r.get("account"))
        if oid is not None and r.get("result") == "SUCCESS" and r.get("amount") == to_fen(parts[oid]):
            paid[oid] = parts[oid]
    returned = {oid: amount for oid, amount in parts.items() if oid not in paid}
    ledger_ps.profit_share_close(out_order_no=share.out_order_no, order_ref=share.order_ref,
                                 paid=paid, returned=returned)
    share.status, share.finished_at, share.unfrozen = S.FINISHED, timezone.now(), True
    share.reason = "" if not returned else f"not paid to owners {sorted(returned)}"
    share.save(update_fields=["order_id", "status", "finished_at", "unfrozen", "reason", "updated_at"])
    return share


def profit_share_sync(*, share_id: int) -> ProfitShare:
    """The query job: send a pending or unclear split, learn the result of a processing
    one, release the funds of one that will not be split."""
    share = ProfitShare.objects.select_related("payment").get(pk=share_id)
    if share.status != S.PROCESSING:
        return profit_share_submit(share_id=share.pk)
    try:
        data = _gateway().profit_sharing_query(
            transaction_id=share.payment.transaction_id, out_order_no=share.out_order_no)
    except PayError:
        return share
    return profit_share_apply(share_id=share.pk, data=data) if data else share


@transaction.atomic
def profit_share_order_refunded(*, order_ref: str) -> ProfitShare | None:
    """The order was refunded (in part or whole). A split not yet sent is cancelled: the
    shares go back to the payables (where the split's refund reversal nets them) and the
    funds are released by the reconcile job. One already sent stays (see the module)."""
    share = ProfitShare.objects.filter(order_ref=order_ref).first()
    if share is None:
        return None
    (share,) = _locked(ProfitShare, share.pk)
    if share.status != S.PENDING:
        return share
    share.status, share.finished_at, share.reason = S.CANCELLED, timezone.now(), "order refunded"
    share.save(update_fields=["status", "finished_at", "reason", "updated_at"])
    ledger_ps.profit_share_close(out_order_no=share.out_order_no, order_ref=order_ref,
                                 paid={}, returned=_parts(share))
    return share
