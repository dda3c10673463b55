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

Service-provider mode (the operator a sub-merchant of the platform's provider, the payment
made with ``sp_mchid``): the platform's commission on the order goes in the same split to the
provider (MERCHANT_ID ``sp_mchid``, relation SERVICE_PROVIDER), even when the owners' shares
cannot (they are then paid by statement). What reaches the provider leaves the operator's
commission payable (``settlement.profit_sharing.commission_share_paid``); a refund of the
order asks the same fraction back by 分账回退 (a merchant receiver can be returned from),
sent by the submit task and the reconcile job, once per cumulative amount due.

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
from settlement.allocation import proportional_part
from settlement.models import OwnerContract
from tenants.models import ServiceProvider

from ..models import Payment, ProfitShare
from ..wechatpay import PayError
from .common import _locked, _payment_gateway, logger

S = ProfitShare.Status
MAX_RECEIVERS = 50
WAIT_AFTER_PAYMENT = timedelta(seconds=65)  # WeChat: at least one minute after payment


def max_percent() -> Decimal:
    """The merchant's configured maximum split ratio (%), WeChat's default 30."""
    return Decimal(str(getattr(settings, "WECHATPAY_PROFIT_SHARING_MAX_PERCENT", 30)))


def _eligibility(
    payment: Payment, parts: dict[int, Decimal], openids: dict[int, str], commission: Decimal = ZERO
) -> str:
    """Why the owners' ``parts`` (with the platform's ``commission``) cannot go by 分账 (""
    when they can)."""
    if not payment.transaction_id:
        return "payment has no WeChat transaction"
    if missing := [oid for oid in parts if not openids.get(oid)]:
        return f"owners without an openid in the contract: {missing}"
    if len(parts) + (commission > 0) > MAX_RECEIVERS:
        return f"{len(parts)} receivers (WeChat allows {MAX_RECEIVERS})"
    total = sum(parts.values(), commission)
    limit = yuan(payment.amount * max_percent() / 100)
    if total > limit:
        return f"shares {total} above {max_percent()}% of the payment ({limit})"
    if total > payment.amount - payment.refunded_amount:
        return f"shares {total} above what is left after refunds"
    return ""


def profit_share_open(
    *, order_ref: str, parts: dict[int, Decimal], commission: Decimal = ZERO
) -> ProfitShare | None:
    """Open the 分账 of pay-per-order ``order_ref`` for the owners' ``parts`` ({user id:
    yuan}) and, for a payment made in service-provider mode, the platform's ``commission``
    (yuan) to the provider. Call it in the settlement transaction, after the split and the
    prepayment's settlement. None when the payment was not made for profit sharing.
    Idempotent."""
    payment = Payment.objects.filter(
        purpose=Payment.Purpose.PREPAY, order_ref=order_ref, status=Payment.Status.PAID,
        profit_sharing=True,
    ).first()
    if payment is None:
        return None
    if existing := ProfitShare.objects.filter(payment=payment).first():
        return existing
    parts = {oid: yuan(v) for oid, v in parts.items() if yuan(v) > 0}
    sp = ServiceProvider.current() if payment.sp_mchid else None
    commission = yuan(commission) if sp is not None and sp.commission_by_profit_sharing else ZERO
    commission = max(commission, ZERO)
    openids = dict(OwnerContract.objects.filter(owner_id__in=list(parts)).values_list("owner_id", "openid"))
    reason = "no owner share" if not parts else _eligibility(payment, parts, openids, commission)
    if reason:
        parts = {}  # the owners are paid by statement
    if commission and _eligibility(payment, parts, openids, commission):
        commission = ZERO  # not even the commission fits: it stays payable, on the statement
    share = ProfitShare.objects.create(
        payment=payment, order_ref=order_ref, out_order_no=f"PS{payment.out_trade_no}"[:64],
        status=S.PENDING if parts or commission else S.SKIPPED, reason=reason[:200],
        receivers=[
            {"owner_id": oid, "openid": openids[oid], "amount": str(amount)}
            for oid, amount in parts.items()
        ],
        amount=sum(parts.values(), ZERO),
        commission=commission, commission_mchid=payment.sp_mchid if commission else "",
        not_before=(payment.paid_at or timezone.now()) + WAIT_AFTER_PAYMENT,
    )
    if parts:
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
        _payment_gateway(share.payment).profit_sharing_unfreeze(
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
    if share.status == S.FINISHED:
        return _commission_return(share)
    if share.status not in (S.PENDING, S.UNCLEAR):
        return _unfreeze(share) if share.status in (S.SKIPPED, S.FAILED, S.CANCELLED) else share
    if timezone.now() < share.not_before:
        return share
    gateway = _payment_gateway(share.payment)
    tid = share.payment.transaction_id
    try:
        if share.status == S.UNCLEAR:
            known = gateway.profit_sharing_query(transaction_id=tid, out_order_no=share.out_order_no)
            if known is not None:
                return profit_share_apply(share_id=share.pk, data=known)
        for r in share.receivers:
            gateway.profit_sharing_receiver_add(openid=r["openid"])
        if share.commission:
            gateway.profit_sharing_provider_add()
        data = gateway.profit_sharing_order(
            transaction_id=tid, out_order_no=share.out_order_no,
            receivers=[(r["openid"], to_fen(Decimal(r["amount"])), "充电站站长分成")
                       for r in share.receivers],
            merchants=[(share.commission_mchid, to_fen(share.commission), "平台服务费")]
            if share.commission else [],
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
    if share.commission and any(
        r.get("type") == "MERCHANT_ID" and r.get("account") == share.commission_mchid
        and r.get("result") == "SUCCESS" and r.get("amount") == to_fen(share.commission)
        for r in data.get("receivers") or []
    ):
        ledger_ps.commission_share_paid(out_order_no=share.out_order_no, order_ref=share.order_ref,
                                        amount=share.commission)
        share.commission_paid = share.commission
    share.status, share.finished_at, share.unfrozen = S.FINISHED, timezone.now(), True
    if returned:
        share.reason = f"not paid to owners {sorted(returned)}"
    elif share.receivers:
        share.reason = ""
    share.save(update_fields=["order_id", "status", "finished_at", "unfrozen", "reason",
                              "commission_paid", "updated_at"])
    if share.commission_return_due > share.commission_returned:  # refunded while in flight
        task_queue_on_commit("billing.profit_share_submit", share.pk)
    return share


def profit_share_sync(*, share_id: int) -> ProfitShare:
    """The query job: send a pending or unclear split, learn the result of a processing
    one, release the funds of one that will not be split."""
    share = ProfitShare.objects.select_related("payment").get(pk=share_id)
    if share.status != S.PROCESSING:
        return profit_share_submit(share_id=share.pk)  # also a commission return due
    try:
        data = _payment_gateway(share.payment).profit_sharing_query(
            transaction_id=share.payment.transaction_id, out_order_no=share.out_order_no)
    except PayError:
        return share
    return profit_share_apply(share_id=share.pk, data=data) if data else share


@transaction.atomic
def profit_share_order_refunded(
    *, order_ref: str, paid: Decimal | None = None, refunded: Decimal | None = None
) -> ProfitShare | None:
    """The order (``paid`` yuan) has now been refunded ``refunded`` yuan in all. A split not
    yet sent is cancelled: the shares go back to the payables (where the split's refund
    reversal nets them) and the funds are released by the reconcile job. One already sent
    stays for the owners (see the module); the platform's commission in it is asked back in
    the same proportion (分账回退, after commit)."""
    share = ProfitShare.objects.filter(order_ref=order_ref).first()
    if share is None:
        return None
    (share,) = _locked(ProfitShare, share.pk)
    if share.status != S.PENDING:
        if share.commission and share.status in (S.UNCLEAR, S.PROCESSING, S.FINISHED) and paid:
            due = proportional_part(share.commission, min(yuan(refunded or 0), yuan(paid)), yuan(paid))
            if due > share.commission_return_due:
                share.commission_return_due = due
                share.save(update_fields=["commission_return_due", "updated_at"])
                if share.status == S.FINISHED:
                    task_queue_on_commit("billing.profit_share_submit", share.pk)
        return share
    share.status, share.finished_at, share.reason = S.CANCELLED, timezone.now(), "order refunded"
    share.save(update_fields=["status", "finished_at", "reason", "updated_at"])
    ledger_ps.profit_share_close(out_order_no=share.out_order_no, order_ref=order_ref,
                                 paid={}, returned=_parts(share))
    return share


def _commission_return(share: ProfitShare) -> ProfitShare:
    """Ask the provider for the commission a refund took back (分账回退 from MERCHANT_ID
    ``commission_mchid``), up to what it received. ``out_return_no`` is made from the
    cumulative amount due, so a retry repeats the same return. The number sent is kept
    (``commission_return_no``) until its answer is known: a return whose answer was lost is
    asked about (same number) before any other is sent, even when a later refund has raised
    the amount due meanwhile, so nothing is returned twice or left unrecorded. SUCCESS
    moves the money back into the commission payable, once (``commission_share_returned``)."""
    gateway = _payment_gateway(share.payment)
    if share.commission_return_no:
        try:
            data = gateway.profit_sharing_return_query(out_order_no=share.out_order_no,
                                                       out_return_no=share.commission_return_no)
        except PayError as exc:
            return _return_failed(share, exc)
        if data is not None and data.get("result") == "PROCESSING":
            return share  # the reconcile job asks again
        share = _return_answered(share, share.commission_return_no, data)
    want = min(share.commission_return_due, share.commission_paid) - share.commission_returned
    if want <= 0:
        return share
    out_return_no = f"PR{share.pk}-{to_fen(share.commission_returned + want)}"
    ProfitShare.objects.filter(pk=share.pk).update(commission_return_no=out_return_no)
    share.commission_return_no = out_return_no
    try:
        data = gateway.profit_sharing_return(
            out_return_no=out_return_no, out_order_no=share.out_order_no,
            return_mchid=share.commission_mchid, amount_fen=to_fen(want),
            description="用户退款，退回平台服务费")
    except PayError as exc:
        return _return_failed(share, exc)
    if data.get("result") == "PROCESSING":
        return share
    return _return_answered(share, out_return_no, data)


def _return_failed(share: ProfitShare, exc: PayError) -> ProfitShare:
    """No answer (or a refusal) for a commission return: counted and retried by the
    reconcile job, which asks about the number in flight first."""
    logger.warning("profit sharing %s: commission return failed: %s", share.out_order_no, exc)
    share.attempts, share.reason = share.attempts + 1, str(exc)[:200]
    ProfitShare.objects.filter(pk=share.pk).update(attempts=share.attempts, reason=share.reason)
    return share


def _return_answered(share: ProfitShare, out_return_no: str, data: dict | None) -> ProfitShare:
    """The final answer for return ``out_return_no``: SUCCESS books its amount (fen in
    ``data["amount"]``) once; FAILED or unknown to WeChat (``data`` None) books nothing.
    Either way the number is no longer in flight."""
    with transaction.atomic():
        (locked,) = _locked(ProfitShare, share.pk)
        if data is not None and data.get("result") == "SUCCESS":
            amount = yuan(Decimal(data.get("amount", 0)) / 100)
            # (under the share's row lock: booked and counted once per return number)
            if not ledger_ps.commission_share_return_booked(out_return_no=out_return_no):
                ledger_ps.commission_share_returned(
                    out_return_no=out_return_no, order_ref=locked.order_ref, amount=amount)
                locked.commission_returned += amount
        elif data is not None:
            logger.warning("profit sharing %s: commission return %s %s", share.out_order_no,
                           out_return_no, data.get("fail_reason") or data.get("result"))
        if locked.commission_return_no == out_return_no:
            locked.commission_return_no = ""
        locked.save(update_fields=["commission_returned", "commission_return_no", "updated_at"])
    locked.payment = share.payment
    return locked
