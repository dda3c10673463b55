"""Station-owner payouts by WeChat Pay merchant transfer (scene 佣金报酬) through the fake
WeChat Pay server: a confirmed statement is paid, the owner confirms, the ledger follows;
an unclear answer is queried before any retry; a notification finishes it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.payments import services
from settlement import services as ledger
from settlement import splits, statements
from settlement.models import Account, OwnerContract, Payout, SplitShare, Statement
from settlement.selectors import ledger_check

from .conftest import notify

D = Decimal


@pytest.fixture
def confirmed(fake, member, django_user_model):
    """A confirmed statement of ¥40.00 for an owner paid by WeChat transfer."""
    from stations.models import Station

    owner = django_user_model.objects.create_user("owner-pay")
    OwnerContract.objects.create(owner=owner, method=OwnerContract.Method.WECHAT, openid="o-owner-pay")
    station = Station.objects.create(name="站", code="P1", address="-", area_code="440106",
                                     latitude=D("23.1"), longitude=D("113.3"))
    splits.split_rule_create(
        station_id=station.pk, effective_from=timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
        base="total",
    )
    ledger.wallet_top_up(member=member, amount=D("100"), key="wx:txn:p")
    ledger.order_charge(member=member, amount=D("100"), key="order:P1:charge", ref="P1")
    splits.order_split_settle(
        order_ref="P1", station_id=station.pk, pile_id=None, started_at=timezone.now(),
        paid=D("100"), electricity=D("60"), service=D("40"), discount=D("0"), energy_kwh=D("80"),
    )
    end = timezone.now()
    statement = statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)
    return statements.statement_confirm(statement_id=statement.pk, user=None)


def test_statement_paid_through_wechat_transfer(fake, confirmed):
    assert confirmed.net == D("40.00")
    payout = statements.payout_open(statement_id=confirmed.pk, user=None)
    payout = services.owner_payout_submit(payout_id=payout.pk)
    assert payout.status == Payout.Status.WAIT_USER_CONFIRM and payout.package_info
    transfer = fake.server._find_transfer(payout.out_bill_no, None)
    assert (transfer.transfer_amount, transfer.openid, transfer.transfer_scene_id) == (4000, "o-owner-pay", "1005")
    fake.server.complete_transfer(payout.out_bill_no)
    payout = services.owner_payout_sync(payout_id=payout.pk)
    assert payout.status == Payout.Status.SUCCESS
    assert Statement.objects.get(pk=confirmed.pk).status == Statement.Status.PAID
    assert ledger.owner_account(confirmed.owner_id).balance == D("0.00")
    assert ledger.system_account(Account.Kind.PAYOUT_TRANSIT).balance == D("0.00")
    assert ledger.system_account(Account.Kind.CLEARING).balance == D("60.00")
    assert ledger_check().ok


def test_unclear_answer_is_queried_before_any_retry(fake, confirmed):
    payout = statements.payout_open(statement_id=confirmed.pk, user=None)
    fake.server.inject_failure(
        path="/v3/fund-app/mch-transfer/transfer-bills", method="POST", mode="error", status=500,
        apply=True, count=1,
    )
    payout = services.owner_payout_submit(payout_id=payout.pk)
    assert payout.status == Payout.Status.UNCLEAR
    payout = services.owner_payout_submit(payout_id=payout.pk)  # queries: the bill exists
    assert payout.status == Payout.Status.WAIT_USER_CONFIRM
    assert len([t for t in fake.server.transfers.values() if t.out_bill_no == payout.out_bill_no]) == 1


def test_failed_transfer_returns_to_payable_and_notification_applies(fake, confirmed):
    payout = services.owner_payout_submit(payout_id=statements.payout_open(statement_id=confirmed.pk, user=None).pk)
    done = fake.server.complete_transfer(payout.out_bill_no, state="FAIL", deliver=False)
    r = notify(done["notification"], kind="transfer")
    assert r.status_code in (200, 204)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.FAILED
    assert ledger.owner_account(confirmed.owner_id).balance == D("40.00")
    assert Statement.objects.get(pk=confirmed.pk).status == Statement.Status.CONFIRMED
    assert ledger_check().ok


@pytest.fixture
def wechat_owner(fake, member, django_user_model):
    """An owner paid by WeChat transfer (T+0) who has earned 40.00."""
    from stations.models import Station

    owner = django_user_model.objects.create_user("owner-wd")
    OwnerContract.objects.create(owner=owner, method=OwnerContract.Method.WECHAT, openid="o-owner-wd",
                                 delay_days=0)
    station = Station.objects.create(name="站", code="P2", address="-", area_code="440106",
                                     latitude=D("23.1"), longitude=D("113.3"))
    splits.split_rule_create(
        station_id=station.pk, effective_from=timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))], base="total",
    )
    ledger.wallet_top_up(member=member, amount=D("100"), key="wx:txn:wd")
    ledger.order_charge(member=member, amount=D("100"), key="order:P2:charge", ref="P2")
    splits.order_split_settle(
        order_ref="P2", station_id=station.pk, pile_id=None, started_at=timezone.now(),
        paid=D("100"), electricity=D("60"), service=D("40"), discount=D("0"), energy_kwh=D("80"),
    )
    return owner


@pytest.mark.parametrize("outcome", ["SUCCESS", "FAIL"])
def test_owner_withdrawal_paid_by_wechat_transfer(fake, wechat_owner, django_user_model, outcome):
    from settlement import withdrawals
    from settlement.models import OwnerWithdrawal

    approver = django_user_model.objects.create_user("ops-wd")
    w = withdrawals.withdrawal_request(owner_id=wechat_owner.pk, amount=D("25"))
    w = withdrawals.withdrawal_approve(withdrawal_id=w.pk, user=approver)
    payout = w.payouts.get()
    assert payout.out_bill_no.startswith("PO") and payout.statement_id is None
    payout = services.owner_payout_submit(payout_id=payout.pk)
    assert payout.status == Payout.Status.WAIT_USER_CONFIRM
    transfer = fake.server._find_transfer(payout.out_bill_no, None)
    assert (transfer.transfer_amount, transfer.openid, transfer.transfer_scene_id) == (2500, "o-owner-wd", "1005")
    fake.server.complete_transfer(payout.out_bill_no, state=outcome)
    payout = services.owner_payout_sync(payout_id=payout.pk)
    w.refresh_from_db()
    if outcome == "SUCCESS":
        assert (payout.status, w.status) == (Payout.Status.SUCCESS, OwnerWithdrawal.Status.PAID)
        assert ledger.owner_account(wechat_owner.pk).balance == D("15.00")
        assert ledger.system_account(Account.Kind.CLEARING).balance == D("75.00")
    else:
        assert (payout.status, w.status) == (Payout.Status.FAILED, OwnerWithdrawal.Status.FAILED)
        assert ledger.owner_account(wechat_owner.pk).balance == D("40.00")
    assert ledger.system_account(Account.Kind.PAYOUT_TRANSIT).balance == D("0.00")
    assert ledger_check().ok, ledger_check()
