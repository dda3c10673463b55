"""Statements per owner: built, confirmed (then immutable), paid; refunds after a payout
net off the next statement; ledger_verify checks payables against splits − payouts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from charging import services as charging
from charging.tests.test_order_admin import _settled
from settlement import splits, statements
from settlement.models import Account, OwnerContract, Payout, SplitLine, SplitShare, Statement
from settlement.selectors import ledger_check
from settlement.services import owner_account, system_account

D = Decimal


@pytest.fixture
def rule(station, owner):
    return splits.split_rule_create(
        station_id=station.pk, effective_from=timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )


def _build(owner):
    end = timezone.now()
    return statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)


def test_build_confirm_pay_offline(rule, funded_member, connector, tariff, owner, django_user_model):
    _settled(funded_member, connector)
    _settled(funded_member, connector)
    statement = _build(owner)
    assert (statement.orders, statement.energy_kwh, statement.gross, statement.share, statement.net) == (
        2, D("20.0000"), D("30.00"), D("4.00"), D("4.00"))
    assert statements.statement_period_stats(statement).energy_by_period
    again = statements.statement_build(
        owner_id=owner.pk, period_start=statement.period_start, period_end=statement.period_end
    )
    assert again.pk == statement.pk  # built once per period
    staff = django_user_model.objects.create_user("ops-s")
    with pytest.raises(splits.SettlementError) as exc:
        statements.statement_pay_offline(statement_id=statement.pk, reference="B1", user=staff)
    assert exc.value.code == "statement_not_confirmed"
    statements.statement_confirm(statement_id=statement.pk, user=staff)
    with pytest.raises(splits.SettlementError) as exc:
        statements.statement_confirm(statement_id=statement.pk, user=staff)
    assert exc.value.code == "statement_not_draft"
    with pytest.raises(splits.SettlementError) as exc:
        statements.statement_pay_offline(statement_id=statement.pk, reference=" ", user=staff)
    assert exc.value.code == "reference_required"
    payout = statements.statement_pay_offline(statement_id=statement.pk, reference="ICBC-20261130-01", user=staff)
    statement.refresh_from_db()
    assert statement.status == Statement.Status.PAID and payout.reference == "ICBC-20261130-01"
    assert owner_account(owner.pk).balance == D("0.00")
    assert system_account(Account.Kind.BANK).balance == D("-4.00")
    assert ledger_check().ok


def test_confirmed_statement_is_immutable(rule, funded_member, connector, tariff, owner):
    _settled(funded_member, connector)
    statement = statements.statement_confirm(statement_id=_build(owner).pk, user=None)
    with pytest.raises(DatabaseError, match="corrections go into the next one"), transaction.atomic():
        Statement.objects.filter(pk=statement.pk).update(net=D("999"))
    with pytest.raises(DatabaseError, match="is fixed once written"), transaction.atomic():
        SplitLine.objects.filter(statement=statement).update(statement=None)
    with pytest.raises(DatabaseError, match="never deleted"), transaction.atomic():
        SplitLine.objects.filter(owner=owner).delete()
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        with connection.cursor() as cursor:  # past Django's own PROTECT check
            cursor.execute("DELETE FROM settlement_statement WHERE id = %s", [statement.pk])


def test_refund_after_payout_nets_off_the_next_statement(
    rule, funded_member, connector, tariff, owner, django_user_model
):
    staff = django_user_model.objects.create_user("ops-n")
    order = _settled(funded_member, connector)  # owner 40 % of 5.00 = 2.00
    first = statements.statement_confirm(statement_id=_build(owner).pk, user=staff)
    statements.statement_pay_offline(statement_id=first.pk, reference="B-1", user=staff)
    charging.order_refund_partial(order_id=order.pk, amount=D("15.00"), user=staff, reason="全额退款")
    assert owner_account(owner.pk).balance == D("-2.00")  # paid already: the payable goes negative
    assert ledger_check().ok
    # Nothing else earned: the next statement is −2.00, pays nothing, and carries it on.
    second = _build(owner)
    assert (second.share, second.adjustments, second.net, second.refunds) == (
        D("0.00"), D("-2.00"), D("-2.00"), D("15.00"))
    second = statements.statement_confirm(statement_id=second.pk, user=staff)
    assert second.status == Statement.Status.CARRIED
    _settled(funded_member, connector)
    _settled(funded_member, connector)
    third = _build(owner)
    assert (third.share, third.adjustments, third.net) == (D("4.00"), D("-2.00"), D("2.00"))
    statements.statement_confirm(statement_id=third.pk, user=staff)
    statements.statement_pay_offline(statement_id=third.pk, reference="B-3", user=staff)
    assert owner_account(owner.pk).balance == D("0.00")
    assert ledger_check().ok


def test_wechat_payout_failure_returns_to_payable(rule, funded_member, connector, tariff, owner):
    _settled(funded_member, connector)
    statement = statements.statement_confirm(statement_id=_build(owner).pk, user=None)
    with pytest.raises(splits.SettlementError) as exc:
        statements.payout_open(statement_id=statement.pk, user=None)
    assert exc.value.code == "no_openid"
    OwnerContract.objects.create(owner=owner, method=OwnerContract.Method.WECHAT, openid="o-owner-li")
    payout = statements.payout_open(statement_id=statement.pk, user=None)
    assert owner_account(owner.pk).balance == D("0.00")
    assert system_account(Account.Kind.PAYOUT_TRANSIT).balance == D("2.00")
    statements.payout_finish(payout_id=payout.pk, success=False, reason="NAME_MISMATCH")
    assert owner_account(owner.pk).balance == D("2.00")
    assert Statement.objects.get(pk=statement.pk).status == Statement.Status.CONFIRMED
    again = statements.payout_open(statement_id=statement.pk, user=None)
    assert again.out_bill_no != payout.out_bill_no
    statements.payout_finish(payout_id=again.pk, success=True)
    statements.payout_finish(payout_id=again.pk, success=True)  # idempotent
    assert Statement.objects.get(pk=statement.pk).status == Statement.Status.PAID
    assert system_account(Account.Kind.PAYOUT_TRANSIT).balance == D("0.00")
    assert Payout.objects.filter(statement=statement).count() == 2
    assert ledger_check().ok


def test_build_due_per_contract(rule, funded_member, connector, tariff, owner):
    OwnerContract.objects.create(owner=owner, cycle=OwnerContract.Cycle.DAILY, delay_days=1)
    _settled(funded_member, connector)
    assert statements.statements_build_due() == []  # yesterday's period holds nothing yet
    built = statements.statements_build_due(now=timezone.now() + timedelta(days=3))
    assert len(built) == 1 and built[0].net == D("2.00")
    assert statements.statements_build_due(now=timezone.now() + timedelta(days=3)) == []


def test_open_period_is_refused(owner, tenant):
    with pytest.raises(splits.SettlementError) as exc:
        statements.statement_build(owner_id=owner.pk, period_start=timezone.now(),
                                   period_end=timezone.now() + timedelta(hours=1))
    assert exc.value.code == "period_open"


def test_ledger_check_finds_a_payable_off_its_splits(rule, funded_member, connector, tariff, owner):
    _settled(funded_member, connector)
    Account.objects.filter(code=f"owner_payable:{owner.pk}").update(balance=D("5.00"))
    report = ledger_check()
    assert report.payables == [(f"owner_payable:{owner.pk}", D("5.00"), D("2.00"))]
    Account.objects.filter(code=f"owner_payable:{owner.pk}").update(balance=D("2.00"))


def test_beat_fans_out_the_statement_build(settings, rule, funded_member, connector, tariff, owner):
    from settlement.tasks import statements_build_due_task

    entry = settings.CELERY_BEAT_SCHEDULE["settlement-statements"]
    assert entry["task"] == "evplatform.fan_out" and entry["args"] == ["settlement.statements_build_due"]
    OwnerContract.objects.create(owner=owner, cycle=OwnerContract.Cycle.DAILY, delay_days=0)
    _settled(funded_member, connector)
    assert statements_build_due_task() == []  # today's period has not ended
