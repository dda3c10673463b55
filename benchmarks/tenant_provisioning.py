"""Benchmark operator provisioning and schema migrations over many operators.

Run: ``.venv/bin/python benchmarks/tenant_provisioning.py --operators N`` (default 50). Uses its own
database ``<DB_NAME>_bench_tenants`` (created, migrated and dropped here), so the platform's
data is never touched. It prints:

- seconds per operator for ``operator_create`` (schema cloned from the template, host,
  operator admin), as min / median / p95 / max;
- the time of ``migrate_schemas`` with nothing to apply, over the N operators (+ public),
  against the previous per-schema migrate measured on a sample in the same run (ratio),
  and the figure for 1,000 operators against its 60 s target (extrapolated below 1,000);
- for comparison, the time to build one operator schema by replaying every migration.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
BASE_DB = os.environ.get("DB_NAME", "evplatform")
BENCH_DB = f"{BASE_DB}_bench_tenants"
SAMPLE = 20  # schemas migrated the previous way, for the baseline
os.environ["DB_NAME"] = BENCH_DB

import psycopg2  # noqa: E402


def _admin_sql(sql: str) -> list:
    conn = psycopg2.connect(
        dbname="postgres",
        user=os.environ.get("DB_USER", "postgres"),
        host=os.environ.get("DB_HOST", "127.0.0.1"),
        port=os.environ.get("DB_PORT", "5432"),
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
    conn.close()
    return rows


def _bulk_operators(numbers) -> tuple[float, int]:
    """Operators ``bench-NNNN`` for ``numbers`` without cloning: their public rows (Operator,
    Domain) and a schema holding only a copy of the template's ``django_migrations`` — all
    that ``migrate_schemas``' at-head check reads, at ~10 ms each instead of the 1-25 s of a
    full clone (≈700 relations) on this machine. Returns (seconds, operators made)."""
    from django.conf import settings
    from django.db import connection, transaction

    from tenants.models import Domain, Operator

    started = time.perf_counter()
    existing = set(Operator.objects.values_list("slug", flat=True))
    todo = [i for i in numbers if f"bench-{i:04d}" not in existing]
    template = settings.TENANT_BASE_SCHEMA
    for start in range(0, len(todo), 100):
        chunk = todo[start:start + 100]
        with transaction.atomic():
            operators = Operator.objects.bulk_create([
                Operator(schema_name=f"bulk_{i:04d}", slug=f"bench-{i:04d}", name=f"压测运营商 {i}")
                for i in chunk
            ])
            Domain.objects.bulk_create([
                Domain(domain=f"{o.slug}.localhost", tenant=o, is_primary=True) for o in operators
            ])
            with connection.cursor() as cursor:
                for o in operators:
                    cursor.execute(
                        f'CREATE SCHEMA IF NOT EXISTS "{o.schema_name}";'
                        f' CREATE TABLE IF NOT EXISTS "{o.schema_name}".django_migrations'
                        f' (LIKE "{template}".django_migrations INCLUDING ALL);'
                        f' INSERT INTO "{o.schema_name}".django_migrations'
                        f' SELECT * FROM "{template}".django_migrations'
                    )
    return time.perf_counter() - started, len(todo)


def main(n: int, keep: bool = False, clones: int | None = None) -> None:
    load0 = os.getloadavg()[0]
    exists = _admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DB}'")
    if not (keep and exists):
        _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        _admin_sql(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        from tenants.services import operator_create, platform_ensure, template_schema_ensure

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        started = time.perf_counter()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        platform_ensure()
        public_s = time.perf_counter() - started
        started = time.perf_counter()
        template_schema_ensure()
        template_s = time.perf_counter() - started

        from tenants.selectors import operator_get_by_slug

        seconds = []
        clones = n if clones is None else min(clones, n)
        for i in range(clones):
            if keep and operator_get_by_slug(f"bench-{i:04d}") is not None:
                continue  # made by an earlier --keep run
            t = time.perf_counter()
            operator_create(
                slug=f"bench-{i:04d}", name=f"压测运营商 {i}", domain=f"bench-{i:04d}.localhost",
                admin_username="admin", admin_password="bench-pass-123",
            )
            seconds.append(time.perf_counter() - t)
        connection.set_schema_to_public()
        bulk_s, bulk_n = _bulk_operators(range(clones, n)) if clones < n else (0.0, 0)

        # The deploy step: every operator schema (+ public), nothing to apply. Schemas at
        # the head are found in SQL and skipped (tenants/migration_executor.py).
        t = time.perf_counter()
        call_command("migrate_schemas", interactive=False, verbosity=0)
        noop_s = time.perf_counter() - t
        # Its two parts, to extrapolate: the public schema's own migrate (once per deploy)
        # and the at-head check (per operator schema).
        t = time.perf_counter()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        shared_s = time.perf_counter() - t
        from tenants import migration_executor
        from tenants.models import Operator

        schemas = list(Operator.objects.exclude(schema_name="public")
                       .order_by("schema_name").values_list("schema_name", flat=True))
        t = time.perf_counter()
        at_head = migration_executor.schemas_at_head(schemas)
        check_s = time.perf_counter() - t
        assert len(at_head) == len(schemas), "every freshly created operator is at the head"

        # Baseline, same run: the previous design, django-tenants' migrate of each schema,
        # on a sample of operators (all of them would take minutes), extrapolated.
        sample = [s for s in schemas if s.startswith("op_")][:SAMPLE]  # full clones only
        migration_executor.SKIP_AT_HEAD = False
        try:
            t = time.perf_counter()
            for schema in sample:
                call_command("migrate_schemas", schema_name=schema, interactive=False, verbosity=0)
            per_schema_base = (time.perf_counter() - t) / len(sample)
        finally:
            migration_executor.SKIP_AT_HEAD = True

        ordered = sorted(seconds) or [float("nan")]
        print(f"tenant provisioning, {n} operators (database {BENCH_DB}); the machine is shared "
              f"and busy (load average {os.getloadavg()[0]:.1f} now, {load0:.1f} at start): "
              "compare ratios, not absolutes")
        if bulk_n:
            print(f"  {clones} operators cloned by operator_create; {bulk_n} more made in bulk in "
                  f"{bulk_s:.1f} s (rows + a schema holding the template's django_migrations: what the "
                  "at-head check reads; a full clone costs the time below)")
        print(f"  public schema migrate (once)            {public_s:8.2f} s")
        print(f"  template schema, all migrations (once)  {template_s:8.2f} s   (= one operator without cloning"
              f"{'; kept from an earlier run' if keep and exists else ''})")
        print(
            f"  operator_create (clone) per operator    min {ordered[0]:.3f}  median "
            f"{statistics.median(ordered):.3f}  p95 {ordered[int(0.95 * (len(ordered) - 1))]:.3f}  "
            f"max {ordered[-1]:.3f} s   total {sum(seconds):.1f} s ({len(seconds)} created in this run)"
        )
        base_total = per_schema_base * (n + 1)
        per_1000 = noop_s if n == 1000 else shared_s + check_s / n * 1000
        print(
            f"  migrate_schemas, nothing to apply       {noop_s:8.2f} s over {n} operators + public "
            f"(public's own migrate {shared_s:.2f} s; at-head check {check_s * 1000 / n:.2f} ms per schema)"
        )
        print(
            f"    baseline (previous: django-tenants migrate per schema, {len(sample)} sampled) "
            f"{per_schema_base * 1000:.0f} ms per schema -> {base_total:.1f} s for {n} + public; "
            f"ratio {noop_s / base_total:.3f} (lower is better)"
        )
        print(
            f"    for 1,000 operators: {per_1000:.1f} s"
            f"{'' if n == 1000 else ' (extrapolated: public migrate + 1,000 x the per-schema check)'}"
            f"  target < 60 s  ratio to target {per_1000 / 60:.2f}  {'MET' if per_1000 < 60 else 'NOT MET'};"
            f" previous design {per_schema_base * 1001:.0f} s"
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("count", nargs="?", type=int, help="operators (same as --operators)")
    parser.add_argument("--operators", type=int, default=50, help="operators to create (default 50)")
    parser.add_argument("--clones", type=int, default=None,
                        help="clone only this many operators by operator_create (timed); make the rest in "
                             "bulk (rows + django_migrations only). Default: all cloned")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database (and reuse the operators an earlier --keep run made)")
    args = parser.parse_args()
    main(args.count or args.operators, keep=args.keep, clones=args.clones)
