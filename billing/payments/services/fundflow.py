"""Reconciliation against WeChat Pay's fund-flow bill (资金账单, basic account), beside the
trade bill (``bills``): download one China-time day's bill (gzip, SHA1-checked;
``Gateway.fundflow_bill``) and match every movement of the merchant's money to our records
by the merchant's own number in 业务凭证号:

=================  ======  ==================================================================
业务类型            收支     our record (final that day)
=================  ======  ==================================================================
交易               收入     a paid :class:`Payment` (``out_trade_no``, ``paid_at``)
退款               支出     a finished :class:`PaymentRefund` (``out_refund_no``)
商家转账           支出     a paid owner payout (``settlement.Payout``) or member withdrawal
                           (:class:`Withdrawal`) (``out_bill_no``, ``finished_at``)
分账               支出     a finished :class:`ProfitShare` (``out_order_no``: the receivers
                           paid, summed)
分账回退           收入     none (we request no returns): always listed
扣除交易手续费      either   not matched (WeChat's fee is not in our ledger); summed
=================  ======  ==================================================================

Each difference is a :class:`BillMismatch` (with ``business`` = 业务类型) and what to do. A
re-run replaces the day's check; the daily job (``bills_reconcile_due``) runs both bills.
Amounts in yuan.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from evplatform.money import ZERO, yuan
from settlement.models import Payout

from ..models import BillCheck, BillMismatch, Payment, PaymentRefund, ProfitShare, Withdrawal
from ..wechatpay import PayError
from .common import _day_bounds, _gateway

K = BillMismatch.Kind
PAY, REFUND, TRANSFER, SHARE, SHARE_RETURN, FEE = "交易", "退款", "商家转账", "分账", "分账回退", "扣除交易手续费"


@dataclass(frozen=True)
class FundLine:
    """One movement of the fund-flow bill: ``amount`` yuan, + in (收入), − out (支出)."""

    business: str
    voucher: str
    amount: Decimal


def parse_fundflow_bill(text: str) -> list[FundLine]:
    """The movement lines of a fund-flow bill (the totals are left out)."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        return []
    col = {name.strip(): i for i, name in enumerate(rows[0])}
    lines = []
    for row in rows[1:]:
        if not row or not row[0].startswith("`"):
            if row and row[0].startswith("资金流水总笔数"):
                break
            continue
        value = [v.lstrip("`").strip() for v in row]

        def get(name: str, value=value) -> str:
            return value[col[name]] if name in col and col[name] < len(value) else ""

        amount = yuan(Decimal(get("收支金额(元)") or "0"))
        lines.append(FundLine(business=get("业务类型"), voucher=get("业务凭证号"),
                              amount=amount if get("收支类型") == "收入" else -amount))
    return lines


ACTIONS = {
    K.NOT_IN_RECORDS: _("WeChat moved money we have no record of: look the voucher number up in "
                        "the WeChat Pay merchant platform and record it by a manual adjustment."),
    K.NOT_IN_BILL: _("We recorded a movement WeChat's fund-flow bill does not show: query it (billing "
                     "reconcile); if it never happened, reverse its posting. (A movement just before "
                     "midnight can be on the next day's bill.)"),
    K.AMOUNT: _("The amounts differ: compare the movement in the merchant platform with our record; "
                "correct our side by a manual adjustment."),
    K.STATE: _("WeChat has moved the money but our record is not final: run the query job (billing "
               "reconcile); it then finishes our record."),
}


def _ours(day: date) -> dict[tuple[str, str], Decimal]:
    """Our movements final on ``day``: {(业务类型, voucher): signed yuan}."""
    start, end = _day_bounds(day)
    final: dict[tuple[str, str], Decimal] = {}
    for no, amount in Payment.objects.filter(
            status=Payment.Status.PAID, paid_at__gte=start, paid_at__lt=end).values_list("out_trade_no", "amount"):
        final[(PAY, no)] = amount
    for no, amount in PaymentRefund.objects.filter(
            status=PaymentRefund.Status.SUCCESS, finished_at__gte=start, finished_at__lt=end
    ).values_list("out_refund_no", "amount"):
        final[(REFUND, no)] = -amount
    for no, amount in Payout.objects.filter(
            method=Payout.Method.WECHAT, status=Payout.Status.SUCCESS, finished_at__gte=start,
            finished_at__lt=end).values_list("out_bill_no", "amount"):
        final[(TRANSFER, no)] = -amount
    for no, amount in Withdrawal.objects.filter(
            status=Withdrawal.Status.SUCCESS, finished_at__gte=start, finished_at__lt=end
    ).values_list("out_bill_no", "amount"):
        final[(TRANSFER, no)] = -amount
    for share in ProfitShare.objects.filter(
            status=ProfitShare.Status.FINISHED, finished_at__gte=start, finished_at__lt=end):
        paid = share.amount if not share.reason else _shared(share)
        if paid:
            final[(SHARE, share.out_order_no)] = -paid
    return final


def _shared(share: ProfitShare) -> Decimal:
    """What a finished split actually paid (its posting transit → clearing)."""
    from settlement.models import Posting

    posting = Posting.objects.filter(key=f"wx:ps:{share.out_order_no}").first()
    return posting.entries.filter(amount__gt=0).first().amount if posting else ZERO


def _known(business: str, voucher: str) -> bool:
    """A record of any state with this number (the bill's line is then a state difference)."""
    if business == PAY:
        return Payment.objects.filter(out_trade_no=voucher).exists()
    if business == REFUND:
        return PaymentRefund.objects.filter(out_refund_no=voucher).exists()
    if business == TRANSFER:
        return (Payout.objects.filter(out_bill_no=voucher).exists()
                or Withdrawal.objects.filter(out_bill_no=voucher).exists())
    if business == SHARE:
        return ProfitShare.objects.filter(out_order_no=voucher).exists()
    return False


def fundflow_reconcile(*, day: date) -> BillCheck:
    """Download ``day``'s fund-flow bill and match it; returns the day's (replaced) check. A
    download failure is recorded as status ``failed`` with its error (never raised)."""
    try:
        text = _gateway().fundflow_bill(day.isoformat())
    except PayError as exc:
        check, _created = BillCheck.objects.update_or_create(
            bill_date=day, bill_type=BillCheck.BillType.FUNDFLOW,
            defaults={"status": BillCheck.Status.FAILED, "error": exc.text[:200]},
        )
        return check
    return _match(day, parse_fundflow_bill(text) if text is not None else [])


@transaction.atomic
def _match(day: date, lines: list[FundLine]) -> BillCheck:
    check, _created = BillCheck.objects.select_for_update().get_or_create(
        bill_date=day, bill_type=BillCheck.BillType.FUNDFLOW,
        defaults={"status": BillCheck.Status.MATCHED},
    )
    check.mismatches.all().delete()
    billed: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    fees = ZERO
    for line in lines:
        if line.business == FEE:
            fees += line.amount
        else:
            billed[(line.business, line.voucher)] += line.amount
    ours = _ours(day)
    found: list[BillMismatch] = []

    def differ(kind: str, business: str, voucher: str, bill: Decimal | None, our: Decimal | None):
        found.append(BillMismatch(
            bill_check=check, kind=kind, business=business, action=str(ACTIONS[kind])[:300],
            out_trade_no=voucher[:32] if business == PAY else "",
            out_refund_no="" if business == PAY else voucher[:64],
            bill_amount=bill, our_amount=our,
        ))

    for (business, voucher), amount in sorted(billed.items()):
        mine = ours.get((business, voucher))
        if mine is None:
            known = business != SHARE_RETURN and _known(business, voucher)
            differ(K.STATE if known else K.NOT_IN_RECORDS, business, voucher, amount, None)
        elif mine != amount:
            differ(K.AMOUNT, business, voucher, amount, mine)
    for (business, voucher), amount in sorted(ours.items()):
        if (business, voucher) not in billed:
            differ(K.NOT_IN_BILL, business, voucher, None, amount)
    BillMismatch.objects.bulk_create(found)

    def total(side: dict[tuple[str, str], Decimal], *kinds: str) -> Decimal:
        return yuan(sum((v for (b, _v), v in side.items() if b in kinds), ZERO))

    check.status = (BillCheck.Status.MISMATCHED if found else
                    BillCheck.Status.MATCHED if lines else BillCheck.Status.NO_BILL)
    check.bill_lines = len(lines)
    check.bill_paid, check.ledger_paid = total(billed, PAY), total(ours, PAY)
    check.bill_refunded, check.ledger_refunded = -total(billed, REFUND), -total(ours, REFUND)
    check.bill_paid_out = -total(billed, TRANSFER, SHARE, SHARE_RETURN)
    check.ledger_paid_out = -total(ours, TRANSFER, SHARE)
    check.bill_fees = yuan(-fees)
    check.error = ""
    check.save()
    return check
