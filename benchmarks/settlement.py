"""Benchmark settlement: the extra cost of splitting an order, and building a daily batch.

Run: ``.venv/bin/python benchmarks/settlement.py [orders-for-batch] [orders-for-split]``
(defaults 100000 and 2000). Uses its own database ``<DB_NAME>_bench_settlement`` (created,
migrated and dropped here). One operator with 500 station owners, each owning one station
with a split rule (40 % of the service fee; the platform takes 5 %).

1. **Per-order settlement cost** (target: extra < 2 ms): each order charged from a wallet
   with ``order_charge`` alone (the baseline, measured in the same run), then with the split
   as ``charging.funds`` posts it (``order_charge`` + ``order_split_settle``, one
   transaction), after one order per station has warmed the rule cache and made the owners'
   accounts. Prints ms per order for both (and the SQL statements each sends), the extra,
   the ratio, and the Python process's own CPU time per order (what is not database
   latency: on a loaded shared machine the wall time is mostly queueing in PostgreSQL). The
   split reads its rule from the per-process rule cache and sends one statement, which
   confirms the cache, checks for a repeat, locks the accounts and writes
   (``settlement.splits.order_split_settle``).
2. **Daily batch** (target: < 30 s for 100,000 orders across 500 owners): the orders' splits
   and payable lines are bulk-inserted (what settling them leaves behind; settling 100,000
   orders one by one would measure part 1 again), then ``statements_build_due`` builds every
   owner's statement. The baseline is the plain SQL floor in the same run: one ``SUM`` of the
   same lines grouped by owner. Prints seconds, and checks every line landed on exactly one
   statement whose net is the sum of its lines.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
BASE_DB = os.environ.get("DB_NAME", "evplatform")
BENCH_DB = f"{BASE_DB}_bench_settlement"
os.environ["DB_NAME"] = BENCH_DB

import psycopg2  # noqa: E402

OWNERS = 500
D = Decimal


def _admin_sql(sql: str) -> None:
    conn = psycopg2.connect(
        dbname="postgres",
        user=os.environ.get("DB_USER", "postgres"),
        host=os.environ.get("DB_HOST", "127.0.0.1"),
        port=os.environ.get("DB_PORT", "5432"),
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
    conn.close()


def _estate():
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import Member
    from settlement import splits
    from settlement.models import OwnerContract, SplitShare
    from settlement.services import wallet_top_up
    from stations.models import Station

    User = get_user_model()
    owners = User.objects.bulk_create(User(username=f"owner{i:03d}") for i in range(OWNERS))
    stations = Station.objects.bulk_create(
        Station(name=f"站{i:03d}", code=f"B{i:04d}", address="-", area_code="440106",
                latitude=D("23.1"), longitude=D("113.3"))
        for i in range(OWNERS)
    )
    since = timezone.now() - timedelta(days=30)
    for owner, station in zip(owners, stations, strict=True):
        station.owners.add(owner)
        splits.split_rule_create(
            station_id=station.pk, effective_from=since,
            shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
        )
    OwnerContract.objects.bulk_create(
        OwnerContract(owner=o, cycle=OwnerContract.Cycle.DAILY, delay_days=1) for o in owners
    )
    member = Member.objects.create(openid="bench-member")
    wallet_top_up(member=member, amount=D("10000000"), key="bench:top-up")
    return owners, stations, member


def _per_order(n: int, stations, member) -> tuple[float, float]:
    from django.db import transaction
    from django.utils import timezone

    from settlement import services as ledger
    from settlement import splits

    def charge_only(i: int) -> None:
        with transaction.atomic():
            ledger.order_charge(member=member, amount=D("33.33"), key=f"order:A{i}:charge", ref=f"A{i}")

    def charge_and_split(i: int) -> None:
        station = stations[i % len(stations)]
        with transaction.atomic():
            ledger.order_charge(member=member, amount=D("33.33"), key=f"order:S{i}:charge", ref=f"S{i}")
            splits.order_split_settle(
                order_ref=f"S{i}", station_id=station.pk, pile_id=None, started_at=timezone.now(),
                paid=D("33.33"), electricity=D("20.00"), service=D("13.33"), discount=D("0"),
                energy_kwh=D("21.5"), energy_by_period={"peak": "10.5", "flat": "11"},
            )

    # Warm up both paths: every station's rule in the process cache and every owner's payable
    # row made, as on a running platform (an owner's first order also creates the account).
    for i in range(len(stations)):
        charge_and_split(-i - 1)
    for i in range(50):
        charge_only(-i - 1)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as base_q:
        charge_only(-100)
    with CaptureQueriesContext(connection) as split_q:
        charge_and_split(-len(stations) - 1)
    queries = (len(base_q.captured_queries), len(split_q.captured_queries))
    # Interleaved in blocks so both see the same machine load.
    base_s = split_s = base_cpu = split_cpu = 0.0
    for block in range(0, n, 100):
        t, c = time.perf_counter(), time.process_time()
        for i in range(block, min(block + 100, n)):
            charge_only(i)
        base_s, base_cpu = base_s + time.perf_counter() - t, base_cpu + time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        for i in range(block, min(block + 100, n)):
            charge_and_split(i)
        split_s, split_cpu = split_s + time.perf_counter() - t, split_cpu + time.process_time() - c
    per = 1000 / n
    return base_s * per, split_s * per, queries, (base_cpu * per, split_cpu * per)


def _bulk_orders(n: int, owners, stations) -> None:
    from django.utils import timezone

    from settlement.models import OrderSplit, SplitLine

    at = timezone.now() - timedelta(days=5)
    batch = 5000
    for start in range(0, n, batch):
        made = OrderSplit.objects.bulk_create(
            OrderSplit(
                order_ref=f"B{i:07d}", station=stations[i % OWNERS], energy_kwh=D("21.5000"),
                energy_by_period={"peak": "10.5", "flat": "11"}, gross=D("33.33"), discount=D("0"),
                payment_fee=D("0.20"), base=D("13.33"), commission=D("0.67"),
                commission_percent=D("5"), owners_total=D("5.33"), operator_part=D("7.33"),
                settled_at=at,
            )
            for i in range(start, min(start + batch, n))
        )
        SplitLine.objects.bulk_create(
            SplitLine(owner=owners[i % OWNERS], kind=SplitLine.Kind.SHARE, split=split,
                      amount=D("5.33"), occurred_at=at)
            for i, split in zip(range(start, start + len(made)), made, strict=True)
        )


def main(batch_orders: int, split_orders: int) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    _admin_sql(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django.db.models import Sum
        from django_tenants.utils import tenant_context

        from settlement import statements
        from settlement.models import SplitLine, Statement
        from tenants.services import operator_create, platform_ensure, template_schema_ensure

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        platform_ensure()
        template_schema_ensure()
        operator = operator_create(
            slug="bench-settle", name="结算压测", domain="bench-settle.localhost",
            admin_username="admin", admin_password="bench-pass-123",
        ).operator
        operator.commission_percent = D("5")
        operator.save(update_fields=["commission_percent"])
        with tenant_context(operator):
            owners, stations, member = _estate()

            base_ms, split_ms, (base_q, split_q), (base_cpu, split_cpu) = _per_order(
                split_orders, stations, member)
            print(f"settlement benchmark (database {BENCH_DB})")
            print(f"  per order, {split_orders} orders, one transaction each:")
            print(f"    baseline: order_charge alone          {base_ms:7.3f} ms   ({base_q} queries)")
            print(f"    order_charge + order_split_settle     {split_ms:7.3f} ms   ({split_q} queries)")
            print(f"    extra for the split                   {split_ms - base_ms:7.3f} ms   "
                  f"(target < 2 ms)   ratio {split_ms / base_ms:.2f}×")
            print(f"    this process's CPU per order: {base_cpu:.3f} ms alone, {split_cpu:.3f} ms with "
                  f"the split (extra {split_cpu - base_cpu:.3f} ms; the rest is waiting on PostgreSQL)")

            t = time.perf_counter()
            _bulk_orders(batch_orders, owners, stations)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            totals = dict(
                SplitLine.objects.filter(statement__isnull=True, split__order_ref__startswith="B")
                .values_list("owner_id")
                .annotate(s=Sum("amount")).values_list("owner_id", "s")
            )
            floor_s = time.perf_counter() - t
            t = time.perf_counter()
            built = statements.statements_build_due()
            build_s = time.perf_counter() - t
            assert len(built) == OWNERS, len(built)
            assert not SplitLine.objects.filter(statement__isnull=True, split__order_ref__startswith="B").exists()
            for statement in Statement.objects.all():
                assert statement.net == totals[statement.owner_id], statement
            print(f"  daily batch, {batch_orders} orders across {OWNERS} owners "
                  f"(loaded in {load_s:.1f} s):")
            print(f"    baseline: SUM of the lines by owner   {floor_s:7.3f} s")
            print(f"    statements_build_due                  {build_s:7.3f} s   (target < 30 s)   "
                  f"ratio {build_s / floor_s:.1f}×")
        connection.set_schema_to_public()
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args + [100_000, 2000][len(args):]))
