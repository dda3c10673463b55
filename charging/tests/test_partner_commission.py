"""Service-provider mode end to end for pay-per-order charging orders, against the fake WeChat
Pay server: the prepayment is a partner JSAPI order made for profit sharing; after settlement
the platform's commission goes to the service provider (MERCHANT_ID sp_mchid, relation
SERVICE_PROVIDER) in the same 分账 request as the owners' shares; the unused prepayment is
refunded the partner way; a refund of the order takes the commission back by 分账回退; the
ledger and the platform's commission statement stay right throughout."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing.payments import services
from billing.payments.models import Payment, PaymentRefund, ProfitShare
from billing.payments.tests.test_partner_mode import _post
from charging import funds, port
from charging import services as charging
from charging.models import PaymentMode, TransactionRecord
from charging.tests.money import prepaid_order_settled, profit_share_due
from fakes.pytest_wechatpay import SP_MCHID, SUB_MCHID
from settlement import services as ledger
from settlement import splits
from settlement.models import OwnerContract, SplitShare
from settlement.platform.services import commission_statement_build
from settlement.selectors import ledger_check

D = Decimal
S = ProfitShare.Status


@pytest.fixture
def commission(tenant):
    """tenant-a pays the platform 10 % of each order's split base."""
    before = tenant.commission_percent
    tenant.commission_percent = D("10")
    tenant.save(update_fields=["commission_percent"])
    yield tenant
    tenant.commission_percent = before


def _order(fake, member, connector, prepay="50"):
    return prepaid_order_settled(fake, member, connector, deliver=_post, prepay=prepay)


def _returns(fake, share):
    """The fake's 分账回退 of this split."""
    return [r for (m, _no), r in fake.server.ps_returns.items()
            if m == SUB_MCHID and r["out_order_no"] == share.out_order_no]


def _commission_balance():
    return ledger.system_account("platform_commission").balance


def test_commission_split_to_the_provider_and_returned_on_refund(
    partner, commission, fake, member, connector, tariff
):
    order, share = _order(fake, member, connector)
    payment = share.payment
    assert (payment.sp_mchid, payment.mchid, payment.profit_sharing) == (SP_MCHID, SUB_MCHID, True)
    sent = fake.server.order(payment.out_trade_no, SUB_MCHID).request
    assert sent["settle_info"] == {"profit_sharing": True} and sent["sub_mchid"] == SUB_MCHID
    # No rule: the base is what was paid (15.00); 10 % is the platform's, 1.50, owed until split.
    assert (share.status, share.commission, share.commission_mchid, share.receivers) == (
        S.PENDING, D("1.50"), SP_MCHID, [])
    assert _commission_balance() == D("1.50")
    # The unused 35.00 goes back the partner way.
    refund = PaymentRefund.objects.get(payment=payment)
    assert services.payment_refund_submit(refund_id=refund.pk).status == PaymentRefund.Status.PROCESSING
    assert fake.server.refunds[(SUB_MCHID, refund.out_refund_no)].request["sub_mchid"] == SUB_MCHID
    note = fake.server.complete_refund(refund.out_refund_no, mchid=SUB_MCHID, deliver=False)["notification"]
    assert _post(note).status_code == 204

    profit_share_due(share)
    share = services.profit_share_submit(share_id=share.pk)
    assert share.status == S.PROCESSING
    receiver = fake.server.ps_receivers[SUB_MCHID][("MERCHANT_ID", SP_MCHID)]
    assert (receiver["relation_type"], receiver["name"]) == ("SERVICE_PROVIDER", partner.merchant_name)
    stored = fake.server.ps_orders[(SUB_MCHID, share.out_order_no)]
    assert [(r["type"], r["account"], r["amount"]) for r in stored["receivers"]] == [
        ("MERCHANT_ID", SP_MCHID, 150)]
    assert stored["request"]["sub_mchid"] == SUB_MCHID
    share = services.profit_share_sync(share_id=share.pk)  # the result, queried
    assert share.status == S.FINISHED and share.commission_paid == D("1.50")
    assert _commission_balance() == D("0.00")  # the platform has its commission
    assert services.profit_share_sync(share_id=share.pk).commission_paid == D("1.50")  # once
    month = timezone.localdate().replace(day=1)
    statement = commission_statement_build(operator=connection.tenant, month=month)
    assert (statement.accrued, statement.reversed, statement.collected) == (D("1.50"), D("0.00"), D("1.50"))

    # A refund of 6.00 of the 15.00 order: 40 % of the commission (0.60) comes back.
    order.refunded_amount = D("6.00")
    funds.refund_split(order)
    share.refresh_from_db()
    assert share.commission_return_due == D("0.60")
    share = services.profit_share_submit(share_id=share.pk)  # the task queued on commit
    assert share.commission_returned == D("0.60")
    returns = _returns(fake, share)
    assert [(r["return_mchid"], r["amount"], r["result"]) for r in returns] == [(SP_MCHID, 60, "SUCCESS")]
    assert services.profit_share_submit(share_id=share.pk).commission_returned == D("0.60")  # once
    assert _commission_balance() == D("0.00")  # returned, then reversed by the refund
    # The rest of the order refunded: the rest of the commission back, never more.
    order.refunded_amount = D("15.00")
    funds.refund_split(order)
    share = services.profit_share_submit(share_id=ProfitShare.objects.get(pk=share.pk).pk)
    assert (share.commission_return_due, share.commission_returned) == (D("1.50"), D("1.50"))
    assert sum(r["amount"] for r in _returns(fake, share)) == 150
    assert _commission_balance() == D("0.00")
    statement = commission_statement_build(operator=connection.tenant, month=month)
    assert (statement.accrued, statement.reversed, statement.net, statement.collected) == (
        D("1.50"), D("1.50"), D("0.00"), D("0.00"))
    assert ledger_check().ok


def test_owners_and_commission_go_in_one_split(partner, commission, fake, member, connector, tariff,
                                               django_user_model):
    owner = django_user_model.objects.create_user("owner-sp", password="owner-pass-123", is_staff=True)
    OwnerContract.objects.create(owner=owner, openid="o-owner-sp", method=OwnerContract.Method.WECHAT)
    splits.split_rule_create(
        station_id=connector.pile.station_id, effective_from=timezone.now() - timedelta(days=1),
        profit_sharing=True, shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    _order_, share = _order(fake, member, connector)
    # base = the service fee 5.00: owner 40 % = 2.00, platform 10 % = 0.50
    assert (share.amount, share.commission) == (D("2.00"), D("0.50"))
    profit_share_due(share)
    services.profit_share_submit(share_id=share.pk)
    stored = fake.server.ps_orders[(SUB_MCHID, share.out_order_no)]
    assert sorted((r["type"], r["account"], r["amount"]) for r in stored["receivers"]) == [
        ("MERCHANT_ID", SP_MCHID, 50), ("PERSONAL_SUB_OPENID", "o-owner-sp", 200)]
    share = services.profit_share_sync(share_id=share.pk)
    assert share.status == S.FINISHED and share.commission_paid == D("0.50")
    assert ledger.owner_account(owner.pk).balance == D("0.00") and _commission_balance() == D("0.00")
    assert ledger_check().ok


def test_owners_not_eligible_the_commission_still_goes(partner, commission, fake, member, connector,
                                                       tariff, django_user_model):
    owner = django_user_model.objects.create_user("owner-sp2", password="owner-pass-123", is_staff=True)
    OwnerContract.objects.create(owner=owner, openid="", method=OwnerContract.Method.WECHAT)
    splits.split_rule_create(
        station_id=connector.pile.station_id, effective_from=timezone.now() - timedelta(days=1),
        profit_sharing=True, shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    _order_, share = _order(fake, member, connector)
    assert share.status == S.PENDING and share.receivers == [] and "openid" in share.reason
    assert (share.amount, share.commission) == (D("0.00"), D("0.50"))
    assert ledger.owner_account(owner.pk).balance == D("2.00")  # paid by statement


def test_refund_before_the_split_keeps_the_commission_payable(partner, commission, fake, member,
                                                              connector, tariff):
    order, share = _order(fake, member, connector)
    order.refunded_amount = D("15.00")
    funds.refund_split(order)
    share.refresh_from_db()
    assert share.status == S.CANCELLED and share.commission_return_due == D("0.00")
    assert _commission_balance() == D("0.00")  # reversed by the refund; nothing was sent
    profit_share_due(share)
    services.reconcile()
    share.refresh_from_db()
    assert share.unfrozen and not [k for k in fake.server.ps_orders if k[1] == share.out_order_no]
    assert ledger_check().ok


def test_direct_mode_commission_stays_on_the_statement(commission, fake, member, connector, tariff):
    order, share = _order_direct(fake, member, connector)
    assert share is None and not Payment.objects.get(order_ref=order.number).profit_sharing
    assert _commission_balance() == D("1.50")


def _order_direct(fake, member, connector):
    from billing.payments.tests.conftest import notify

    number, _params = charging.order_prepay_create(member=member, connector=connector, amount=D("50"))
    payment = Payment.objects.get(order_ref=number)
    assert payment.sp_mchid == ""
    assert notify(fake.paid_notification(payment.out_trade_no)).status_code == 204
    order = charging.order_start(member=member, connector=connector, mode=PaymentMode.PREPAY,
                                 prepay_ref=number)
    now = timezone.now()
    charging.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=D("0"),
        meter_stop_kwh=D("10"), energy_kwh=D("10"), pile_amount_yuan=D("15"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    order = charging.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    return order, ProfitShare.objects.filter(order_ref=order.number).first()


def test_unclear_return_answer_is_queried_before_any_retry(partner, commission, fake, member,
                                                           connector, tariff):
    order, share = _order(fake, member, connector)
    profit_share_due(share)
    services.profit_share_submit(share_id=share.pk)
    assert services.profit_share_sync(share_id=share.pk).commission_paid == D("1.50")
    order.refunded_amount = D("15.00")
    funds.refund_split(order)
    # WeChat makes the return but the answer is lost.
    fake.server.inject_failure(path="/v3/profitsharing/return-orders", method="POST", mode="error",
                               status=500, apply=True, count=1)
    share = services.profit_share_submit(share_id=share.pk)
    assert share.commission_returned == D("0.00") and share.attempts == 1
    assert _commission_balance() == D("-1.50")  # reversed by the refund, not yet back
    assert services.reconcile().profit_shares == 1  # the reconcile job asks again
    share.refresh_from_db()
    assert share.commission_returned == D("1.50")  # found by the query: not sent twice
    assert [r["amount"] for r in _returns(fake, share)] == [150]
    assert _commission_balance() == D("0.00") and ledger_check().ok


def test_a_later_refund_while_a_return_answer_is_lost_returns_nothing_twice(
        partner, commission, fake, member, connector, tariff):
    """A partial refund's commission return is made but its answer lost; a second refund
    raises what is due before the reconcile job runs. The lost return is asked about first
    (and booked), then only the rest is returned: WeChat and the ledger agree."""
    order, share = _order(fake, member, connector)
    profit_share_due(share)
    services.profit_share_submit(share_id=share.pk)
    assert services.profit_share_sync(share_id=share.pk).commission_paid == D("1.50")
    order.refunded_amount = D("7.50")
    funds.refund_split(order)
    fake.server.inject_failure(path="/v3/profitsharing/return-orders", method="POST", mode="error",
                               status=500, apply=True, count=1)
    share = services.profit_share_submit(share_id=share.pk)
    assert share.commission_returned == D("0.00") and share.commission_return_no
    assert [r["amount"] for r in _returns(fake, share)] == [75]  # made at WeChat all the same
    order.refunded_amount = D("15.00")
    funds.refund_split(order)
    share.refresh_from_db()
    assert share.commission_return_due == D("1.50")
    assert services.reconcile().profit_shares == 1
    share.refresh_from_db()
    assert (share.commission_returned, share.commission_return_no) == (D("1.50"), "")
    assert sorted(r["amount"] for r in _returns(fake, share)) == [75, 75]
    assert _commission_balance() == D("0.00") and ledger_check().ok
    # Asked again: nothing more to return, nothing sent.
    services.profit_share_submit(share_id=share.pk)
    assert len(_returns(fake, share)) == 2
