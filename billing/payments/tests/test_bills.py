"""Reconciliation against WeChat Pay's trade bill, downloaded from the fake (signed request,
gzip, SHA1): every kind of difference is found and listed with what to do; a clean day
matches; a day without trade has no bill; a corrupt download is recorded, not raised."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from billing.payments import services
from billing.payments.models import BillCheck, BillMismatch, Payment

from .conftest import operator_today, top_up_paid

D = Decimal
K = BillMismatch.Kind


def test_a_clean_day_matches(clean_fake, member):
    a, b = top_up_paid(clean_fake, member, "50.00"), top_up_paid(clean_fake, member, "30.00")
    check = services.bill_reconcile(day=operator_today())
    assert check.status == BillCheck.Status.MATCHED, list(check.mismatches.values())
    assert (check.bill_lines, check.bill_paid, check.ledger_paid) == (2, D("80.00"), D("80.00"))
    assert check.bill_fees == D("0.48")  # 0.60 % of each payment, rounded per line
    text = clean_fake.server.trade_bill(clean_fake.server.orders[next(iter(clean_fake.server.orders))].mchid,
                                        operator_today().isoformat())
    assert {x.out_trade_no for x in services.parse_trade_bill(text)} == {a.out_trade_no, b.out_trade_no}


def test_every_difference_is_listed_with_what_to_do(clean_fake, member):
    amount_differs = top_up_paid(clean_fake, member, "50.00")
    Payment.objects.filter(pk=amount_differs.pk).update(amount=D("49.00"))
    not_notified = top_up_paid(clean_fake, member, "20.00", notified=False)  # paid at WeChat only
    ours_only = Payment.objects.create(
        member=member, purpose=Payment.Purpose.TOP_UP, status=Payment.Status.PAID,
        out_trade_no="TU-NOT-AT-WECHAT-1", amount=D("12.00"), paid_at=timezone.now(),
        expires_at=timezone.now(),
    )
    fine = top_up_paid(clean_fake, member, "10.00")
    check = services.bill_reconcile(day=operator_today())
    assert check.status == BillCheck.Status.MISMATCHED
    found = {(m.kind, m.out_trade_no): m for m in check.mismatches.all()}
    assert set(found) == {
        (K.AMOUNT, amount_differs.out_trade_no), (K.STATE, not_notified.out_trade_no),
        (K.NOT_IN_BILL, ours_only.out_trade_no),
    }
    assert (found[(K.AMOUNT, amount_differs.out_trade_no)].bill_amount,
            found[(K.AMOUNT, amount_differs.out_trade_no)].our_amount) == (D("50.00"), D("49.00"))
    assert all(m.action for m in found.values())
    assert fine.out_trade_no not in {no for _k, no in found}
    # A payment WeChat has and we do not know at all.
    Payment.objects.filter(pk=fine.pk).update(out_trade_no="RENAMED-LOCALLY")
    again = services.bill_reconcile(day=operator_today())
    assert again.pk == check.pk  # the day's check is replaced, not duplicated
    kinds = {(m.kind, m.out_trade_no) for m in again.mismatches.all()}
    assert (K.NOT_IN_RECORDS, fine.out_trade_no) in kinds and (K.NOT_IN_BILL, "RENAMED-LOCALLY") in kinds


def test_no_trade_no_bill_and_a_corrupt_download_is_recorded(clean_fake, member):
    check = services.bill_reconcile(day=operator_today() - timedelta(days=3))
    assert check.status == BillCheck.Status.NO_BILL and check.bill_lines == 0
    top_up_paid(clean_fake, member, "10.00")
    clean_fake.server.inject_failure(path="/v3/billdownload/file", method="GET", mode="error",
                                     status=500, count=1)
    check = services.bill_reconcile(day=operator_today())
    assert check.status == BillCheck.Status.FAILED and check.error
    assert services.bill_reconcile(day=operator_today()).status == BillCheck.Status.MATCHED


@pytest.mark.parametrize(("mode", "text"), [
    ("reset", "无法连接微信支付（网络错误）"),
    ("bad_signature", "微信支付的应答无法读取或签名验证未通过"),
    ("error", "微信支付拒绝："),
])
def test_a_failed_download_reads_in_chinese_for_the_operator(clean_fake, member, mode, text):
    """The check's error is what the admin shows: the platform's language even from a worker
    running in English, no exception class, WeChat's own message and code kept."""
    top_up_paid(clean_fake, member, "10.00")
    clean_fake.server.inject_failure(path="/v3/bill/tradebill", mode=mode, count=1)
    with translation.override("en"):
        check = services.bill_reconcile(day=operator_today())
    assert check.status == BillCheck.Status.FAILED
    assert check.error.startswith(text), check.error
    assert "Error" not in check.error and "HTTP_" not in check.error
    if mode == "error":
        assert "SYSTEM_ERROR" in check.error  # WeChat's code, for support


def test_the_daily_job_checks_yesterday_once(clean_fake, member):
    first = services.bills_reconcile_due()
    assert first is not None and first.bill_date == operator_today() - timedelta(days=1)
    assert services.bills_reconcile_due() is None


def test_the_daily_job_passes_over_an_operator_without_wechat_pay(member):
    from django.db import connection

    from tenants.models import MiniProgram

    MiniProgram.objects.filter(operator__schema_name=connection.schema_name).update(
        wechatpay_public_key_id="")
    assert services.bills_reconcile_due() is None  # nothing to download, nothing raised
    assert not BillCheck.objects.exists()
