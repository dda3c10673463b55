"""Wallet refunds (退费): preview, forfeiture consent, oldest payments first, notifications."""

from decimal import Decimal

import pytest

from billing.payments import services
from billing.payments.models import Payment, PaymentRefund, WalletRefund
from settlement import services as ledger
from settlement.models import MoneyPolicy
from settlement.selectors import wallet_balance

from .conftest import notify

D = Decimal
REFUNDS = "/api/app/v1/wallet/refunds"


@pytest.fixture
def paid(fake, member):
    """Pay a top-up of ``amount`` yuan (+ bonus) through the fake; returns the payment."""

    def make(amount: str, bonus: str = "0") -> Payment:
        started = services.top_up_create(member=member, amount=D(amount))
        Payment.objects.filter(pk=started.payment.pk).update(bonus=D(bonus))
        assert notify(fake.paid_notification(started.payment.out_trade_no)).status_code == 204
        return Payment.objects.get(pk=started.payment.pk)

    return make


def _auto():
    MoneyPolicy.objects.update_or_create(defaults={"refund_mode": "auto"})


def test_refund_across_two_payments_oldest_first(fake, paid, member, member_api):
    _auto()
    first, second = paid("50.00", bonus="5"), paid("30.00")
    ledger.order_charge(member=member, amount=D("10"), key="order:1")
    preview = member_api.get(f"{REFUNDS}/preview").json()
    assert preview["refundable"] == "70.00" and preview["bonus_forfeited"] == "5.00"
    assert preview["policy_text"] and preview["mode"] == "auto"

    r = member_api.post(REFUNDS, {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "forfeit_not_accepted"
    assert wallet_balance(member).cash == D("70.00")  # nothing moved

    r = member_api.post(REFUNDS, {"accept_forfeit": True, "reason": "不用了"}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["status"] == "processing" and body["bonus_forfeited"] == "5.00"
    assert [(p["out_trade_no"], p["amount"]) for p in body["parts"]] == [
        (first.out_trade_no, "50.00"), (second.out_trade_no, "20.00"),
    ]
    assert wallet_balance(member).cash == 0 and wallet_balance(member).bonus == 0
    for part in PaymentRefund.objects.order_by("pk"):
        assert services.payment_refund_submit(refund_id=part.pk).status == "processing"
        note = fake.server.complete_refund(part.out_refund_no, deliver=False)["notification"]
        assert notify(note, kind="refund").status_code == 204
        assert notify(note, kind="refund").status_code == 204  # duplicate: nothing more
    refund = WalletRefund.objects.get()
    assert refund.status == WalletRefund.Status.SUCCESS
    assert [o.refunded for o in (fake.server.order(first.out_trade_no), fake.server.order(second.out_trade_no))] == [5000, 2000]
    assert ledger.system_account("refund_in_transit").balance == 0
    assert ledger.system_account("wechat_clearing").balance == D("10.00")
    assert member_api.get(f"{REFUNDS}/{refund.pk}").json()["status"] == "success"


def test_review_mode_reject_gives_cash_and_bonus_back(fake, paid, member, admin_user):
    paid("40.00", bonus="4")
    refund = services.wallet_refund_request(member=member, accept_forfeit=True)
    assert refund.status == WalletRefund.Status.REVIEW and not PaymentRefund.objects.exists()
    assert wallet_balance(member).cash == 0
    services.wallet_refund_review(refund=refund, approve=False, reviewer=admin_user, note="核实中")
    refund.refresh_from_db()
    assert refund.status == WalletRefund.Status.REJECTED and refund.review_note == "核实中"
    assert (wallet_balance(member).cash, wallet_balance(member).bonus) == (D("40.00"), D("4.00"))
    with pytest.raises(services.BillingError):
        services.wallet_refund_review(refund=refund, approve=True, reviewer=admin_user)


def test_review_mode_approve_then_failed_refund_returns_to_wallet(fake, paid, member, admin_user):
    MoneyPolicy.objects.update_or_create(defaults={"forfeit_bonus_on_refund": False})
    payment = paid("25.00")
    refund = services.wallet_refund_request(member=member, amount=D("20"))
    services.wallet_refund_review(refund=refund, approve=True, reviewer=admin_user)
    part = PaymentRefund.objects.get()
    services.payment_refund_submit(refund_id=part.pk)
    note = fake.server.complete_refund(part.out_refund_no, status="ABNORMAL", deliver=False)["notification"]
    assert notify(note, kind="refund").status_code == 204
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == WalletRefund.Status.FAILED
    assert payment.refunded_amount == 0
    assert wallet_balance(member).cash == D("25.00")


def test_refund_with_unclear_answer_is_queried_not_doubled(fake, paid, member):
    _auto()
    paid("15.00")
    services.wallet_refund_request(member=member)
    part = PaymentRefund.objects.get()
    fake.server.inject_failure(path="/v3/refund/domestic/refunds", mode="error", status=500, apply=True, count=1)
    assert services.payment_refund_submit(refund_id=part.pk).status == "submitting"
    PaymentRefund.objects.filter(pk=part.pk).update(created_at=part.created_at.replace(year=2020))
    services.reconcile()
    part.refresh_from_db()
    assert part.status == "processing" and part.refund_id
    assert [key[1] for key in fake.server.refunds].count(part.out_refund_no) == 1
    fake.server.complete_refund(part.out_refund_no, deliver=False)  # notification lost
    services.reconcile()
    part.refresh_from_db()
    assert part.status == "success"


def test_refund_refusals(fake, paid, member, member_api):
    r = member_api.post(REFUNDS, {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "nothing_to_refund"
    paid("10.00")
    r = member_api.post(REFUNDS, {"amount": "10.01"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "amount_exceeds_refundable"
    assert member_api.post(REFUNDS, {"amount": "5"}, format="json").status_code == 201
    r = member_api.post(REFUNDS, {"amount": "5"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "refund_in_progress"
    assert member_api.get(REFUNDS).json()["count"] == 1
