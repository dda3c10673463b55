"""Benchmark the operator's home, a 90-day report and a day's aggregate rebuild with
1,000,000 settled orders in one operator.

Run: ``.venv/bin/python benchmarks/dashboard.py [--orders 1000000] [--fresh]``. Uses its own
database ``<DB_NAME>_bench_dash`` (kept between runs so the orders are made once; ``--fresh``
drops it). Orders are written with one INSERT … SELECT over generate_series (50 stations,
500 piles, 1,000 connectors, 90 days), then the 90 days are aggregated by ``stats_day_rebuild``.

Prints, each beside its target and a baseline measured in the same run (ratio):

- the admin home page (``GET /admin/``, server time in-process, p95 of 30) against the same
  figures computed by scanning the raw orders;
- the 90-day revenue report (``GET /reports/``) against the same table grouped from raw orders;
- one day's rebuild (``stats_day_rebuild``) against a bare read of that day's orders.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
BASE_DB = os.environ.get("DB_NAME", "evplatform")
BENCH_DB = f"{BASE_DB}_bench_dash"
os.environ["DB_NAME"] = BENCH_DB
SLUG, HOST = "benchdash", "benchdash.localhost"
STATIONS, PILES_PER_STATION, DAYS = 50, 10, 90

import psycopg2  # noqa: E402


def _admin_sql(sql: str) -> list:
    conn = psycopg2.connect(dbname="postgres", user=os.environ.get("DB_USER", "postgres"),
                            host=os.environ.get("DB_HOST", "127.0.0.1"), port=os.environ.get("DB_PORT", "5432"))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
    conn.close()
    return rows


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def build(orders: int) -> None:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from analytics.selectors import local_today
    from analytics.services import stats_day_rebuild
    from stations.models import Connector, Pile, Station
    from tenants.models import Operator
    from tenants.services import operator_create

    operator = Operator.objects.filter(slug=SLUG).first()
    if operator is None:
        operator = operator_create(slug=SLUG, name="基准运营商", domain=HOST, admin_username="admin",
                                   admin_password="admin-pass-123").operator
    with tenant_context(operator):
        from charging.models import ChargingOrder

        have = ChargingOrder.objects.count()
        if have >= orders:
            return operator
        print(f"making {orders - have:,} more orders …", flush=True)
        for s in range(STATIONS if not Station.objects.exists() else 0):
            station = Station.objects.create(name=f"基准站{s:02d}", code=f"BD{s:04d}", address="广州",
                                             area_code="440106", latitude=23 + s / 100, longitude=113 + s / 100)
            for p in range(PILES_PER_STATION):
                pile = Pile.objects.create(station=station, code=f"9{s:05d}{p:08d}", rated_power_kw=120,
                                           online=True, connector_count=2)
                for n in (1, 2):
                    Connector.objects.create(pile=pile, number=n, rated_power_kw=60, qr_code=f"bd-{s}-{p}-{n}")
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT c.id, c.pile_id, p.station_id FROM stations_connector c "
                           "JOIN stations_pile p ON p.id = c.pile_id ORDER BY c.id")
            connectors = cursor.fetchall()
            cursor.execute("CREATE TEMP TABLE bench_conn (k int, id int, pile_id int, station_id int)")
            cursor.executemany("INSERT INTO bench_conn VALUES (%s, %s, %s, %s)",
                               [(i, *c) for i, c in enumerate(connectors)])
            columns = ["number", "connector_id", "pile_id", "station_id", "trade_no", "mode", "state",
                       "created_at", "started_at", "stopped_at", "settled_at", "energy_kwh",
                       "electricity_amount", "service_amount", "occupancy_amount", "discount_amount",
                       "total_amount", "paid_amount", "refunded_amount", "hold_amount",
                       "amount_mismatch", "abnormal", "pile_initiated", "progress", "card_no", "vin",
                       "stop_reason", "bill", "idempotency_key", "review_reason", "stop_attempts",
                       "stop_result"]
            rest, rest_values = _other_required_columns(ChargingOrder, columns)
            cursor.execute(f"""
                INSERT INTO charging_chargingorder ({", ".join(columns + rest)})
                SELECT 'BD' || (g + %s), c.id, c.pile_id, c.station_id, 'BDT' || (g + %s), 'wallet', 'settled',
                    t - interval '40 minutes', t - interval '40 minutes', t, t, 20, 16, 8, 0, 1, 23, 23, 0, 0,
                    false, false, false, '{{}}', '', '', 'full',
                    '{{"period_energy": {{"peak": "12", "valley": "8"}}, "lines": [{{"periods": ["peak", "valley"],
                       "energy_kwh": "20", "electricity_yuan": "16", "service_yuan": "8"}}]}}'::jsonb,
                    '', '', 0, ''{"".join(", %s" for _ in rest)}
                FROM generate_series(1, %s) g
                CROSS JOIN LATERAL (SELECT now() - (g::float8 / %s) * interval '{DAYS} days' AS t) tt
                JOIN bench_conn c ON c.k = g %% {len(connectors)}
            """, [have, have, *rest_values, orders - have, orders - have])
            cursor.execute("ANALYZE charging_chargingorder")
        print(f"  inserted in {time.perf_counter() - start:.0f} s; aggregating {DAYS + 1} days …", flush=True)
        start = time.perf_counter()
        today = local_today()
        for d in range(DAYS + 1):
            stats_day_rebuild(day=today - timedelta(days=d))
        print(f"  aggregated in {time.perf_counter() - start:.0f} s", flush=True)
    return operator


def _other_required_columns(model, given: list[str]) -> tuple[list[str], list]:
    """The NOT NULL columns of ``model`` not in ``given`` (fields added since this script's
    INSERT was written) with their defaults, as database values; exits naming a column
    that has none."""
    from django.db import connection

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in given or field.primary_key or field.null:
            continue
        default = field.get_default()  # "" for a text field without one
        if default is None:
            raise SystemExit(f"benchmark: no value for {model._meta.db_table}.{field.column}")
        columns.append(field.column)
        values.append(field.get_db_prep_save(default, connection))
    return columns, values


def raw_home(stations, today):
    """The home's figures from raw orders: the baseline the aggregates replace."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncDate

    from analytics.services import day_bounds
    from charging.models import ChargingOrder

    settled = ChargingOrder.objects.filter(state="settled", station__in=stations)
    for day in (today, today - timedelta(days=1)):
        start, end = day_bounds(day)
        settled.filter(stopped_at__gte=start, stopped_at__lt=end).aggregate(
            e=Sum("energy_kwh"), t=Sum("total_amount"), n=Count("id"))
    start, _ = day_bounds(today - timedelta(days=29))
    window = settled.filter(stopped_at__gte=start)
    list(window.annotate(d=TruncDate("stopped_at")).values("d").annotate(e=Sum("energy_kwh"), t=Sum("total_amount")))
    list(window.values("station_id").annotate(t=Sum("total_amount")).order_by("-t"))
    list(window.values_list("bill", flat=True).iterator(chunk_size=5000))  # the energy by period


def raw_report(stations, start_day, end_day):
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncDate

    from analytics.services import day_bounds
    from charging.models import ChargingOrder

    start, _ = day_bounds(start_day)
    _, end = day_bounds(end_day)
    list(ChargingOrder.objects.filter(state="settled", station__in=stations, stopped_at__gte=start,
                                      stopped_at__lt=end)
         .annotate(d=TruncDate("stopped_at")).values("d", "station_id")
         .annotate(n=Count("id"), e=Sum("electricity_amount"), s=Sum("service_amount"),
                   dis=Sum("discount_amount"), r=Sum("refunded_amount"), t=Sum("total_amount")))


def main(orders: int, fresh: bool) -> None:
    if fresh:
        _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    if not _admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DB}'"):
        _admin_sql(f'CREATE DATABASE "{BENCH_DB}"')
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("platform_setup", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # the admin pages' assets
    operator = build(orders)

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_tenants.utils import tenant_context

    from analytics.selectors import local_today
    from analytics.services import day_bounds, stats_day_rebuild
    from charging.models import ChargingOrder
    from stations.models import Station

    with tenant_context(operator):
        user = get_user_model().objects.get(username="admin")
        client = Client(HTTP_HOST=HOST)
        client.force_login(user)
        stations = Station.objects.all()
        today = local_today()
        n = ChargingOrder.objects.count()

        def home():
            assert client.get("/admin/").status_code == 200

        q = {"kind": "revenue", "from": str(today - timedelta(days=89)), "to": str(today)}

        def report():
            assert client.get("/reports/", q).status_code == 200

        home(), report()  # warm up
        results = [
            ("home page", p95(timed(home, 30)), p95(timed(lambda: raw_home(stations, today), 10)), 300, "ms"),
            ("90-day report", p95(timed(report, 30)),
             p95(timed(lambda: raw_report(stations, today - timedelta(days=89), today), 10)), 300, "ms"),
        ]
        day = today - timedelta(days=45)
        start, end = day_bounds(day)
        rebuild = timed(lambda: stats_day_rebuild(day=day), 3)
        read = timed(lambda: list(ChargingOrder.objects.filter(stopped_at__gte=start, stopped_at__lt=end)
                                  .values_list("id", "bill")), 3)
        results.append(("day rebuild", max(rebuild) / 1000, max(read) / 1000, 10, "s"))
    print(f"\n{n:,} orders in one operator, {STATIONS} stations, {STATIONS * PILES_PER_STATION * 2} connectors")
    print(f"{'figure':<16}{'measured':>12}{'target':>10}{'baseline':>12}{'ratio':>9}   baseline is")
    base = {"home page": "the same figures from raw orders (p95)",
            "90-day report": "the same table grouped from raw orders (p95)",
            "day rebuild": "a bare read of that day's orders (max of 3)"}
    for name, value, baseline, target, unit in results:
        flag = "ok" if value < target else "OVER"
        print(f"{name:<16}{value:>9.1f} {unit:<2}{target:>7} {unit:<2}{baseline:>9.1f} {unit:<2}"
              f"{value / baseline:>8.2f}x  {base[name]}  [{flag}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    main(args.orders, args.fresh)
