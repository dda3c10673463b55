"""Settlement racing refunds, on committed data in an operator made for this module (its
schema dropped after ``ledger_verify`` has checked it): orders settle, refunds reverse their
splits and statements are built all at once; every payable line lands on at most one
statement, each statement's net is the sum of its lines, payables match the ledger."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import tenant_context

from settlement import services as ledger
from settlement import splits, statements
from settlement.models import OrderSplit, SplitLine, SplitShare, Statement
from settlement.selectors import ledger_check

D = Decimal
SLUG = "settle-live"


@pytest.fixture(scope="module")
def live(operators, django_db_blocker):
    from accounts.models import Member
    from stations.models import Station
    from tenants.services import operator_create

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        operator = operator_create(
            slug=SLUG, name="结算并发", domain=f"{SLUG}.testserver", admin_username="admin",
            admin_password="admin-pass-123",
        ).operator
        operator.commission_percent = D("3")
        operator.save(update_fields=["commission_percent"])
        with tenant_context(operator):
            from django.contrib.auth import get_user_model

            owner = get_user_model().objects.create_user("owner-c")
            station = Station.objects.create(name="并发站", code="C1", address="-", area_code="440106",
                                             latitude=D("23.1"), longitude=D("113.3"))
            splits.split_rule_create(
                station_id=station.pk, effective_from=timezone.now() - timedelta(days=1),
                base="total", shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("37"))],
            )
            member = Member.objects.create(openid="openid-settle-live")
            ledger.wallet_top_up(member=member, amount=D("100000"), key="wx:txn:live")
            operator.ctx = {"owner": owner, "station": station, "member": member}
        try:
            yield operator
            call_command("ledger_verify", tenant=SLUG)  # exits 1 on drift or a payable mismatch
        finally:
            connection.set_schema_to_public()
            operator.delete(force_drop=True)


def test_statement_refusal_needs_an_ended_period(db, tenant):
    # (Also makes pytest-django set up the test database when this module runs alone.)
    with pytest.raises(splits.SettlementError):
        statements.statement_build(owner_id=1, period_start=timezone.now(),
                                   period_end=timezone.now() + timedelta(days=1))


def _thread(operator, func, *args):
    def run():
        try:
            with tenant_context(operator):
                return func(*args)
        finally:
            connections.close_all()

    return run


def _settle(operator, n: int) -> str:
    ref = f"C{n:05d}"
    with transaction.atomic():
        ledger.order_charge(member=operator.ctx["member"], amount=D("33.33"), key=f"order:{ref}:charge", ref=ref)
        splits.order_split_settle(
            order_ref=ref, station_id=operator.ctx["station"].pk, pile_id=None,
            started_at=timezone.now(), paid=D("33.33"), electricity=D("20.00"), service=D("13.33"),
            discount=D("0"), energy_kwh=D("21.5"),
        )
    return ref


def _refund(ref: str, total: Decimal) -> None:
    with transaction.atomic():
        splits.order_split_refund(order_ref=ref, paid=D("33.33"), refunded=total)


def test_settlements_refunds_and_statement_builds_race(live):
    owner = live.ctx["owner"]
    with tenant_context(live):
        refs = [_settle(live, n) for n in range(30)]
    barrier = threading.Barrier(4)
    ends = []

    def settle_more():
        barrier.wait()
        for n in range(30, 50):
            _settle(live, n)

    def refund_some():
        barrier.wait()
        for ref in refs[:20]:
            _refund(ref, D("10.00"))
            _refund(ref, D("10.00"))  # the same total again: nothing more

    def refund_again():
        barrier.wait()
        for ref in refs[10:25]:
            _refund(ref, D("33.33"))  # a full refund racing the partial one

    def build():
        barrier.wait()
        for _ in range(5):
            end = timezone.now()
            ends.append(end)
            statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_thread(live, f)) for f in (settle_more, refund_some, refund_again, build)]
        for future in futures:
            future.result(timeout=120)

    with tenant_context(live):
        assert ledger_check().ok, ledger_check()
        # Every statement's net is the sum of its own lines; no line on two statements.
        for statement in Statement.objects.filter(owner=owner):
            lines = statement.lines.aggregate(s=Sum("amount"))["s"] or D("0")
            assert statement.net == lines
        # Each order's split reversed exactly in proportion to its final refunded total.
        for ref in refs[10:25]:
            split = OrderSplit.objects.get(order_ref=ref)
            assert split.refunded == D("33.33")
            assert SplitLine.objects.filter(split=split).aggregate(s=Sum("amount"))["s"] == D("0.00")
        for ref in refs[:10]:
            split = OrderSplit.objects.get(order_ref=ref)
            owner_total = SplitLine.objects.filter(split=split).aggregate(s=Sum("amount"))["s"]
            share = split.owners_total
            # 10.00 of 33.33 refunded: the rounded proportional part of (owners + commission)
            # was taken back, owners in proportion — never more than their share.
            assert D("0") < owner_total < share
        assert OrderSplit.objects.count() == 50


def test_one_order_split_by_two_transactions_at_once_is_posted_once(live):
    # The second transaction's statement starts before the first commits (it waits on the
    # accounts' locks), so it cannot see the first's split: the posting's key refuses it.
    station, ref = live.ctx["station"], "C-TWICE"
    written, waiting = threading.Event(), threading.Event()

    def split():
        return splits.order_split_settle(
            order_ref=ref, station_id=station.pk, pile_id=None, started_at=timezone.now(),
            paid=D("33.33"), electricity=D("20.00"), service=D("13.33"), discount=D("0"),
            energy_kwh=D("21.5"),
        ).pk

    def first():
        with transaction.atomic():
            pk = split()
            written.set()
            assert waiting.wait(timeout=60)
            for _ in range(600):  # until the second is blocked on our locks
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                   "'Lock' AND datname = current_database()")
                    if cursor.fetchone()[0]:
                        break
                threading.Event().wait(0.05)
        return pk

    def second():
        assert written.wait(timeout=60)
        waiting.set()
        with transaction.atomic():
            return split()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_thread(live, f)) for f in (first, second)]
        pks = [future.result(timeout=120) for future in futures]

    with tenant_context(live):
        assert pks[0] == pks[1] == OrderSplit.objects.get(order_ref=ref).pk
        assert SplitLine.objects.filter(split_id=pks[0]).count() == 1
        assert ledger_check().ok, ledger_check()


def test_a_rule_version_written_by_another_connection_applies_to_the_next_order(live):
    station, owner = live.ctx["station"], live.ctx["owner"]
    with tenant_context(live):
        first = OrderSplit.objects.get(order_ref=_settle(live, 900))  # this process's cache warm
        cached = splits._RULES[(connection.schema_name, station.pk)]

    def write():  # as another process would: its own connection, committed
        return splits.split_rule_create(
            station_id=station.pk, effective_from=timezone.now() - timedelta(seconds=1),
            base="total", shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("20"))],
        ).pk

    with ThreadPoolExecutor(1) as pool:
        newer = pool.submit(_thread(live, write)).result(timeout=60)

    with tenant_context(live):
        assert splits._RULES[(connection.schema_name, station.pk)] is cached  # nothing told us
        split = OrderSplit.objects.get(order_ref=_settle(live, 901))
        assert first.rule_id != newer and split.rule_id == newer
        assert split.owners_total == D("6.67")  # 20 % of 33.33 (base total), a remainder fen
        assert ledger_check().ok, ledger_check()
