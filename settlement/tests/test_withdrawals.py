"""Station owners' withdrawals: asked for in the owner center, reviewed (two different
approvers above the threshold), paid by bank or returned; the next statement nets a paid
withdrawal off, so nothing is paid twice; every refusal. The ledger (and its payable check)
is verified after every test by the autouse fixture."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Member
from accounts.services import tokens_for
from settlement import services as ledger
from settlement import splits, statements, withdrawals
from settlement.models import Account, OwnerContract, OwnerWithdrawal, SplitLine, SplitShare
from settlement.selectors import owner_payable_expected

D = Decimal
W = OwnerWithdrawal.Status


@pytest.fixture
def earning(tenant, owner, station, member):
    """``owner`` (paid by bank, T+0) has earned 40.00 on one ¥100 order at ``station``."""
    OwnerContract.objects.create(owner=owner, method=OwnerContract.Method.BANK, delay_days=0,
                                 bank_name="工商银行", bank_account="6222000011112222")
    splits.split_rule_create(
        station_id=station.pk, effective_from=timezone.now() - timedelta(days=1), base="total",
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    ledger.wallet_top_up(member=member, amount=D("300"), key="wx:txn:w")
    _order(station, member, "W1")
    return owner


def _order(station, member, ref, amount=D(100)):  # noqa: B008 (an immutable Decimal)
    ledger.order_charge(member=member, amount=amount, key=f"order:{ref}:charge", ref=ref)
    splits.order_split_settle(
        order_ref=ref, station_id=station.pk, pile_id=None, started_at=timezone.now(),
        paid=amount, electricity=amount * D("0.6"), service=amount * D("0.4"), discount=D("0"),
        energy_kwh=D("80"),
    )


@pytest.fixture
def staff(django_user_model):
    return [django_user_model.objects.create_user(f"ops-{n}") for n in ("zhang", "zhao")]


def _refused(code, call, **kwargs):
    with pytest.raises(splits.SettlementError) as exc:
        call(**kwargs)
    assert exc.value.code == code, exc.value.code


def test_request_approve_and_pay_by_bank_then_the_statement_nets_it(earning, staff, station, member):
    owner = earning
    assert withdrawals.owner_available(owner.pk) == D("40.00")
    w = withdrawals.withdrawal_request(owner_id=owner.pk, amount=D("30"))
    assert (w.status, w.two_person, w.method) == (W.REQUESTED, False, OwnerContract.Method.BANK)
    assert ledger.owner_account(owner.pk).balance == D("10.00")
    assert withdrawals.owner_available(owner.pk) == D("10.00")  # cannot be asked for twice
    _refused("withdrawal_not_approved", withdrawals.withdrawal_pay_offline,
             withdrawal_id=w.pk, reference="B1", user=staff[0])
    w = withdrawals.withdrawal_approve(withdrawal_id=w.pk, user=staff[0])
    assert w.status == W.APPROVED and w.payouts.count() == 0  # a bank withdrawal waits for its reference
    _refused("reference_required", withdrawals.withdrawal_pay_offline,
             withdrawal_id=w.pk, reference=" ", user=staff[0])
    w = withdrawals.withdrawal_pay_offline(withdrawal_id=w.pk, reference="ICBC-778", user=staff[0])
    assert (w.status, w.reference) == (W.PAID, "ICBC-778")
    assert ledger.system_account(Account.Kind.BANK).balance == D("-30.00")
    assert ledger.system_account(Account.Kind.PAYOUT_TRANSIT).balance == D("0.00")
    _order(station, member, "W2")  # another 40.00
    end = timezone.now()
    statement = statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)
    # 40 + 40 earned, 30 paid ahead: the statement pays the rest, never the 30 again.
    assert (statement.share, statement.adjustments, statement.net) == (D("80.00"), D("-30.00"), D("50.00"))
    assert statement.lines.filter(kind=SplitLine.Kind.WITHDRAWAL, withdrawal=w).exists()
    statements.statement_confirm(statement_id=statement.pk, user=staff[0])
    statements.statement_pay_offline(statement_id=statement.pk, reference="ICBC-779", user=staff[0])
    assert ledger.owner_account(owner.pk).balance == D("0.00")
    assert owner_payable_expected()[owner.pk] == D("0.00")


def test_above_the_threshold_two_different_people_approve(earning, staff):
    policy = ledger.money_policy()
    policy.owner_withdrawal_two_person_above = D("20.00")
    policy.save()
    w = withdrawals.withdrawal_request(owner_id=earning.pk, amount=D("25"))
    assert w.two_person
    _refused("own_withdrawal", withdrawals.withdrawal_approve, withdrawal_id=w.pk, user=earning)
    w = withdrawals.withdrawal_approve(withdrawal_id=w.pk, user=staff[0])
    assert (w.status, w.first_approver) == (W.SECOND_REVIEW, staff[0])
    _refused("same_approver", withdrawals.withdrawal_approve, withdrawal_id=w.pk, user=staff[0])
    w = withdrawals.withdrawal_approve(withdrawal_id=w.pk, user=staff[1])
    assert (w.status, w.second_approver) == (W.APPROVED, staff[1])
    _refused("withdrawal_not_pending", withdrawals.withdrawal_approve, withdrawal_id=w.pk, user=staff[1])
    _refused("withdrawal_not_pending", withdrawals.withdrawal_reject, withdrawal_id=w.pk, user=staff[1],
             reason="late")


def test_rejection_returns_the_amount(earning, staff):
    w = withdrawals.withdrawal_request(owner_id=earning.pk, amount=D("40"))
    assert withdrawals.owner_available(earning.pk) == D("0.00")
    _refused("reason_required", withdrawals.withdrawal_reject, withdrawal_id=w.pk, user=staff[0], reason="")
    w = withdrawals.withdrawal_reject(withdrawal_id=w.pk, user=staff[0], reason="银行信息有误")
    assert (w.status, w.rejected_by, w.reason) == (W.REJECTED, staff[0], "银行信息有误")
    assert ledger.owner_account(earning.pk).balance == D("40.00")
    assert withdrawals.owner_available(earning.pk) == D("40.00")
    assert sum(line.amount for line in w.lines.all()) == D("0.00")  # −40 then +40


def test_refusals_of_a_request(earning, tenant, owner2, django_user_model):
    _refused("withdrawal_exceeds_available", withdrawals.withdrawal_request, owner_id=earning.pk, amount=D("40.01"))
    _refused("withdrawal_below_minimum", withdrawals.withdrawal_request, owner_id=earning.pk, amount=D("9.99"))
    _refused("no_contract", withdrawals.withdrawal_request, owner_id=owner2.pk, amount=D("10"))
    OwnerContract.objects.create(owner=owner2, method=OwnerContract.Method.WECHAT)
    _refused("no_openid", withdrawals.withdrawal_request, owner_id=owner2.pk, amount=D("10"))


def test_available_excludes_built_statements_and_the_refund_window(earning, station, member):
    contract = earning.owner_contract
    contract.delay_days = 3
    contract.save()
    assert withdrawals.owner_available(earning.pk) == D("0.00")  # earned today: still refundable
    later = timezone.now() + timedelta(days=4)
    assert withdrawals.owner_available(earning.pk, now=later) == D("40.00")
    end = timezone.now()
    statements.statement_build(owner_id=earning.pk, period_start=end - timedelta(days=1), period_end=end)
    assert withdrawals.owner_available(earning.pk, now=later) == D("0.00")  # the statement pays it


def test_owner_center_api(earning, staff):
    member = Member.objects.create(openid="openid-owner-w")
    contract = earning.owner_contract
    contract.member = member
    contract.save()
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(member).access}")
    assert api.get("/api/app/v1/owner/overview").json()["available"] == "40.00"
    r = api.post("/api/app/v1/owner/withdrawals", {"amount": "50.00"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "withdrawal_exceeds_available"
    r = api.post("/api/app/v1/owner/withdrawals", {"amount": "15.50"}, format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["amount"], r.json()["status"]) == ("15.50", "requested")
    listed = api.get("/api/app/v1/owner/withdrawals").json()["results"]
    assert [w["amount"] for w in listed] == ["15.50"]
    assert api.get("/api/app/v1/owner/overview").json()["available"] == "24.50"
    stranger = Member.objects.create(openid="openid-not-owner")
    other = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(stranger).access}")
    r = other.post("/api/app/v1/owner/withdrawals", {"amount": "1.00"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "not_station_owner"


def test_admin_review_two_people_and_reject(earning, django_user_model):
    from django.test import Client

    host = {"HTTP_HOST": "tenant-a.testserver"}
    policy = ledger.money_policy()
    policy.owner_withdrawal_two_person_above = D("20.00")
    policy.save()
    big = withdrawals.withdrawal_request(owner_id=earning.pk, amount=D("25"))
    small = withdrawals.withdrawal_request(owner_id=earning.pk, amount=D("10"))
    clients = []
    for name in ("ops-a", "ops-b"):
        client = Client()
        client.force_login(django_user_model.objects.create_superuser(name, password="x-pass-123"))
        clients.append(client)
    url = "/admin/settlement/ownerwithdrawal/"
    assert big.number in clients[0].get(url, **host).content.decode()
    act = {"action": "approve", "_selected_action": [big.pk]}
    clients[0].post(url, act, **host)
    clients[0].post(url, act, **host)  # the same person again: refused, still waiting
    big.refresh_from_db()
    assert big.status == W.SECOND_REVIEW
    clients[1].post(url, act, **host)
    big.refresh_from_db()
    assert big.status == W.APPROVED and big.second_approver.username == "ops-b"
    page = clients[0].get(f"{url}{small.pk}/change/", **host).content.decode()
    assert f"{url}{small.pk}/reject/" in page
    r = clients[0].post(f"{url}{small.pk}/reject/", {"reason": "资料不全"}, **host)
    assert r.status_code == 302
    small.refresh_from_db()
    assert (small.status, small.reason) == (W.REJECTED, "资料不全")
    r = clients[0].post(f"{url}{big.pk}/pay-offline/", {"reference": "ICBC-9"}, **host)
    big.refresh_from_db()
    assert big.status == W.PAID and big.reference == "ICBC-9"
