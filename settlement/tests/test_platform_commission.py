"""The super admin's commission statements: per operator and month, from the operator's
ledger (commission taken on splits, less refund reversals); confirmed ones never change."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from settlement import services as ledger
from settlement import splits
from settlement.platform import services
from settlement.platform.models import CommissionStatement
from settlement.statements import operator_zone

D = Decimal


@pytest.fixture
def commission(tenant):
    before = tenant.commission_percent
    tenant.commission_percent = D("5")
    yield tenant
    tenant.commission_percent = before


def _order(station, member, ref):
    ledger.order_charge(member=member, amount=D("100"), key=f"order:{ref}:charge", ref=ref)
    splits.order_split_settle(
        order_ref=ref, station_id=station.pk, pile_id=None, started_at=timezone.now(),
        paid=D("100"), electricity=D("60"), service=D("40"), discount=D("0"), energy_kwh=D("80"),
    )


def test_commission_taken_and_reversed_by_month(commission, station, member, django_user_model):
    ledger.wallet_top_up(member=member, amount=D("300"), key="wx:txn:c")
    _order(station, member, "C1")
    _order(station, member, "C2")
    splits.order_split_refund(order_ref="C2", paid=D("100"), refunded=D("50"))
    month = timezone.now().astimezone(operator_zone()).date().replace(day=1)
    statement = services.commission_statement_build(operator=commission, month=month)
    # No split rule: the base is what was paid, the platform takes 5 % of it.
    assert (statement.orders, statement.base, statement.accrued, statement.reversed, statement.net) == (
        2, D("200.00"), D("10.00"), D("2.50"), D("7.50"))
    assert statement.commission_percent == D("5")
    last_month = (month - timedelta(days=1)).replace(day=1)
    empty = services.commission_statement_build(operator=commission, month=last_month)
    assert (empty.orders, empty.net) == (0, D("0.00"))
    with schema_context("public"):  # the super admin is a platform (public schema) user
        boss = django_user_model.objects.create_user("platform-boss")
    with pytest.raises(splits.SettlementError) as exc:
        services.commission_statement_confirm(statement_id=statement.pk, user=boss)
    assert exc.value.code == "month_not_over"
    confirmed = services.commission_statement_confirm(statement_id=empty.pk, user=boss)
    assert confirmed.status == CommissionStatement.Status.CONFIRMED
    with pytest.raises(splits.SettlementError) as exc:
        services.commission_statement_confirm(statement_id=empty.pk, user=boss)
    assert exc.value.code == "statement_not_draft"
    # A confirmed statement is not rebuilt.
    CommissionStatement.objects.filter(pk=empty.pk).update(net=D("1.00"))
    assert services.commission_statement_build(operator=commission, month=last_month).net == D("1.00")
