"""Reconciliation against WeChat Pay's fund-flow bill (资金账单), downloaded from the fake
(signed request, gzip, SHA1): payments in, refunds and transfers out matched by the
merchant's voucher numbers, fees summed, each difference listed with what to do; the daily
job runs it beside the trade bill."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.payments import services
from billing.payments.models import BillCheck, BillMismatch, Payment, Withdrawal
from settlement.models import MoneyPolicy

from .conftest import notify, operator_today, top_up_paid

D = Decimal
K = BillMismatch.Kind


def _withdrawn(fake, member, admin_user, amount: str) -> Withdrawal:
    MoneyPolicy.objects.update_or_create(defaults={"withdrawals_enabled": True})
    withdrawal = services.withdrawal_request(member=member, amount=D(amount))
    services.withdrawal_review(withdrawal=withdrawal, approve=True, reviewer=admin_user)
    withdrawal = services.withdrawal_submit(withdrawal_id=withdrawal.pk)
    note = fake.server.complete_transfer(withdrawal.out_bill_no, deliver=False)["notification"]
    assert notify(note, kind="transfer").status_code == 204
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.SUCCESS
    return withdrawal


def test_payments_and_transfers_match_the_fund_flow(clean_fake, member, admin_user):
    a, b = top_up_paid(clean_fake, member, "50.00"), top_up_paid(clean_fake, member, "30.00")
    withdrawal = _withdrawn(clean_fake, member, admin_user, "20.00")
    check = services.fundflow_reconcile(day=operator_today())
    assert check.bill_type == BillCheck.BillType.FUNDFLOW
    assert check.status == BillCheck.Status.MATCHED, list(check.mismatches.values())
    # Two payments, their two fees, one transfer.
    assert (check.bill_lines, check.bill_paid, check.ledger_paid) == (5, D("80.00"), D("80.00"))
    assert (check.bill_paid_out, check.ledger_paid_out) == (D("20.00"), D("20.00"))
    assert check.bill_fees == D("0.48")
    text = clean_fake.server.fundflow_bill(clean_fake.server.orders[next(iter(clean_fake.server.orders))].mchid,
                                           operator_today().isoformat())
    lines = services.parse_fundflow_bill(text)
    assert {(x.business, x.voucher, x.amount) for x in lines if x.business != "扣除交易手续费"} == {
        ("交易", a.out_trade_no, D("50.00")), ("交易", b.out_trade_no, D("30.00")),
        ("商家转账", withdrawal.out_bill_no, D("-20.00"))}
    # The trade bill is checked separately, on its own row for the same day.
    trade = services.bill_reconcile(day=operator_today())
    assert trade.bill_type == BillCheck.BillType.TRADE and trade.pk != check.pk
    assert trade.status == BillCheck.Status.MATCHED


def test_every_difference_is_listed_with_what_to_do(clean_fake, member, admin_user):
    amount_differs = top_up_paid(clean_fake, member, "50.00")
    Payment.objects.filter(pk=amount_differs.pk).update(amount=D("49.00"))
    not_notified = top_up_paid(clean_fake, member, "20.00", notified=False)  # paid at WeChat only
    ours_only = Payment.objects.create(
        member=member, purpose=Payment.Purpose.TOP_UP, status=Payment.Status.PAID,
        out_trade_no="TU-NOT-AT-WECHAT-2", amount=D("12.00"), paid_at=timezone.now(),
        expires_at=timezone.now(),
    )
    withdrawal = _withdrawn(clean_fake, member, admin_user, "10.00")
    Withdrawal.objects.filter(pk=withdrawal.pk).update(out_bill_no="WD-RENAMED")  # unknown to us
    check = services.fundflow_reconcile(day=operator_today())
    assert check.status == BillCheck.Status.MISMATCHED
    found = {(m.kind, m.business, m.out_trade_no or m.out_refund_no): m for m in check.mismatches.all()}
    assert set(found) == {
        (K.AMOUNT, "交易", amount_differs.out_trade_no), (K.STATE, "交易", not_notified.out_trade_no),
        (K.NOT_IN_BILL, "交易", ours_only.out_trade_no),
        (K.NOT_IN_RECORDS, "商家转账", withdrawal.out_bill_no), (K.NOT_IN_BILL, "商家转账", "WD-RENAMED"),
    }
    amount = found[(K.AMOUNT, "交易", amount_differs.out_trade_no)]
    assert (amount.bill_amount, amount.our_amount) == (D("50.00"), D("49.00"))
    assert all(m.action for m in found.values())
    again = services.fundflow_reconcile(day=operator_today())
    assert again.pk == check.pk and again.mismatches.count() == 5  # replaced, not added


def test_no_movement_no_bill_and_a_failed_download_is_recorded(clean_fake):
    assert services.fundflow_reconcile(day=operator_today() - timedelta(days=3)).status == BillCheck.Status.NO_BILL
    clean_fake.server.inject_failure(path="/v3/bill/fundflowbill", mode="error", status=500, count=None)
    check = services.fundflow_reconcile(day=operator_today() - timedelta(days=2))
    assert check.status == BillCheck.Status.FAILED and check.error


def test_the_daily_job_checks_both_bills_once(clean_fake, member):
    top_up_paid(clean_fake, member, "10.00")
    tomorrow = timezone.now() + timedelta(days=1)
    assert services.bills_reconcile_due(now=tomorrow).status == BillCheck.Status.MATCHED
    assert set(BillCheck.objects.filter(bill_date=operator_today()).values_list("bill_type", "status")) == {
        ("trade", "matched"), ("fundflow", "matched")}
    assert services.bills_reconcile_due(now=tomorrow) is None
