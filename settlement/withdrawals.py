"""Station owners' withdrawals: an owner asks to be paid part of their available payable now,
staff review it (two different approvers above the money policy's threshold), and it is paid
by WeChat merchant transfer (``billing.owner_payout_submit``, the statements' path) or an
offline bank transfer recorded with its reference.

Ledger: the request moves the amount from the owner's payable to payouts in transit at once
(so it cannot be asked for twice) and writes a ``withdrawal`` payable line (−amount) that the
owner's next statement nets off (the owner is never paid twice for one share). A rejection or
a failed transfer moves it back (``withdrawal_return`` line, +amount); a paid one moves it on
to WeChat clearing or the bank. ``ledger_verify``'s payable check holds throughout: the lines
carry the withdrawal, its payout is not counted again.

Available (``owner_available``): the payable, less what is already committed — statements
built but not paid (draft, confirmed, paying) — and less the shares still inside the refund
window (lines not on a statement from the last ``delay_days`` of the owner's contract), never
below 0. Amounts in yuan.

Locks: the owner's payable row (serialises requests with settlements, refunds and statement
builds for the owner), then the withdrawal row.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.money import ZERO, yuan
from evplatform.queue import task_queue_on_commit

from . import services as ledger
from .models import (
    Account,
    OwnerContract,
    OwnerWithdrawal,
    Payout,
    Posting,
    SplitLine,
    Statement,
)
from .splits import SettlementError

W = OwnerWithdrawal.Status
Method = OwnerContract.Method


def owner_available(owner_id: int, *, now=None) -> Decimal:
    """What the owner may withdraw now (yuan, ≥ 0); see the module's docstring."""
    now = now or timezone.now()
    account = Account.objects.filter(code=f"{Account.Kind.OWNER_PAYABLE}:{owner_id}").first()
    if account is None:
        return ZERO
    contract = OwnerContract.objects.filter(owner_id=owner_id).first()
    delay = contract.delay_days if contract else 0
    committed = Statement.objects.filter(
        owner_id=owner_id, status__in=[Statement.Status.DRAFT, Statement.Status.CONFIRMED,
                                       Statement.Status.PAYING], net__gt=0,
    ).aggregate(s=Sum("net"))["s"] or ZERO
    recent = SplitLine.objects.filter(
        owner_id=owner_id, statement__isnull=True, kind=SplitLine.Kind.SHARE,
        occurred_at__gte=now - timedelta(days=delay),
    ).aggregate(s=Sum("amount"))["s"] or ZERO
    return max(yuan(account.balance - committed - recent), ZERO)


def _number(owner_id: int) -> str:
    sequence = OwnerWithdrawal.objects.filter(owner_id=owner_id).count() + 1
    # Letters and digits only: it is part of the WeChat out_bill_no of its payout.
    return f"OW{timezone.now():%Y%m%d}O{owner_id}N{sequence}"


def _line(withdrawal: OwnerWithdrawal, kind: str, amount: Decimal, posting: Posting) -> None:
    SplitLine.objects.create(owner_id=withdrawal.owner_id, kind=kind, amount=amount,
                             withdrawal=withdrawal, posting=posting, occurred_at=timezone.now())


@transaction.atomic
def withdrawal_request(*, owner_id: int, amount: Decimal) -> OwnerWithdrawal:
    """The owner asks for ``amount`` yuan. Raises SettlementError ``no_contract`` (the owner
    has no contract), ``no_openid`` (paid by WeChat but no openid on the contract),
    ``withdrawal_below_minimum``, ``withdrawal_exceeds_available`` (409)."""
    amount = yuan(amount)
    contract = OwnerContract.objects.filter(owner_id=owner_id).first()
    if contract is None:
        raise SettlementError("no_contract", _("This station owner has no settlement contract."))
    if contract.method == Method.WECHAT and not contract.openid:
        raise SettlementError("no_openid", _("The owner's contract has no WeChat openid."))
    policy = ledger.money_policy()
    if amount < max(policy.owner_min_withdrawal, Decimal("0.01")):
        raise SettlementError(
            "withdrawal_below_minimum",
            _("The minimum withdrawal is %(min)s yuan.") % {"min": policy.owner_min_withdrawal},
        )
    payable = ledger.owner_account(owner_id)
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    ledger._lock([payable, transit])
    available = owner_available(owner_id)
    if amount > available:
        raise SettlementError(
            "withdrawal_exceeds_available",
            _("Only %(available)s yuan can be withdrawn now.") % {"available": available}, 409,
        )
    withdrawal = OwnerWithdrawal.objects.create(
        number=_number(owner_id), owner_id=owner_id, amount=amount, method=contract.method,
        two_person=amount > policy.owner_withdrawal_two_person_above,
    )
    posting = ledger.posting_create(
        key=f"withdrawal:{withdrawal.number}", kind=Posting.Kind.PAYOUT,
        lines=[(payable, amount), (transit, -amount)], ref=withdrawal.number,
        memo=f"owner withdrawal {withdrawal.number}",
    )
    _line(withdrawal, SplitLine.Kind.WITHDRAWAL, -amount, posting)
    return withdrawal


def _locked(withdrawal_id: int) -> OwnerWithdrawal:
    return OwnerWithdrawal.objects.select_for_update().get(pk=withdrawal_id)


@transaction.atomic
def withdrawal_approve(*, withdrawal_id: int, user) -> OwnerWithdrawal:
    """One approval. Below the threshold it is the only one; above it, the first waits for a
    second approver, who must be someone else. The last approval pays it: a WeChat transfer
    is sent after commit; a bank transfer waits for its reference
    (``withdrawal_pay_offline``). Raises SettlementError ``withdrawal_not_pending`` (409),
    ``own_withdrawal`` (403, an owner approving their own), ``same_approver`` (409)."""
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status not in (W.REQUESTED, W.SECOND_REVIEW):
        raise SettlementError("withdrawal_not_pending", _("This withdrawal is not waiting for review."), 409)
    if user.pk == withdrawal.owner_id:
        raise SettlementError("own_withdrawal", _("Nobody approves their own withdrawal."), 403)
    now = timezone.now()
    if withdrawal.status == W.REQUESTED:
        withdrawal.first_approver, withdrawal.first_approved_at = user, now
        withdrawal.status = W.SECOND_REVIEW if withdrawal.two_person else W.APPROVED
    else:
        if user.pk == withdrawal.first_approver_id:
            raise SettlementError(
                "same_approver", _("The second approval must come from someone else."), 409
            )
        withdrawal.second_approver, withdrawal.second_approved_at = user, now
        withdrawal.status = W.APPROVED
    withdrawal.save()
    if withdrawal.status == W.APPROVED and withdrawal.method == Method.WECHAT:
        payout = Payout.objects.create(
            withdrawal=withdrawal, method=Method.WECHAT, amount=withdrawal.amount,
            out_bill_no=f"PO{withdrawal.number}T{withdrawal.payouts.count() + 1}", created_by=user,
        )
        task_queue_on_commit("billing.owner_payout_submit", payout.pk)
    return withdrawal


def _give_back(withdrawal: OwnerWithdrawal, key: str) -> None:
    payable = ledger.owner_account(withdrawal.owner_id)
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    posting = ledger.posting_create(
        key=key, kind=Posting.Kind.PAYOUT_RETURN,
        lines=[(transit, withdrawal.amount), (payable, -withdrawal.amount)], ref=withdrawal.number,
    )
    _line(withdrawal, SplitLine.Kind.WITHDRAWAL_RETURN, withdrawal.amount, posting)


@transaction.atomic
def withdrawal_reject(*, withdrawal_id: int, user, reason: str) -> OwnerWithdrawal:
    """Refuse a withdrawal under review; the amount goes back to the owner's payable.
    Raises SettlementError ``reason_required``, ``withdrawal_not_pending`` (409)."""
    if not reason.strip():
        raise SettlementError("reason_required", _("Say why the withdrawal is rejected."))
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status not in (W.REQUESTED, W.SECOND_REVIEW):
        raise SettlementError("withdrawal_not_pending", _("This withdrawal is not waiting for review."), 409)
    _give_back(withdrawal, f"withdrawal:{withdrawal.number}:rejected")
    withdrawal.status, withdrawal.rejected_by = W.REJECTED, user
    withdrawal.reason, withdrawal.finished_at = reason.strip()[:200], timezone.now()
    withdrawal.save()
    return withdrawal


@transaction.atomic
def withdrawal_pay_offline(*, withdrawal_id: int, reference: str, user) -> OwnerWithdrawal:
    """Record the bank transfer of an approved bank-method withdrawal: payouts in transit →
    bank. Raises SettlementError ``reference_required``, ``withdrawal_not_approved`` (409),
    ``wrong_method`` (409, a WeChat withdrawal is paid by its transfer)."""
    if not reference.strip():
        raise SettlementError("reference_required", _("Give the bank transfer's reference."))
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status != W.APPROVED:
        raise SettlementError("withdrawal_not_approved", _("Only an approved, unpaid withdrawal can be paid."), 409)
    if withdrawal.method != Method.BANK:
        raise SettlementError("wrong_method", _("This withdrawal is paid by WeChat transfer."), 409)
    transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
    ledger.posting_create(
        key=f"withdrawal:{withdrawal.number}:bank", kind=Posting.Kind.PAYOUT_SUCCESS,
        lines=[(transit, withdrawal.amount), (ledger.system_account(Account.Kind.BANK), -withdrawal.amount)],
        ref=withdrawal.number, memo=f"bank transfer {reference}"[:200],
    )
    withdrawal.status, withdrawal.reference = W.PAID, reference.strip()[:64]
    withdrawal.finished_at = timezone.now()
    withdrawal.save()
    return withdrawal


def payout_finished(payout: Payout, *, success: bool, reason: str) -> None:
    """``statements.payout_finish`` for a withdrawal's WeChat transfer (caller holds the
    payout's lock and a transaction): success moves transit → clearing and marks it paid;
    failure gives the amount back to the payable."""
    withdrawal = _locked(payout.withdrawal_id)
    if success:
        transit = ledger.system_account(Account.Kind.PAYOUT_TRANSIT)
        ledger.posting_create(
            key=f"wx:transfer:{payout.out_bill_no}", kind=Posting.Kind.PAYOUT_SUCCESS,
            lines=[(transit, payout.amount), (ledger.system_account(Account.Kind.CLEARING), -payout.amount)],
            ref=payout.out_bill_no,
        )
        withdrawal.status = W.PAID
    else:
        _give_back(withdrawal, f"withdrawal:{withdrawal.number}:failed")
        withdrawal.status, withdrawal.reason = W.FAILED, reason[:200]
    withdrawal.finished_at = timezone.now()
    withdrawal.save()
