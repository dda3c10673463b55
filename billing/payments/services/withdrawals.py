"""Withdrawals to the member's WeChat change (merchant transfer): request, review, submit,
query, apply."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.money import to_fen, yuan
from evplatform.queue import task_queue_on_commit
from settlement import services as ledger
from settlement.models import Posting

from ..models import Withdrawal
from ..wechatpay import PayError
from .common import (
    WITHDRAWAL_TRANSIT,
    BillingError,
    NotificationMismatch,
    _gateway,
    _locked,
    _new_no,
)


@transaction.atomic
def withdrawal_request(*, member: Member, amount: Decimal) -> Withdrawal:
    """The member asks to withdraw ``amount`` yuan of wallet cash to their WeChat balance.
    The cash leaves the wallet at once (withdrawals in transit) and waits for review.

    Raises BillingError ``withdrawals_disabled`` (403), ``amount_out_of_range``,
    ``insufficient_funds`` (409).
    """
    policy = ledger.money_policy()
    if not policy.withdrawals_enabled:
        raise BillingError("withdrawals_disabled", _("Withdrawals are not offered."), 403)
    amount = yuan(amount)
    if not policy.min_withdrawal <= amount <= policy.max_withdrawal:
        raise BillingError(
            "amount_out_of_range",
            _("A withdrawal must be between %(min)s and %(max)s yuan.")
            % {"min": policy.min_withdrawal, "max": policy.max_withdrawal},
        )
    withdrawal = Withdrawal.objects.create(member=member, amount=amount, out_bill_no=_new_no("WD"))
    try:
        ledger.wallet_cash_out(
            member=member, amount=amount, transit=WITHDRAWAL_TRANSIT,
            kind=Posting.Kind.WITHDRAWAL_REQUEST, key=f"withdrawal:{withdrawal.pk}",
            ref=withdrawal.out_bill_no,
        )
    except ledger.InsufficientFunds:
        raise BillingError("insufficient_funds", _("Not enough balance."), 409) from None
    return withdrawal


@transaction.atomic
def withdrawal_review(
    *, withdrawal: Withdrawal, approve: bool, reviewer: AbstractBaseUser | None, note: str = ""
) -> Withdrawal:
    """Staff approve (the transfer is sent) or reject (the cash goes back to the wallet).
    Raises BillingError ``not_in_review``."""
    (withdrawal,) = _locked(Withdrawal, withdrawal.pk)
    if withdrawal.status != Withdrawal.Status.REVIEW:
        raise BillingError("not_in_review", _("This withdrawal is not waiting for review."), 409)
    withdrawal.reviewed_by, withdrawal.reviewed_at = reviewer, timezone.now()
    withdrawal.review_note = note[:200]
    withdrawal.status = Withdrawal.Status.APPROVED if approve else Withdrawal.Status.REJECTED
    withdrawal.save(update_fields=["reviewed_by", "reviewed_at", "review_note", "status"])
    if approve:
        task_queue_on_commit("billing.withdrawal_submit", withdrawal.pk)
    else:
        _withdrawal_return(withdrawal, Withdrawal.Status.REJECTED)
    return withdrawal


def withdrawal_submit(*, withdrawal_id: int) -> Withdrawal:
    """Send an approved transfer. After an unclear answer the bill is QUERIED first and
    sent again (same out_bill_no) only when WeChat says it does not exist, so the money
    is never sent twice."""
    withdrawal = Withdrawal.objects.select_related("member").get(pk=withdrawal_id)
    if withdrawal.status not in (Withdrawal.Status.APPROVED, Withdrawal.Status.UNCLEAR):
        return withdrawal
    # An unclear error keeps the UNCLEAR status below, so the query comes first next time.
    gateway = _gateway(partner=False)
    try:
        if withdrawal.status == Withdrawal.Status.UNCLEAR:
            known = gateway.transfer_query(withdrawal.out_bill_no)
            if known is not None:
                withdrawal = withdrawal_apply(data=known)
                if withdrawal.status != Withdrawal.Status.WAIT_USER_CONFIRM or withdrawal.package_info:
                    return withdrawal
                # The bill exists but its package_info was in the lost answer: the same
                # request again (same out_bill_no) returns the same bill, never a new one.
        data = gateway.transfer(
            out_bill_no=withdrawal.out_bill_no,
            openid=withdrawal.member.openid,
            amount_fen=to_fen(withdrawal.amount),
            remark=_("Wallet withdrawal")[:32],
            scene_id=ledger.money_policy().transfer_scene_id,
        )
    except PayError as exc:
        if exc.unclear:
            Withdrawal.objects.filter(pk=withdrawal.pk).update(
                status=Withdrawal.Status.UNCLEAR, fail_reason=str(exc)[:200]
            )
        else:
            with transaction.atomic():
                (withdrawal,) = _locked(Withdrawal, withdrawal.pk)
                withdrawal.fail_reason = f"{exc.code}: {exc.message}"[:200]
                withdrawal.save(update_fields=["fail_reason"])
                _withdrawal_return(withdrawal, Withdrawal.Status.FAILED)
        withdrawal.refresh_from_db()
        return withdrawal
    data.setdefault("transfer_amount", to_fen(withdrawal.amount))
    return withdrawal_apply(data=data)


def withdrawal_sync(*, withdrawal: Withdrawal) -> Withdrawal:
    """The query job: finish an unclear send, or learn the result of a confirmed one."""
    withdrawal = Withdrawal.objects.get(pk=withdrawal.pk)  # act on the current state
    if withdrawal.status in (Withdrawal.Status.APPROVED, Withdrawal.Status.UNCLEAR):
        return withdrawal_submit(withdrawal_id=withdrawal.pk)
    if withdrawal.status == Withdrawal.Status.WAIT_USER_CONFIRM and not withdrawal.package_info:
        Withdrawal.objects.filter(pk=withdrawal.pk).update(status=Withdrawal.Status.UNCLEAR)
        return withdrawal_submit(withdrawal_id=withdrawal.pk)
    if withdrawal.status != Withdrawal.Status.WAIT_USER_CONFIRM:
        return withdrawal
    try:
        data = _gateway(partner=False).transfer_query(withdrawal.out_bill_no)
    except PayError:
        return withdrawal
    return withdrawal_apply(data=data) if data else withdrawal


def withdrawal_apply(*, data: dict[str, Any]) -> Withdrawal:
    """Apply WeChat's transfer bill state (reply, query or notification)."""
    withdrawal = Withdrawal.objects.filter(out_bill_no=data.get("out_bill_no") or "").first()
    if withdrawal is None:
        raise NotificationMismatch(f"unknown out_bill_no {data.get('out_bill_no')!r}")
    amount = data.get("transfer_amount", to_fen(withdrawal.amount))
    if amount != to_fen(withdrawal.amount):
        raise NotificationMismatch(f"{withdrawal.out_bill_no}: amount {amount}")
    state = data.get("state", "")
    with transaction.atomic():
        (withdrawal,) = _locked(Withdrawal, withdrawal.pk)
        if withdrawal.status not in Withdrawal.OPEN:
            return withdrawal
        withdrawal.wechat_state = state
        withdrawal.transfer_bill_no = data.get("transfer_bill_no") or withdrawal.transfer_bill_no
        withdrawal.package_info = data.get("package_info") or withdrawal.package_info
        fields = ["wechat_state", "transfer_bill_no", "package_info"]
        if state == "SUCCESS":
            ledger.transit_settle(
                transit=WITHDRAWAL_TRANSIT, amount=withdrawal.amount,
                kind=Posting.Kind.WITHDRAWAL_SUCCESS, key=f"wx:transfer:{withdrawal.out_bill_no}",
                member=withdrawal.member, ref=withdrawal.out_bill_no,
            )
            withdrawal.status, withdrawal.finished_at = Withdrawal.Status.SUCCESS, timezone.now()
            fields += ["status", "finished_at"]
        elif state in ("FAIL", "CANCELLED"):
            withdrawal.fail_reason = data.get("fail_reason") or state
            fields.append("fail_reason")
            withdrawal.save(update_fields=fields)
            final = Withdrawal.Status.FAILED if state == "FAIL" else Withdrawal.Status.CANCELLED
            return _withdrawal_return(withdrawal, final)
        elif state in ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING", "CANCELING"):
            withdrawal.status = Withdrawal.Status.WAIT_USER_CONFIRM
            fields.append("status")
        withdrawal.save(update_fields=fields)
    return withdrawal


def _withdrawal_return(withdrawal: Withdrawal, status: str) -> Withdrawal:
    """Inside a transaction with the withdrawal locked: the cash goes back to the wallet."""
    ledger.transit_return(
        member=withdrawal.member, transit=WITHDRAWAL_TRANSIT, amount=withdrawal.amount,
        kind=Posting.Kind.WITHDRAWAL_RETURN, key=f"withdrawal:{withdrawal.pk}:return",
        ref=withdrawal.out_bill_no,
    )
    withdrawal.status, withdrawal.finished_at = status, timezone.now()
    withdrawal.save(update_fields=["status", "finished_at"])
    return withdrawal
