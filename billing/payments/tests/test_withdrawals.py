"""Withdrawals (提现) through 商家转账: review, member confirmation, unclear errors queried."""

from decimal import Decimal

import pytest

from billing.payments import services
from billing.payments.models import Withdrawal
from settlement import services as ledger
from settlement.models import MoneyPolicy
from settlement.selectors import wallet_balance

from .conftest import TENANT_A_MCHID, notify

D = Decimal
WITHDRAWALS = "/api/app/v1/wallet/withdrawals"


@pytest.fixture
def rich(fake, member):
    MoneyPolicy.objects.update_or_create(defaults={"withdrawals_enabled": True})
    ledger.wallet_top_up(member=member, amount=D("80"), key="wx:txn:w")
    return member


def test_withdrawal_reviewed_confirmed_paid(fake, rich, member_api, admin_user):
    r = member_api.post(WITHDRAWALS, {"amount": "30"}, format="json")
    assert r.status_code == 201 and r.json()["status"] == "review"
    assert wallet_balance(rich).cash == D("50.00")
    withdrawal = Withdrawal.objects.get()
    services.withdrawal_review(withdrawal=withdrawal, approve=True, reviewer=admin_user, note="ok")
    withdrawal = services.withdrawal_submit(withdrawal_id=withdrawal.pk)
    assert withdrawal.status == Withdrawal.Status.WAIT_USER_CONFIRM
    body = member_api.get(f"{WITHDRAWALS}/{withdrawal.pk}").json()
    assert body["confirm"]["package"] == withdrawal.package_info
    assert body["confirm"]["mchId"] == TENANT_A_MCHID and body["confirm"]["appId"] == "wxtenanta0000001"
    assert body["confirm"]["openId"] == rich.openid
    # the member confirms; the notification goes to the live app, which cannot see this
    # test's uncommitted rows (a lost notification): the query job finishes it
    fake.server.complete_transfer(withdrawal.out_bill_no)
    services.withdrawal_sync(withdrawal=withdrawal)
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.SUCCESS
    assert ledger.system_account("withdrawal_in_transit").balance == 0
    assert ledger.system_account("wechat_clearing").balance == D("50.00")


def test_unclear_error_is_queried_before_any_retry(fake, rich, admin_user):
    withdrawal = services.withdrawal_request(member=rich, amount=D("20"))
    services.withdrawal_review(withdrawal=withdrawal, approve=True, reviewer=admin_user)
    # WeChat makes the transfer but the answer is lost (500)
    fake.server.inject_failure(
        path="/v3/fund-app/mch-transfer/transfer-bills", method="POST", mode="error", status=500,
        apply=True, count=None,
    )
    withdrawal = services.withdrawal_submit(withdrawal_id=withdrawal.pk)
    assert withdrawal.status == Withdrawal.Status.UNCLEAR
    assert [key[1] for key in fake.server.transfers].count(withdrawal.out_bill_no) == 1
    # the retry queries first and finds the bill (its package_info was in the lost answer)
    withdrawal = services.withdrawal_sync(withdrawal=withdrawal)
    assert withdrawal.status == Withdrawal.Status.UNCLEAR  # POST still failing: no confirm yet
    assert [key[1] for key in fake.server.transfers].count(withdrawal.out_bill_no) == 1
    fake.server.failures.clear()
    withdrawal = services.withdrawal_sync(withdrawal=withdrawal)
    assert withdrawal.status == Withdrawal.Status.WAIT_USER_CONFIRM and withdrawal.package_info
    assert [key[1] for key in fake.server.transfers].count(withdrawal.out_bill_no) == 1
    note = fake.server.complete_transfer(withdrawal.out_bill_no, deliver=False)["notification"]
    assert notify(note, kind="transfer").status_code == 204
    assert notify(note, kind="transfer").status_code == 204
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.SUCCESS
    assert wallet_balance(rich).cash == D("60.00")


def test_unclear_error_then_not_found_sends_with_the_same_bill_no(fake, rich, admin_user):
    withdrawal = services.withdrawal_request(member=rich, amount=D("20"))
    services.withdrawal_review(withdrawal=withdrawal, approve=True, reviewer=admin_user)
    fake.server.inject_failure(path="/v3/fund-app/mch-transfer/transfer-bills", method="POST", mode="reset", count=1)
    assert services.withdrawal_submit(withdrawal_id=withdrawal.pk).status == Withdrawal.Status.UNCLEAR
    assert withdrawal.out_bill_no not in [key[1] for key in fake.server.transfers]
    withdrawal = services.withdrawal_sync(withdrawal=withdrawal)
    assert withdrawal.status == Withdrawal.Status.WAIT_USER_CONFIRM
    assert [key[1] for key in fake.server.transfers].count(withdrawal.out_bill_no) == 1


def test_failed_transfer_and_rejection_return_the_cash(fake, rich, admin_user):
    w1 = services.withdrawal_request(member=rich, amount=D("10"))
    services.withdrawal_review(withdrawal=w1, approve=False, reviewer=admin_user, note="风控")
    w2 = services.withdrawal_request(member=rich, amount=D("10"))
    services.withdrawal_review(withdrawal=w2, approve=True, reviewer=admin_user)
    services.withdrawal_submit(withdrawal_id=w2.pk)
    note = fake.server.complete_transfer(w2.out_bill_no, state="FAIL", deliver=False)["notification"]
    assert notify(note, kind="transfer").status_code == 204
    w1.refresh_from_db()
    w2.refresh_from_db()
    assert (w1.status, w2.status) == (Withdrawal.Status.REJECTED, Withdrawal.Status.FAILED)
    assert wallet_balance(rich).cash == D("80.00")


def test_withdrawal_refusals(fake, member, member_api):
    r = member_api.post(WITHDRAWALS, {"amount": "10"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "withdrawals_disabled"
    MoneyPolicy.objects.update_or_create(defaults={"withdrawals_enabled": True})
    r = member_api.post(WITHDRAWALS, {"amount": "10"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "insufficient_funds"
    r = member_api.post(WITHDRAWALS, {"amount": "0.5"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "amount_out_of_range"
    assert not Withdrawal.objects.exists()
