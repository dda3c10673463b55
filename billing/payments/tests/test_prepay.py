"""Pay-per-order: prepay for one order, consume what it used, refund the rest."""

from decimal import Decimal

import pytest

from billing.payments import selectors, services
from billing.payments.models import Payment, PaymentRefund
from settlement import services as ledger
from settlement.selectors import wallet_balance

from .conftest import notify

D = Decimal


@pytest.fixture
def prepaid(fake, member):
    started = services.prepay_create(member=member, amount=D("50"), order_ref="CO-1")
    assert started.pay_params["package"] == f"prepay_id={started.payment.prepay_id}"
    assert selectors.prepay_paid("CO-1") is None
    assert notify(fake.paid_notification(started.payment.out_trade_no)).status_code == 204
    return started.payment


def test_prepay_paid_then_settled_refunds_the_rest(fake, prepaid, member):
    assert selectors.prepay_paid("CO-1") == D("50.00")
    assert wallet_balance(member).cash == 0  # not a wallet top-up
    settled = services.prepay_settle(order_ref="CO-1", amount_used=D("12.34"), key="order:CO-1:settle")
    assert settled.refund.amount == D("37.66")
    again = services.prepay_settle(order_ref="CO-1", amount_used=D("12.34"), key="order:CO-1:settle")
    assert again.posting.pk == settled.posting.pk and PaymentRefund.objects.count() == 1
    with pytest.raises(services.BillingError) as exc:
        services.prepay_settle(order_ref="CO-1", amount_used=D("1"), key="other")
    assert exc.value.code == "prepay_already_settled"
    services.payment_refund_submit(refund_id=settled.refund.pk)
    note = fake.server.complete_refund(settled.refund.out_refund_no, deliver=False)["notification"]
    assert notify(note, kind="refund").status_code == 204
    assert ledger.system_account("operator_revenue").balance == D("12.34")
    assert ledger.system_account("prepaid_orders").balance == 0
    assert ledger.system_account("wechat_clearing").balance == D("12.34")


def test_prepay_used_more_than_paid_goes_to_arrears(fake, prepaid, member):
    settled = services.prepay_settle(order_ref="CO-1", amount_used=D("52"), key="k")
    assert settled.refund is None
    assert wallet_balance(member).arrears == D("2.00")


def test_prepay_rules(fake, member, other_tenant):
    first = services.prepay_create(member=member, amount=D("30"), order_ref="CO-2")
    again = services.prepay_create(member=member, amount=D("30"), order_ref="CO-2")
    assert again.payment.pk == first.payment.pk  # fresh parameters, same payment
    with pytest.raises(services.BillingError) as exc:
        services.prepay_create(member=member, amount=D("31"), order_ref="CO-2")
    assert exc.value.code == "prepay_exists"
    with pytest.raises(services.BillingError) as exc:
        services.prepay_settle(order_ref="CO-2", amount_used=D("1"), key="x")
    assert exc.value.code == "prepay_not_paid"
    assert Payment.objects.filter(order_ref="CO-2").count() == 1
