"""Admin: review actions with a reason, export, wallet ledger view."""

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.payments.models import Payment, WalletRefund
from billing.payments.services import wallet_refund_request
from settlement import services as ledger
from settlement.models import MoneyPolicy

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff(tenant, admin_user):
    client = Client(**HOST)
    client.force_login(admin_user)
    return client


def test_reject_needs_a_reason_and_returns_the_cash(staff, fake, member):
    MoneyPolicy.objects.update_or_create(defaults={"forfeit_bonus_on_refund": False})
    ledger.wallet_top_up(member=member, amount=Decimal("9"), key="wx:txn:admin")
    Payment.objects.create(
        member=member, purpose="top_up", status="paid", out_trade_no="TADMIN0001", amount=Decimal("9"),
        appid="wxtenanta0000001", mchid="1900000101", openid=member.openid,
        expires_at=timezone.now(), paid_at=timezone.now(), transaction_id="admin",
    )
    refund = wallet_refund_request(member=member)
    url = "/admin/billing/walletrefund/"
    r = staff.post(url, {"action": "reject", "_selected_action": [refund.pk], "reason": ""})
    assert r.status_code == 302
    refund.refresh_from_db()
    assert refund.status == WalletRefund.Status.REVIEW
    staff.post(url, {"action": "reject", "_selected_action": [refund.pk], "reason": "重复申请"})
    refund.refresh_from_db()
    assert refund.status == WalletRefund.Status.REJECTED and refund.review_note == "重复申请"
    assert staff.get(url + "?status=rejected").status_code == 200
    assert staff.get(url + "export/").status_code == 200


def test_admin_pages_open(staff, member):
    ledger.wallet_top_up(member=member, amount=Decimal("5"), key="wx:txn:pages")
    account = ledger.member_accounts(member).cash
    for url in (
        "/admin/billing/payment/", "/admin/billing/withdrawal/", "/admin/billing/paymentrefund/",
        "/admin/settlement/account/", f"/admin/settlement/account/{account.pk}/change/",
        "/admin/settlement/posting/", "/admin/settlement/moneypolicy/",
    ):
        assert staff.get(url).status_code == 200, url
