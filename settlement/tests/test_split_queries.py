"""The cost of splitting an order at settlement: one statement, the rule from the per-process
cache while no newer version exists (benchmarks/settlement.py times it)."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from settlement import services as ledger
from settlement import splits
from settlement.models import Account, OrderSplit, Posting, SplitLine, SplitShare
from settlement.selectors import ledger_check

D = Decimal
P = SplitShare.Kind.PERCENT


def _rule(station, *shares, pile=None, at=None):
    return splits.split_rule_create(
        station_id=station.pk, pile_id=pile.pk if pile else None,
        effective_from=at or timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(o.pk, k, D(v)) for o, k, v in shares],
    )


def _settle(member, connector, no: str, paid="15.00"):
    with transaction.atomic():
        ledger.order_charge(member=member, amount=D(paid), key=f"order:{no}:charge", ref=no)
        with CaptureQueriesContext(connection) as queries:
            split = splits.order_split_settle(
                order_ref=no, station_id=connector.pile.station_id, pile_id=connector.pile_id,
                started_at=timezone.now(), paid=D(paid), electricity=D("10.00"),
                service=D("5.00"), discount=D("0"), energy_kwh=D("10"),
                energy_by_period={"peak": "4", "flat": "6"},
            )
    return split, [q["sql"] for q in queries.captured_queries]


def test_split_costs_one_statement_once_the_rule_is_cached(funded, connector, owner, owner2):
    _rule(connector.pile.station, (owner, P, "40"), (owner2, P, "10"))
    _settle(funded, connector, "Q0")  # reads the rule (and makes the owners' accounts)
    split, sql = _settle(funded, connector, "Q1")
    # Already split? rules current? accounts locked; posting + entries + balances + split + lines.
    assert len(sql) == 1, sql
    split.refresh_from_db()
    assert (split.base, split.owners_total, split.operator_part) == (D("5.00"), D("2.50"), D("2.50"))
    posting = Posting.objects.get(key="order:Q1:split")
    assert split.posting_id == posting.pk and posting.kind == Posting.Kind.ORDER_SPLIT
    assert sorted(posting.entries.values_list("amount", flat=True)) == [D("-2.00"), D("-0.50"), D("2.50")]
    assert sorted(SplitLine.objects.filter(split=split).values_list("amount", flat=True)) == [D("0.50"), D("2.00")]
    assert ledger.owner_account(owner.pk).balance == D("4.00")  # two orders of 2.00
    assert ledger_check().ok


def test_a_repeated_split_is_one_query_and_writes_nothing(funded, connector, owner):
    _rule(connector.pile.station, (owner, P, "40"))
    first, _sql = _settle(funded, connector, "Q2")
    again, sql = _settle(funded, connector, "Q2")
    assert again.pk == first.pk and len(sql) == 1
    assert Posting.objects.filter(key="order:Q2:split").count() == 1
    assert ledger.owner_account(owner.pk).balance == D("2.00")


def test_a_new_rule_version_applies_to_the_next_order_despite_the_cache(funded, connector, owner, owner2):
    station = connector.pile.station
    first = _rule(station, (owner, P, "40"))
    assert _settle(funded, connector, "Q3")[0].rule_id == first.pk
    second = _rule(station, (owner2, P, "20"), at=timezone.now() - timedelta(seconds=1))
    split, _sql = _settle(funded, connector, "Q4")
    assert split.rule_id == second.pk and split.owners_total == D("1.00")
    # A pile's own rule then wins over the station's, also through the cache.
    third = _rule(station, (owner, P, "10"), pile=connector.pile, at=timezone.now() - timedelta(seconds=1))
    assert _settle(funded, connector, "Q5")[0].rule_id == third.pk


def test_a_rule_from_another_process_is_seen_through_the_database(funded, connector, owner, owner2):
    station = connector.pile.station
    _rule(station, (owner, P, "40"))
    _settle(funded, connector, "Q6")
    # Another process writes a version: this process's copy stays as it was (nothing tells
    # it), and the writing statement finds the station's stamp moved: nothing written, the
    # rules read again, the split computed with the newer version.
    stale = splits._RULES[(connection.schema_name, station.pk)]
    newer = _rule(station, (owner2, P, "30"), at=timezone.now() - timedelta(seconds=1))
    assert splits._RULES[(connection.schema_name, station.pk)] is stale
    split, sql = _settle(funded, connector, "Q7")
    assert split.rule_id == newer.pk and split.owners_total == D("1.50")
    assert Posting.objects.filter(key="order:Q7:split").count() == 1
    assert ledger.owner_account(owner2.pk).balance == D("1.50")
    assert ledger.owner_account(owner.pk).balance == D("2.00")  # Q6 only
    assert ledger_check().ok
    # The cache now holds the newer version: the next order is one statement again.
    split, sql = _settle(funded, connector, "Q8")
    assert split.rule_id == newer.pk and len(sql) == 1, sql


def test_commission_only_and_free_orders(funded, connector, tenant):
    before = tenant.commission_percent
    tenant.commission_percent = D("10")
    try:
        split, _sql = _settle(funded, connector, "Q9")
        assert split.rule_id is None and split.commission == D("1.50")
        free, _sql = _settle(funded, connector, "Q10", paid="0.00")
        assert free.commission == D("0.00") and free.posting_id is None
        assert OrderSplit.objects.filter(order_ref="Q10").exists()
        assert ledger.system_account(Account.Kind.COMMISSION).balance == D("1.50")
    finally:
        tenant.commission_percent = before


def test_splits_of_two_operators_interleaved_on_one_connection_stay_in_their_schemas(
    funded, connector, owner, other_tenant, django_user_model
):
    """The split's statement is prepared once per connection; django-tenants switches
    ``search_path`` between operators on that connection, and each split must land in its
    own operator's tables (PostgreSQL re-plans the statement on a new search path)."""
    from django_tenants.utils import tenant_context

    from accounts.models import Member
    from stations.models import Station

    _rule(connector.pile.station, (owner, P, "40"))
    with tenant_context(other_tenant):
        station_b = Station.objects.create(
            name="B站", code="B0001", address="-", area_code="440106",
            latitude=D("23.1"), longitude=D("113.3"))
        owner_b = django_user_model.objects.create_user("owner-b", password="owner-pass-123")
        _rule(station_b, (owner_b, P, "10"))
        member_b = Member.objects.create(openid="openid-b")
        ledger.wallet_top_up(member=member_b, amount=D("100"), key="wx:txn:b")

    def settle_b(no):
        with tenant_context(other_tenant), transaction.atomic():
            ledger.order_charge(member=member_b, amount=D("15.00"), key=f"order:{no}:charge", ref=no)
            return splits.order_split_settle(
                order_ref=no, station_id=station_b.pk, pile_id=None, started_at=timezone.now(),
                paid=D("15.00"), electricity=D("10.00"), service=D("5.00"), discount=D("0"),
                energy_kwh=D("10"))

    # The same order numbers in both schemas: each operator's idempotency is its own.
    for i in range(7):
        split_a, _sql = _settle(funded, connector, f"T{i}")
        split_b = settle_b(f"T{i}")
        assert split_a.owners_total == D("2.00") and split_b.owners_total == D("0.50")
    assert OrderSplit.objects.filter(order_ref__startswith="T").count() == 7
    assert ledger.owner_account(owner.pk).balance == D("14.00")
    with tenant_context(other_tenant):
        assert OrderSplit.objects.filter(order_ref__startswith="T").count() == 7
        assert ledger.owner_account(owner_b.pk).balance == D("3.50")
        assert Posting.objects.filter(kind=Posting.Kind.ORDER_SPLIT).count() == 7
        assert ledger_check().ok
    with connection.cursor() as cursor:  # it was one prepared statement, reused
        cursor.execute("SELECT sum(generic_plans + custom_plans) FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%INSERT INTO settlement_splitline%"])
        assert cursor.fetchone()[0] >= 12
