"""Top-ups: API → JSAPI prepay at the fake → signed notification → wallet credited once."""

from decimal import Decimal

import pytest
import requests

from billing.payments import services
from billing.payments.models import Payment, TopUpOffer
from settlement.models import Posting
from settlement.selectors import wallet_balance

from .conftest import TENANT_A_MCHID, notify

TOP_UPS = "/api/app/v1/wallet/top-ups"


@pytest.fixture
def top_up(fake, member_api):
    def make(amount="100.00"):
        r = member_api.post(TOP_UPS, {"amount": amount}, format="json")
        assert r.status_code == 201, r.json()
        return Payment.objects.get(out_trade_no=r.json()["payment"]["out_trade_no"]), r.json()

    return make


def test_top_up_paid_credits_cash_and_offer_bonus(fake, top_up, member, member_api):
    TopUpOffer.objects.create(pay_amount=Decimal("100"), bonus_amount=Decimal("10"))
    TopUpOffer.objects.create(pay_amount=Decimal("50"), bonus_amount=Decimal("3"))
    payment, body = top_up("100.00")
    params = body["pay_params"]
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    assert body["payment"]["bonus"] == "10.00" and body["payment"]["status"] == "pending"
    # the mini-program pays with the signed parameters; the fake checks paySign
    reply = requests.post(
        f"{fake.server.url}/_fake/pay",
        json={**params, "pay_sign": params["paySign"], "deliver": False},
        timeout=5,
    )
    assert reply.status_code == 200, reply.text
    r = notify(reply.json()["notification"])
    assert r.status_code == 204
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.transaction_id
    assert wallet_balance(member).cash == Decimal("100.00")
    assert wallet_balance(member).bonus == Decimal("10.00")
    wallet = member_api.get("/api/app/v1/wallet").json()
    assert wallet == {
        "cash": "100.00", "bonus": "10.00", "held": "0.00", "available": "110.00", "arrears": "0.00"
    }
    lines = member_api.get("/api/app/v1/wallet/ledger").json()
    assert lines["count"] == 1
    assert lines["results"][0]["kind"] == "top_up"
    assert (lines["results"][0]["cash"], lines["results"][0]["bonus"]) == ("100.00", "10.00")
    assert lines["results"][0]["ref"] == payment.out_trade_no


def test_top_up_amount_limits(fake, member_api):
    for amount in ("0.50", "5000.01"):
        r = member_api.post(TOP_UPS, {"amount": amount}, format="json")
        assert r.status_code == 400 and r.json()["code"] == "amount_out_of_range"
    r = member_api.post(TOP_UPS, {"amount": "abc"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "validation_error"
    assert not Payment.objects.exists()


def test_top_up_options(fake, member_api):
    TopUpOffer.objects.create(pay_amount=Decimal("200"), bonus_amount=Decimal("30"))
    body = member_api.get("/api/app/v1/wallet/top-up-options").json()
    assert body == {
        "min_amount": "1.00", "max_amount": "5000.00",
        "offers": [{"pay_amount": "200.00", "bonus_amount": "30.00"}],
    }


@pytest.mark.parametrize("tamper", ["signature", "body", "apiv3_key", "probe"])
def test_forged_or_tampered_notification_is_refused_and_changes_nothing(fake, top_up, member, tamper):
    payment, _ = top_up("20.00")
    note = fake.paid_notification(payment.out_trade_no, tamper=tamper)
    r = notify(note)
    assert r.status_code == 401 and r.json()["code"] == "notify_rejected"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert not Posting.objects.exists()
    assert wallet_balance(member).cash == 0


def test_stale_notification_is_refused(fake, top_up, member):
    payment, _ = top_up("20.00")
    r = notify(fake.paid_notification(payment.out_trade_no, timestamp_offset=-600))
    assert r.status_code == 401
    assert not Posting.objects.exists()


def test_notification_for_unknown_operator_or_kind(fake, top_up):
    payment, _ = top_up("20.00")
    note = fake.paid_notification(payment.out_trade_no)
    assert notify(note, slug="nobody").status_code == 404
    assert notify(note, kind="bogus").status_code == 404
    # tenant-b has no merchant: refused, not credited anywhere
    assert notify(note, slug="tenant-b").status_code == 409
    assert not Posting.objects.exists()


def test_amount_mismatch_is_refused_and_flagged(fake, top_up, member):
    payment, _ = top_up("20.00")
    fake.paid_notification(payment.out_trade_no)  # paid at WeChat
    order = fake.server.order(payment.out_trade_no).as_transaction()
    order["amount"]["total"] = 1  # one fen instead of 2000
    merchant = fake.server.merchants[TENANT_A_MCHID]
    note = fake.server.build_notification(
        merchant, "http://x", "TRANSACTION.SUCCESS", "支付成功", "transaction", order
    )
    r = notify({"body": note.body, "headers": note.headers})
    assert r.status_code == 400 and r.json()["code"] == "notify_mismatch"
    payment.refresh_from_db()
    assert payment.flagged and "amount" in payment.flag_reason
    assert payment.status == Payment.Status.PENDING
    assert not Posting.objects.exists()


def test_appid_mismatch_is_refused(fake, top_up):
    payment, _ = top_up("20.00")
    fake.paid_notification(payment.out_trade_no)
    order = fake.server.order(payment.out_trade_no).as_transaction()
    order["appid"] = "wxsomeoneelse000"
    note = fake.server.build_notification(
        fake.server.merchants[TENANT_A_MCHID], "http://x", "TRANSACTION.SUCCESS", "", "transaction", order
    )
    assert notify({"body": note.body, "headers": note.headers}).status_code == 400
    assert not Posting.objects.exists()


def test_duplicate_notifications_credit_once(fake, top_up, member):
    payment, _ = top_up("30.00")
    note = fake.paid_notification(payment.out_trade_no)
    for _ in range(5):
        assert notify(note).status_code == 204
    assert wallet_balance(member).cash == Decimal("30.00")
    assert Posting.objects.filter(kind=Posting.Kind.TOP_UP).count() == 1


def test_lost_notification_is_found_by_the_query_job(fake, top_up, member):
    payment, _ = top_up("40.00")
    fake.paid_notification(payment.out_trade_no)  # never delivered
    Payment.objects.filter(pk=payment.pk).update(created_at=payment.created_at.replace(year=2020))
    result = services.reconcile()
    assert result.payments == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(member).cash == Decimal("40.00")
    # the notification arriving late changes nothing
    note = fake.server.notifications[next(reversed(fake.server.notifications))]
    assert notify({"body": note.body, "headers": note.headers}).status_code == 204
    assert wallet_balance(member).cash == Decimal("40.00")


def test_expired_unpaid_payment_is_closed_at_wechat(fake, top_up, member, member_api):
    payment, _ = top_up("40.00")
    old = payment.created_at.replace(year=2020)
    Payment.objects.filter(pk=payment.pk).update(created_at=old, expires_at=old)
    services.reconcile()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CLOSED
    assert fake.server.order(payment.out_trade_no).trade_state == "CLOSED"
    r = member_api.get(f"/api/app/v1/wallet/payments/{payment.out_trade_no}")
    assert r.json()["status"] == "closed"


def test_payment_status_endpoint_asks_wechat(fake, top_up, member_api, member):
    payment, _ = top_up("12.00")
    fake.paid_notification(payment.out_trade_no)
    r = member_api.get(f"/api/app/v1/wallet/payments/{payment.out_trade_no}")
    assert r.status_code == 200 and r.json()["status"] == "paid"
    assert wallet_balance(member).cash == Decimal("12.00")


def test_wechat_down_leaves_payment_pending(fake, member_api):
    fake.server.inject_failure(path="/v3/pay/transactions/jsapi", mode="error", status=500, count=1)
    r = member_api.post(TOP_UPS, {"amount": "10"}, format="json")
    assert r.status_code == 502 and r.json()["code"] == "payment_unavailable"
    assert Payment.objects.get().status == Payment.Status.PENDING


def test_top_up_needs_login(fake, api):
    assert api.post(TOP_UPS, {"amount": "10"}, format="json").status_code == 401
