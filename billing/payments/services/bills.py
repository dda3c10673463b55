"""Reconciliation against WeChat Pay's trade bill: download one China-time day's bill (type
ALL, gzip, SHA1-checked; ``Gateway.trade_bill``), match it line by line to our payments
(``out_trade_no``) and refunds (``out_refund_no``), and record each difference as a
:class:`~billing.payments.models.BillMismatch` with what staff should do. Re-running a day
replaces its check. The daily job (``bills_reconcile_due``) checks yesterday until it has
been checked without a download failure.

Bill format (WeChat's CSV): a header line, one line per payment (交易状态 SUCCESS) and per
refund (REFUND) with every field prefixed by a backquote, then a totals header and a totals
line. Amounts are yuan. Our side of a day: payments paid and refunds finished in that
operator-local day.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.money import ZERO, yuan
from settlement.statements import operator_zone

from ..models import BillCheck, BillMismatch, Payment, PaymentRefund
from ..wechatpay import PayError
from .common import BillingError, _day_bounds, _gateway
from .fundflow import fundflow_reconcile

K = BillMismatch.Kind


@dataclass(frozen=True)
class BillLine:
    """One line of the trade bill (yuan)."""

    state: str  # SUCCESS or REFUND
    transaction_id: str
    out_trade_no: str
    out_refund_no: str
    paid: Decimal
    refunded: Decimal
    fee: Decimal


def parse_trade_bill(text: str) -> list[BillLine]:
    """The payment and refund lines of a trade bill (the totals are left out)."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    col = {name: i for i, name in enumerate(header)}
    lines = []
    for row in rows[1:]:
        if not row or row[0].startswith("总交易单数") or not row[0].startswith("`"):
            if row and row[0].startswith("总交易单数"):
                break
            continue
        value = [v.lstrip("`").strip() for v in row]

        def get(name: str, value=value) -> str:
            return value[col[name]] if name in col and col[name] < len(value) else ""

        lines.append(BillLine(
            state=get("交易状态"), transaction_id=get("微信订单号"), out_trade_no=get("商户订单号"),
            out_refund_no=get("商户退款单号") if get("商户退款单号") != "0" else "",
            paid=yuan(Decimal(get("应结订单金额") or "0")),
            refunded=yuan(Decimal(get("退款金额") or "0")), fee=yuan(Decimal(get("手续费") or "0")),
        ))
    return lines


ACTIONS = {
    (K.NOT_IN_RECORDS, "pay"): _("WeChat received a payment we have no record of: look the order "
                                 "up in the WeChat Pay merchant platform; refund it if it is not ours."),
    (K.NOT_IN_RECORDS, "refund"): _("WeChat paid out a refund we have no record of: find who asked "
                                    "for it in the merchant platform and record it by a manual adjustment."),
    (K.STATE, "pay"): _("WeChat has it paid but our payment is not: run the payment query "
                        "(billing reconcile); it then credits the member."),
    (K.STATE, "refund"): _("WeChat has the refund done but ours is not: run the refund query "
                           "(billing reconcile); it then finishes the refund."),
    (K.AMOUNT, "pay"): _("The amounts differ: compare the order in the merchant platform with "
                         "our payment; correct our side by a manual adjustment."),
    (K.AMOUNT, "refund"): _("The refund amounts differ: compare with the merchant platform; "
                            "correct our side by a manual adjustment."),
    (K.NOT_IN_BILL, "pay"): _("We have a payment WeChat's bill does not show: query the order; if "
                              "WeChat never received it, reverse its posting. (A payment made just "
                              "before midnight can be on the next day's bill.)"),
    (K.NOT_IN_BILL, "refund"): _("We have a refund WeChat's bill does not show: query the refund; if "
                                 "it was not paid, return the money to the member's wallet."),
}


def _mismatch(check: BillCheck, kind: str, what: str, **fields) -> BillMismatch:
    return BillMismatch(bill_check=check, kind=kind, action=ACTIONS[(kind, what)][:300], **fields)


def bill_reconcile(*, day: date) -> BillCheck:
    """Download ``day``'s trade bill and match it; returns the day's (replaced) check. A
    download failure is recorded as status ``failed`` with its error (never raised)."""
    try:
        text = _gateway().trade_bill(day.isoformat())
    except PayError as exc:
        check, _created = BillCheck.objects.update_or_create(
            bill_date=day, bill_type=BillCheck.BillType.TRADE, defaults={"status": BillCheck.Status.FAILED, "error": exc.text[:200]},
        )
        return check
    return _match(day, parse_trade_bill(text) if text is not None else None)


@transaction.atomic
def _match(day: date, lines: list[BillLine] | None) -> BillCheck:
    start, end = _day_bounds(day)
    ours_paid = Payment.objects.filter(status=Payment.Status.PAID, paid_at__gte=start, paid_at__lt=end)
    ours_refunded = PaymentRefund.objects.filter(
        status=PaymentRefund.Status.SUCCESS, finished_at__gte=start, finished_at__lt=end
    )
    check, _created = BillCheck.objects.select_for_update().get_or_create(
        bill_date=day, bill_type=BillCheck.BillType.TRADE, defaults={"status": BillCheck.Status.MATCHED}
    )
    check.mismatches.all().delete()
    lines = lines or []
    pays = [x for x in lines if x.state != "REFUND"]
    refunds = [x for x in lines if x.state == "REFUND"]
    payments = {p.out_trade_no: p for p in Payment.objects.filter(out_trade_no__in=[x.out_trade_no for x in pays])}
    refund_rows = {
        r.out_refund_no: r
        for r in PaymentRefund.objects.filter(out_refund_no__in=[x.out_refund_no for x in refunds])
    }
    found: list[BillMismatch] = []
    for x in pays:
        ids = {"out_trade_no": x.out_trade_no, "transaction_id": x.transaction_id, "bill_amount": x.paid}
        payment = payments.get(x.out_trade_no)
        if payment is None:
            found.append(_mismatch(check, K.NOT_IN_RECORDS, "pay", **ids))
        elif payment.amount != x.paid:
            found.append(_mismatch(check, K.AMOUNT, "pay", our_amount=payment.amount, **ids))
        elif payment.status != Payment.Status.PAID:
            found.append(_mismatch(check, K.STATE, "pay", our_amount=payment.amount, **ids))
    for x in refunds:
        ids = {"out_trade_no": x.out_trade_no, "out_refund_no": x.out_refund_no,
               "transaction_id": x.transaction_id, "bill_amount": x.refunded}
        refund = refund_rows.get(x.out_refund_no)
        if refund is None:
            found.append(_mismatch(check, K.NOT_IN_RECORDS, "refund", **ids))
        elif refund.amount != x.refunded:
            found.append(_mismatch(check, K.AMOUNT, "refund", our_amount=refund.amount, **ids))
        elif refund.status != PaymentRefund.Status.SUCCESS:
            found.append(_mismatch(check, K.STATE, "refund", our_amount=refund.amount, **ids))
    billed_pay = {x.out_trade_no for x in pays}
    billed_refund = {x.out_refund_no for x in refunds}
    for payment in ours_paid.exclude(out_trade_no__in=billed_pay):
        found.append(_mismatch(check, K.NOT_IN_BILL, "pay", out_trade_no=payment.out_trade_no,
                               transaction_id=payment.transaction_id or "", our_amount=payment.amount))
    for refund in ours_refunded.exclude(out_refund_no__in=billed_refund).select_related("payment"):
        found.append(_mismatch(check, K.NOT_IN_BILL, "refund", out_trade_no=refund.payment.out_trade_no,
                               out_refund_no=refund.out_refund_no, our_amount=refund.amount))
    BillMismatch.objects.bulk_create(found)
    check.status = (
        BillCheck.Status.MISMATCHED if found
        else BillCheck.Status.MATCHED if lines
        else BillCheck.Status.NO_BILL
    )
    check.bill_lines = len(lines)
    check.bill_paid = yuan(sum((x.paid for x in pays), ZERO))
    check.bill_refunded = yuan(sum((x.refunded for x in refunds), ZERO))
    check.bill_fees = yuan(sum((x.fee for x in lines), ZERO))
    check.ledger_paid = yuan(ours_paid.aggregate(s=Sum("amount"))["s"] or 0)
    check.ledger_refunded = yuan(ours_refunded.aggregate(s=Sum("amount"))["s"] or 0)
    check.error = ""
    check.save()
    return check


def bills_reconcile_due(*, now: datetime | None = None) -> BillCheck | None:
    """The daily job for one operator: check yesterday's trade bill and fund-flow bill
    (operator-local) unless each was already checked without a download failure. Returns
    the trade bill's check (None when it had nothing to do)."""
    yesterday = (now or timezone.now()).astimezone(operator_zone()).date() - timedelta(days=1)
    try:
        gateway = _gateway()
    except BillingError as exc:
        if exc.code not in ("pay_not_configured", "sp_not_configured", "sub_mchid_missing"):
            raise
        return None  # an operator without a usable WeChat Pay merchant has no bills
    done = set(BillCheck.objects.filter(bill_date=yesterday).exclude(status=BillCheck.Status.FAILED)
               .values_list("bill_type", flat=True))
    # A sub-merchant's money moves in the service provider's books: no fund-flow bill of its own.
    if BillCheck.BillType.FUNDFLOW not in done and not gateway.partner:
        fundflow_reconcile(day=yesterday)
    if BillCheck.BillType.TRADE in done:
        return None
    return bill_reconcile(day=yesterday)
