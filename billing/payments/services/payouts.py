"""Station-owner payouts by WeChat Pay merchant transfer (商家转账, scene 佣金报酬): send the
transfer of a payout opened by ``settlement.statements.statement_pay_wechat`` or by the last
approval of an owner's withdrawal (``settlement.withdrawals``), query an
unclear one, apply WeChat's answer. The ledger side (payable → in transit → clearing, or
back to the payable on failure) is ``settlement.statements``."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from evplatform.money import to_fen
from settlement import statements
from settlement.models import OwnerContract, Payout

from ..wechatpay import PayError
from .common import NotificationMismatch, _gateway

SUCCESS, FAILED = "SUCCESS", ("FAIL", "CANCELLED")
WAITING = ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING", "CANCELING")

# WeChat's 佣金报酬 (commission) transfer scene, and the report its rules ask for.
COMMISSION_SCENE = "1005"
OWNER_PAYOUT_PREFIX = "PO"  # settlement.statements numbers owner payouts PO…; withdrawals WD…


def owner_payout_submit(*, payout_id: int) -> Payout:
    """Send (or, after an unclear answer, first query) the payout's transfer to the owner's
    openid. The same out_bill_no is reused, so the money is never sent twice."""
    payout = Payout.objects.select_related("statement", "withdrawal").get(pk=payout_id)
    if payout.status not in (Payout.Status.SENT, Payout.Status.UNCLEAR):
        return payout
    contract = OwnerContract.objects.get(owner_id=payout.owner_id)
    gateway = _gateway(partner=False)
    try:
        if payout.status == Payout.Status.UNCLEAR:
            known = gateway.transfer_query(payout.out_bill_no)
            if known is not None:
                return owner_payout_apply(data=known)
        data = gateway.transfer(
            out_bill_no=payout.out_bill_no,
            openid=contract.openid,
            amount_fen=to_fen(payout.amount),
            remark=_("Station earnings")[:32],
            scene_id=COMMISSION_SCENE,
            report_infos=[
                {"info_type": "岗位类型", "info_content": "充电站站长"},
                {"info_type": "报酬说明", "info_content": (
                    f"结算单 {payout.statement.number}" if payout.statement_id
                    else f"站长提现 {payout.withdrawal.number}"
                )},
            ],
        )
    except PayError as exc:
        if exc.unclear:
            Payout.objects.filter(pk=payout.pk).update(
                status=Payout.Status.UNCLEAR, fail_reason=str(exc)[:200]
            )
            return Payout.objects.get(pk=payout.pk)
        return statements.payout_finish(
            payout_id=payout.pk, success=False, reason=f"{exc.code}: {exc.message}"
        )
    data.setdefault("transfer_amount", to_fen(payout.amount))
    return owner_payout_apply(data=data)


def owner_payout_sync(*, payout_id: int) -> Payout:
    """The query job: resend an unclear payout or learn the result of a waiting one."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.status in (Payout.Status.SENT, Payout.Status.UNCLEAR):
        return owner_payout_submit(payout_id=payout.pk)
    if payout.status != Payout.Status.WAIT_USER_CONFIRM:
        return payout
    try:
        data = _gateway(partner=False).transfer_query(payout.out_bill_no)
    except PayError:
        return payout
    return owner_payout_apply(data=data) if data else payout


def owner_payout_apply(*, data: dict[str, Any]) -> Payout:
    """Apply WeChat's transfer bill state (reply, query or notification) to the payout."""
    payout = Payout.objects.filter(out_bill_no=data.get("out_bill_no") or "").first()
    if payout is None:
        raise NotificationMismatch(f"unknown out_bill_no {data.get('out_bill_no')!r}")
    if data.get("transfer_amount", to_fen(payout.amount)) != to_fen(payout.amount):
        raise NotificationMismatch(f"{payout.out_bill_no}: amount {data.get('transfer_amount')}")
    state = data.get("state", "")
    if state == SUCCESS:
        return statements.payout_finish(payout_id=payout.pk, success=True)
    if state in FAILED:
        return statements.payout_finish(
            payout_id=payout.pk, success=False, reason=data.get("fail_reason") or state
        )
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout.pk)
        if payout.status in Payout.OPEN and state in WAITING:
            payout.status = Payout.Status.WAIT_USER_CONFIRM
            payout.transfer_bill_no = data.get("transfer_bill_no") or payout.transfer_bill_no
            payout.package_info = data.get("package_info") or payout.package_info
            payout.save(update_fields=["status", "transfer_bill_no", "package_info"])
    return payout
