"""WeChat Pay 分账 wired into pay-per-order charging orders, end to end against the fake
WeChat Pay server: the payment made for profit sharing when the station's rule says so, the
owners' shares sent a minute after payment, the result queried, refusals and unclear answers
(queried before any retry: split exactly once), refunds, and the ledger clean throughout."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.payments import services
from billing.payments.models import Payment, ProfitShare
from billing.payments.tests.conftest import notify
from charging.tests.money import prepaid_order_settled, profit_share_due
from settlement import services as ledger
from settlement import splits, statements
from settlement.models import OwnerContract, SplitLine, SplitShare
from settlement.selectors import ledger_check

D = Decimal
S = ProfitShare.Status


@pytest.fixture
def owner(tenant, django_user_model, connector):
    owner = django_user_model.objects.create_user("owner-ps", password="owner-pass-123", is_staff=True)
    OwnerContract.objects.create(owner=owner, openid="o-owner-ps", method=OwnerContract.Method.WECHAT)
    splits.split_rule_create(
        station_id=connector.pile.station_id, effective_from=timezone.now() - timedelta(days=1),
        profit_sharing=True, shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    return owner


def _order(fake, member, connector, prepay="50"):
    return prepaid_order_settled(fake, member, connector, deliver=notify, prepay=prepay)


def _ps_orders(fake, share):
    return [no for (_m, no) in fake.server.ps_orders if no == share.out_order_no]


def _balances(owner):
    return (ledger.owner_account(owner.pk).balance,
            ledger.system_account("payout_in_transit").balance)


def test_owner_share_sent_by_profit_sharing_after_settlement(fake, member, connector, tariff, owner):
    order, share = _order(fake, member, connector)
    assert order.state == "settled" and order.total_amount == D("15.00")
    fake_order = next(o for o in fake.server.orders.values() if o.out_trade_no == share.payment.out_trade_no)
    assert fake_order.request["settle_info"] == {"profit_sharing": True}
    # 40 % of the service fee 5.00: held in transit, not in the payable a statement would pay.
    assert (share.status, share.amount, share.receivers) == (
        S.PENDING, D("2.00"), [{"owner_id": owner.pk, "openid": "o-owner-ps", "amount": "2.00"}])
    assert _balances(owner) == (D("0.00"), D("2.00"))
    # WeChat takes no split within a minute of payment: nothing is sent yet.
    assert services.profit_share_submit(share_id=share.pk).status == S.PENDING
    assert _ps_orders(fake, share) == []
    profit_share_due(share)
    share = services.profit_share_submit(share_id=share.pk)
    assert share.status == S.PROCESSING and _ps_orders(fake, share) == [share.out_order_no]
    stored = fake.server.ps_orders[(fake_order.mchid, share.out_order_no)]
    assert [(r["account"], r["amount"]) for r in stored["receivers"]] == [("o-owner-ps", 200)]
    assert stored["unfreeze_unsplit"] is True
    # The result is queried by the reconcile job.
    assert services.reconcile().profit_shares == 1
    share.refresh_from_db()
    assert share.status == S.FINISHED and share.unfrozen and share.order_id
    assert _balances(owner) == (D("0.00"), D("0.00"))
    # Clearing: 50 in, 35 unused refund requested (still in transit), 2 sent to the owner.
    assert ledger.system_account("wechat_clearing").balance == D("48.00")
    # Done: another run neither sends nor posts again.
    assert services.reconcile().profit_shares == 0
    assert services.profit_share_sync(share_id=share.pk).status == S.FINISHED
    # The owner's statement shows the share and its payment by 分账: nothing left to pay.
    day = timezone.now() + timedelta(minutes=1)
    statement = statements.statement_build(owner_id=owner.pk, period_start=day - timedelta(days=1),
                                           period_end=day, now=day)
    assert (statement.share, statement.net) == (D("2.00"), D("0.00"))
    assert sorted(SplitLine.objects.filter(owner=owner).values_list("kind", "amount")) == [
        (SplitLine.Kind.PROFIT_SHARING, D("-2.00")), (SplitLine.Kind.SHARE, D("2.00"))]
    assert ledger_check().ok


def test_unclear_answer_is_queried_before_a_retry_and_splits_once(fake, member, connector, tariff, owner):
    _order_, share = _order(fake, member, connector)
    profit_share_due(share)
    # WeChat makes the split but the answer is lost (500), then the query fails too.
    fake.server.inject_failure(path="/v3/profitsharing/orders", method="POST", mode="error",
                               status=500, apply=True, count=1)
    fake.server.inject_failure(path="/v3/profitsharing/orders/", method="GET", mode="error",
                               status=500, count=1)
    share = services.profit_share_submit(share_id=share.pk)
    assert share.status == S.UNCLEAR and share.attempts == 1
    assert services.profit_share_sync(share_id=share.pk).status == S.UNCLEAR  # query failed
    assert len(_ps_orders(fake, share)) == 1 and _balances(owner) == (D("0.00"), D("2.00"))
    share = services.profit_share_sync(share_id=share.pk)  # the query finds it: no second split
    assert share.status == S.FINISHED and len(_ps_orders(fake, share)) == 1
    assert _balances(owner) == (D("0.00"), D("0.00"))
    assert ledger_check().ok


def test_timeout_before_wechat_saw_it_sends_once_later(fake, member, connector, tariff, owner):
    _order_, share = _order(fake, member, connector)
    profit_share_due(share)
    fake.server.inject_failure(path="/v3/profitsharing/orders", method="POST", mode="reset", count=1)
    assert services.profit_share_submit(share_id=share.pk).status == S.UNCLEAR
    assert _ps_orders(fake, share) == []
    share = services.profit_share_sync(share_id=share.pk)  # not found at WeChat: sent now
    assert share.status == S.PROCESSING and len(_ps_orders(fake, share)) == 1
    assert services.profit_share_sync(share_id=share.pk).status == S.FINISHED
    assert ledger_check().ok


def test_refusal_puts_the_share_back_for_the_statement(fake, member, connector, tariff, owner):
    _order_, share = _order(fake, member, connector)
    profit_share_due(share)
    fake.server.inject_failure(path="/v3/profitsharing/orders", method="POST", mode="error",
                               status=400, body={"code": "RULE_LIMIT", "message": "超出比例"}, count=1)
    share = services.profit_share_submit(share_id=share.pk)
    assert share.status == S.FAILED and "RULE_LIMIT" in share.reason
    assert _balances(owner) == (D("2.00"), D("0.00"))  # paid by the next statement instead
    assert share.unfrozen  # the frozen funds released to the merchant
    assert services.profit_share_sync(share_id=share.pk).status == S.FAILED
    assert _ps_orders(fake, share) == [] and ledger_check().ok


def test_not_eligible_orders_are_skipped_and_unfrozen(fake, member, connector, tariff, owner):
    OwnerContract.objects.filter(owner=owner).update(openid="")
    _order_, share = _order(fake, member, connector)
    assert share.status == S.SKIPPED and "openid" in share.reason
    assert _balances(owner) == (D("2.00"), D("0.00"))
    profit_share_due(share)
    services.reconcile()
    share.refresh_from_db()
    assert share.unfrozen and _ps_orders(fake, share) == []
    # Above WeChat's 30 %: a prepayment of 6.00 for the 15.00 order (2.00 > 1.80).
    OwnerContract.objects.filter(owner=owner).update(openid="o-owner-ps")
    _order_, share = _order(fake, member, connector, prepay="6")
    assert share.status == S.SKIPPED and "30" in share.reason
    assert ledger_check().ok


def test_a_station_without_profit_sharing_pays_normally(fake, member, connector, tariff, owner):
    splits.split_rule_create(
        station_id=connector.pile.station_id, effective_from=timezone.now() - timedelta(hours=1),
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    order, share = _order(fake, member, connector)
    assert share is None and not Payment.objects.get(order_ref=order.number).profit_sharing
    assert _balances(owner) == (D("2.00"), D("0.00"))


def _refund(order, amount):
    """What a refund of the order does to its split (charging.funds.refund_split; staff
    refunds exist for wallet orders only so far)."""
    splits.order_split_refund(order_ref=order.number, paid=order.paid_amount, refunded=D(amount))
    return services.profit_share_order_refunded(order_ref=order.number)


def test_refund_before_the_split_cancels_it_after_it_nets_off(fake, member, connector, tariff, owner):
    order, share = _order(fake, member, connector)
    assert _refund(order, "15.00").status == S.CANCELLED
    assert _balances(owner) == (D("0.00"), D("0.00"))  # back to the payable, then reversed
    profit_share_due(share)
    services.reconcile()
    share.refresh_from_db()
    assert share.status == S.CANCELLED and share.unfrozen and _ps_orders(fake, share) == []
    # After the split went out the owner was paid: the reversal takes the payable negative
    # and the next statement nets it off.
    order, share = _order(fake, member, connector)
    profit_share_due(share)
    services.profit_share_sync(share_id=share.pk)
    assert services.profit_share_sync(share_id=share.pk).status == S.FINISHED
    assert _refund(order, "15.00").status == S.FINISHED
    assert _balances(owner) == (D("-2.00"), D("0.00"))
    assert ledger_check().ok
