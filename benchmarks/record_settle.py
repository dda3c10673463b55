"""Benchmark "record → settled": p99 from a pile's final record (YKC 0x3B / OCPP
StopTransaction) reaching the domain to the order settled and the driver notified, with
``--sessions`` sessions (default 100) ending within the same minute (target p99 < 1 s).

Run: ``.venv/bin/python benchmarks/record_settle.py [--sessions 100] [--workers 2]
[--spread 60]``. Uses its own database ``<DB_NAME>_bench_record`` (created, migrated and
dropped here) and the configured Redis (the drivers' WebSocket channel layer).

Method: one operator, one station with ``sessions / 2`` double-connector piles on a flat tariff, one
funded member per connector, each with an order started (``order_start``). The records then
arrive at random moments within ``--spread`` seconds (all in one minute), each stored by
the gateway's call (``record_store``: durable before the pile's ack); the settlement task it
queues on commit goes — instead of through the Celery broker — onto an in-process queue
served by ``--workers`` threads (a worker's concurrency on this machine's 2 cores) that run
the real task body (``record_settle``: price, charge, split, settle, push the order to the
driver's WebSocket group). Latency per session: from just before ``record_store`` to the
return of ``record_settle`` (settled and pushed). Also printed: the same for one session
alone (the baseline, no contention) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
BASE_DB = os.environ.get("DB_NAME", "evplatform")
BENCH_DB = f"{BASE_DB}_bench_record"
os.environ["DB_NAME"] = BENCH_DB

import psycopg2  # noqa: E402

D = Decimal
TARGET_S = 1.0
QUERIES: list[int] = []  # SQL statements per settlement (record_settle)


def _admin_sql(sql: str) -> None:
    conn = psycopg2.connect(
        dbname="postgres", user=os.environ.get("DB_USER", "postgres"),
        host=os.environ.get("DB_HOST", "127.0.0.1"), port=os.environ.get("DB_PORT", "5432"),
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
    conn.close()


def _estate(sessions: int):
    from accounts.models import Member
    from billing.tariffs import pricing
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )
    from settlement.services import wallet_top_up
    from stations.models import Connector, Pile, Station

    station = Station.objects.create(name="压测站", code="BR0001", address="-", area_code="440106",
                                     latitude=D("23.1"), longitude=D("113.3"))
    tariff = tariff_create(name="统一价", draft=pricing.flat_tariff(D("1.0"), D("0.5")))
    tariff_version_publish(tariff=tariff, effective_from=datetime(2020, 1, 1, tzinfo=UTC))
    station_tariff_assign(stations=[station], tariff=tariff)
    connectors = []
    for p in range((sessions + 1) // 2):
        pile = Pile.objects.create(station=station, code=f"4401060000{p:04d}", online=True,
                                   rated_power_kw=D("120.0"), connector_count=2)
        for n in (1, 2):
            connectors.append(Connector.objects.create(
                pile=pile, number=n, rated_power_kw=D("60.0"), qr_code=f"br-{p}-{n}",
                status=Connector.Status.PLUGGED))
    members = []
    for i in range(sessions):
        member = Member.objects.create(openid=f"bench-record-{i}")
        wallet_top_up(member=member, amount=D("200"), key=f"bench:top-up:{i}")
        members.append(member)
    return connectors[:sessions], members


def _record(order, stopped_at):
    from charging import port

    return port.TransactionRecord(
        pile_code=order.pile.code, connector_no=order.connector.number, trade_no=order.trade_no,
        started_at=stopped_at - timedelta(minutes=30), stopped_at=stopped_at,
        meter_start_kwh=D("0"), meter_stop_kwh=D("20"), energy_kwh=D("20"),
        pile_amount_yuan=D("30"), stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    )


def _run(operator, orders, *, workers: int, spread: float) -> list[float]:
    """Feed every order's record at a random moment within ``spread`` s; return latencies (s)."""
    from django.db import connection, connections

    from charging import services
    from evplatform import queue as task_queue

    jobs: queue.Queue = queue.Queue()
    started: dict[int, float] = {}
    done: dict[int, float] = {}

    class Broker:  # what task_queue_on_commit sends to: the settlement tasks, in process
        @staticmethod
        def send_task(name, args=(), **_kwargs):
            if name == "charging.record_settle":
                jobs.put(args[0])

    real_app = task_queue.app
    task_queue.app = Broker()

    def worker() -> None:
        from django.test.utils import CaptureQueriesContext

        connection.set_tenant(operator)
        while (record_id := jobs.get()) is not None:
            with CaptureQueriesContext(connection) as sent:
                order = services.record_settle(record_id=record_id)
            done[order.pk] = time.perf_counter()
            QUERIES.append(len(sent.captured_queries))
        connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    try:
        begin = time.perf_counter()
        offsets = sorted((random.uniform(0, spread), o) for o in orders)
        for offset, order in offsets:  # the gateway: one record after another, as they come
            wait = begin + offset - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            started[order.pk] = time.perf_counter()
            services.record_store(_record(order, datetime.now(UTC)))
        deadline = time.perf_counter() + 300
        while len(done) < len(orders) and time.perf_counter() < deadline:
            time.sleep(0.01)
    finally:
        for _t in threads:
            jobs.put(None)
        for t in threads:
            t.join()
        task_queue.app = real_app
    missing = [o.pk for o in orders if o.pk not in done]
    assert not missing, f"{len(missing)} orders not settled"
    return [done[pk] - started[pk] for pk in started]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(sessions: int, workers: int, spread: float) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    _admin_sql(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django_tenants.utils import tenant_context

        from charging import services
        from charging.models import ChargingOrder
        from tenants.services import operator_create, platform_ensure, template_schema_ensure

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        platform_ensure()
        template_schema_ensure()
        operator = operator_create(
            slug="bench-record", name="结算时延压测", domain="bench-record.localhost",
            admin_username="admin", admin_password="bench-pass-123",
        ).operator
        from evplatform import queue as task_queue

        with tenant_context(operator):
            connectors, members = _estate(sessions + 1)
            real_app = task_queue.app

            class Nowhere:  # start commands and checks go nowhere: no pile, no worker here
                @staticmethod
                def send_task(*_args, **_kwargs):
                    return None

            task_queue.app = Nowhere()
            orders = [services.order_start(member=m, connector=c) for m, c in zip(members, connectors, strict=True)]
            task_queue.app = real_app
            connection.close()  # the threads open their own; this one must not hold locks
            connection.set_tenant(operator)
            alone = _run(operator, orders[:1], workers=workers, spread=0)[0]
            latencies = _run(operator, orders[1:], workers=workers, spread=spread)
            settled = ChargingOrder.objects.filter(pk__in=[o.pk for o in orders], state="settled").count()
            assert settled == len(orders), settled
            p50, p99 = _p(latencies, 0.5), _p(latencies, 0.99)
            print(f"record → settled benchmark (database {BENCH_DB})")
            print(f"  {sessions} sessions ending within {spread:.0f} s, {workers} settlement workers:")
            print(f"    baseline: one session alone           {alone * 1000:8.1f} ms")
            print(f"    p50                                   {p50 * 1000:8.1f} ms")
            print(f"    p99                                   {p99 * 1000:8.1f} ms   (target < "
                  f"{TARGET_S * 1000:.0f} ms)   ratio to alone {p99 / alone:.1f}×")
            print(f"    max {max(latencies) * 1000:.1f} ms, mean {statistics.mean(latencies) * 1000:.1f} ms")
            print(f"    SQL statements per settlement: median {statistics.median(QUERIES):.0f}, "
                  f"max {max(QUERIES)}")
        connection.set_schema_to_public()
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spread", type=float, default=60.0)
    a = parser.parse_args()
    main(a.sessions, a.workers, a.spread)
