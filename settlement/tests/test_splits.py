"""Split rules and the split of settled orders: owners' payables and the platform
commission credited with the charge, refunds reversed in proportion."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charging import port
from charging import services as charging
from charging.models import TransactionRecord
from charging.tests.test_order_admin import _settled
from settlement import splits
from settlement.models import Account, OrderSplit, Posting, SplitLine, SplitRule, SplitShare
from settlement.selectors import ledger_check
from settlement.services import owner_account, system_account

D = Decimal
P = SplitShare.Kind.PERCENT


@pytest.fixture
def commission(tenant):
    """The super admin's 10 % commission on tenant-a (restored after the test)."""
    before = tenant.commission_percent
    tenant.commission_percent = D("10")
    yield tenant
    tenant.commission_percent = before


def _rule(station, *shares, pile=None, at=None, **kw):
    return splits.split_rule_create(
        station_id=station.pk, pile_id=pile.pk if pile else None,
        effective_from=at or timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(o.pk, k, D(v)) for o, k, v in shares], **kw,
    )


def test_settled_order_credits_owner_and_platform(commission, funded_member, connector, tariff, owner):
    _rule(connector.pile.station, (owner, P, "40"))
    order = _settled(funded_member, connector)  # 10 kWh: electricity 10.00 + service 5.00
    split = OrderSplit.objects.get(order_ref=order.number)
    # Base = service 5.00: platform 10 % = 0.50, owner 40 % = 2.00, operator 2.50.
    assert (split.base, split.commission, split.owners_total, split.operator_part) == (
        D("5.00"), D("0.50"), D("2.00"), D("2.50"))
    assert owner_account(owner.pk).balance == D("2.00")
    assert system_account(Account.Kind.COMMISSION).balance == D("0.50")
    assert system_account(Account.Kind.REVENUE).balance == D("12.50")
    # Posted in the same transaction as the charge, under the order's key.
    assert Posting.objects.get(key=f"order:{order.number}:split").kind == Posting.Kind.ORDER_SPLIT
    assert SplitLine.objects.get(owner=owner).amount == D("2.00")
    assert ledger_check().ok


def test_no_rule_no_commission_posts_nothing(funded_member, connector, tariff):
    order = _settled(funded_member, connector)
    assert not OrderSplit.objects.filter(order_ref=order.number).exists()
    assert not Posting.objects.filter(kind=Posting.Kind.ORDER_SPLIT).exists()


def test_commission_without_a_rule_is_on_what_was_paid(commission, funded_member, connector, tariff):
    order = _settled(funded_member, connector)
    split = OrderSplit.objects.get(order_ref=order.number)
    assert split.base == D("15.00") and split.commission == D("1.50") and split.rule is None


def test_pile_rule_wins_and_version_is_locked_at_start(funded_member, connector, tariff, owner, owner2):
    station = connector.pile.station
    _rule(station, (owner, P, "40"))
    _rule(station, (owner2, SplitShare.Kind.PER_KWH, "0.20"), pile=connector.pile, base=SplitRule.Base.TOTAL)
    order = charging.order_start(member=funded_member, connector=connector)
    # A new version after the order started does not apply to it.
    _rule(station, (owner2, P, "90"), pile=connector.pile, at=timezone.now())
    now = timezone.now()
    charging.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=D("0"),
        meter_stop_kwh=D("10"), energy_kwh=D("10"), pile_amount_yuan=D("15"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    charging.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    split = OrderSplit.objects.get(order_ref=order.number)
    assert split.rule.version == 1 and split.rule.pile_id == connector.pile_id
    assert owner_account(owner2.pk).balance == D("2.00")  # 0.20 × 10 kWh
    assert owner_account(owner.pk).balance == D("0.00")
    assert split.energy_by_period  # energy by tariff period recorded for the statement


def test_refund_reverses_in_proportion_and_full_refund_exactly(
    commission, funded_member, connector, tariff, owner, owner2, django_user_model
):
    _rule(connector.pile.station, (owner, P, "33.33"), (owner2, P, "20"))
    order = _settled(funded_member, connector)
    staff = django_user_model.objects.create_user("ops-r")
    first = {o: owner_account(o.pk).balance for o in (owner, owner2)}
    assert first == {owner: D("1.67"), owner2: D("1.00")}
    charging.order_refund_partial(order_id=order.pk, amount=D("5.00"), user=staff, reason="限功率")
    # A third refunded: (1.67 + 1.00 + 0.50) / 3 = 1.06 (rounded once) taken back in proportion.
    taken = sum(first.values()) + D("0.50") - (
        owner_account(owner.pk).balance + owner_account(owner2.pk).balance
        + system_account(Account.Kind.COMMISSION).balance)
    assert taken == D("1.06")
    charging.order_refund_partial(order_id=order.pk, amount=D("10.00"), user=staff, reason="全退")
    assert owner_account(owner.pk).balance == D("0.00") and owner_account(owner2.pk).balance == D("0.00")
    assert system_account(Account.Kind.COMMISSION).balance == D("0.00")
    lines = SplitLine.objects.filter(owner=owner).order_by("pk")
    assert [line.kind for line in lines] == ["share", "reversal", "reversal"]
    assert sum(line.amount for line in lines) == 0
    assert ledger_check().ok


def test_refund_is_idempotent_by_total(funded_member, connector, tariff, owner):
    _rule(connector.pile.station, (owner, P, "50"))
    order = _settled(funded_member, connector)
    splits.order_split_refund(order_ref=order.number, paid=D("15"), refunded=D("3"))
    splits.order_split_refund(order_ref=order.number, paid=D("15"), refunded=D("3"))
    assert owner_account(owner.pk).balance == D("2.00")  # 2.50 − 2.50 × 3/15


@pytest.mark.parametrize(("shares", "code"), [
    ([("a", P, "95")], "shares_exceed_base"),
    ([("a", P, "-1")], "share_negative"),
    ([("a", P, "10"), ("a", P, "10")], "owner_twice"),
])
def test_rule_refusals_change_nothing(commission, station, owner, shares, code):
    people = {"a": owner}
    with pytest.raises(splits.SettlementError) as exc:
        _rule(station, *[(people[o], k, v) for o, k, v in shares])
    assert exc.value.code == code
    assert not SplitRule.objects.exists()


def test_versions_count_up(station, owner):
    assert [_rule(station, (owner, P, "10")).version for _ in range(3)] == [1, 2, 3]


def test_base_options(owner, station):
    rule = _rule(station, (owner, P, "50"), base=SplitRule.Base.NET, payment_fee_percent=D("0.6"))
    figures = splits.split_compute(rule=rule, paid=D("100"), electricity=D("70"), service=D("35"),
                                   discount=D("5"), energy_kwh=D("50"), commission=D("0"))
    # 105 − 5 discount = 100, less the fee 0.60 → 99.40 split half and half.
    assert figures.base == D("99.40") and figures.parts[f"owner:{owner.pk}"] == D("49.70")
    rule = _rule(station, (owner, P, "50"), fee_bearer=SplitRule.FeeBearer.SHARED,
                 discounts_reduce_base=False)
    figures = splits.split_compute(rule=rule, paid=D("100"), electricity=D("70"), service=D("35"),
                                   discount=D("5"), energy_kwh=D("50"), commission=D("0"))
    # Service 35.00 bears 35/100 of the 0.60 fee = 0.21.
    assert figures.base == D("34.79") and figures.payment_fee == D("0.60")
