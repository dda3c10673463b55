"""Benchmark operator provisioning and schema migrations over many operators.

Run: ``.venv/bin/python benchmarks/tenant_provisioning.py [N]`` (default 50). Uses its own
database ``<DB_NAME>_bench_tenants`` (created, migrated and dropped here), so the platform's
data is never touched. It prints:

- seconds per operator for ``operator_create`` (schema cloned from the template, host,
  operator admin), as min / median / p95 / max;
- the time of ``migrate_schemas`` with nothing to apply, over the N operators (+ public);
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
os.environ["DB_NAME"] = BENCH_DB

import psycopg2  # noqa: E402


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


def main(n: int) -> None:
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

        seconds = []
        for i in range(n):
            t = time.perf_counter()
            operator_create(
                slug=f"bench-{i:04d}", name=f"压测运营商 {i}", domain=f"bench-{i:04d}.localhost",
                admin_username="admin", admin_password="bench-pass-123",
            )
            seconds.append(time.perf_counter() - t)
        connection.set_schema_to_public()

        t = time.perf_counter()
        call_command("migrate_schemas", interactive=False, verbosity=0)
        noop_s = time.perf_counter() - t

        ordered = sorted(seconds)
        print(f"tenant provisioning, {n} operators (database {BENCH_DB})")
        print(f"  public schema migrate (once)            {public_s:8.2f} s")
        print(f"  template schema, all migrations (once)  {template_s:8.2f} s   (= one operator without cloning)")
        print(
            f"  operator_create (clone) per operator    min {ordered[0]:.3f}  median "
            f"{statistics.median(ordered):.3f}  p95 {ordered[int(0.95 * (n - 1))]:.3f}  "
            f"max {ordered[-1]:.3f} s   total {sum(seconds):.1f} s"
        )
        print(
            f"  migrate_schemas, nothing to apply        {noop_s:8.2f} s over {n} operators + public "
            f"({noop_s / (n + 1) * 1000:.0f} ms per schema)"
        )
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
