"""``migrate_schemas`` that skips operator schemas already at the head, then migrates the
rest with django-tenants' own executor (``standard``, or ``multiprocessing`` in parallel).

Why: a no-op ``migrate`` still costs ~165 ms per schema (migration loader, consistency
checks, ``post_migrate`` handlers creating content types and permissions). A schema whose
``django_migrations`` already holds every migration of the project has nothing to apply,
and whether it does is one SQL query for a few hundred schemas at a time — so a deploy
with 1,000 operators and nothing new costs about a second instead of minutes, and a deploy
with new migrations spends its time only on the schemas that need them.

Wired by ``GET_EXECUTOR_FUNCTION`` in settings; ``--executor`` / ``EXECUTOR`` choose the
executor for the schemas that remain (``TENANT_MULTIPROCESSING_MAX_PROCESSES`` processes
for ``multiprocessing``). Nothing is skipped when a command names an app or a migration
(``migrate_schemas app 0003``), asks for ``--plan``, ``--prune`` or ``--run-syncdb``, or
targets the public schema: those go through django-tenants unchanged.
"""

from __future__ import annotations

import sys

from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django_tenants.migration_executors import get_executor as tenants_get_executor
from django_tenants.utils import get_public_schema_name

BATCH = 200  # schemas per query (one UNION ALL of this many counts)
SKIP_AT_HEAD = True  # False: every schema goes through django-tenants (benchmarks' baseline)


def expected_migrations() -> set[tuple[str, str]]:
    """Every (app, name) migration of the project's graph — what an up-to-date schema's
    ``django_migrations`` contains (migrations of shared apps are recorded in tenant
    schemas too, their operations being no-ops there)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return set(loader.graph.nodes)


def schemas_at_head(schemas: list[str], *, database: str = "default") -> set[str]:
    """The subset of ``schemas`` whose ``django_migrations`` contains every expected
    migration. Schemas without the table (or that do not exist) are not at the head."""
    expected = sorted(expected_migrations())
    if not schemas or not expected:
        return set()
    apps = [a for a, _ in expected]
    names = [n for _, n in expected]
    connection = connections[database]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = 'django_migrations' AND c.relkind = 'r' AND n.nspname = ANY(%s)",
            [list(schemas)],
        )
        with_table = [row[0] for row in cursor.fetchall()]
        done: set[str] = set()
        for i in range(0, len(with_table), BATCH):
            chunk = with_table[i : i + BATCH]
            parts, params = [], []
            for schema in chunk:
                quoted = '"' + schema.replace('"', '""') + '"'
                parts.append(
                    f"SELECT %s, count(*) FROM {quoted}.django_migrations m"
                    " JOIN unnest(%s::text[], %s::text[]) AS e(app, name)"
                    " ON m.app = e.app AND m.name = e.name"
                )
                params += [schema, apps, names]
            cursor.execute(" UNION ALL ".join(parts), params)
            done.update(schema for schema, count in cursor.fetchall() if count >= len(expected))
    return done


def _may_skip(options: dict) -> bool:
    return SKIP_AT_HEAD and not any(
        options.get(key)
        for key in ("app_label", "migration_name", "plan", "prune", "run_syncdb", "fake")
    )


def get_executor(codename=None):
    """``GET_EXECUTOR_FUNCTION`` for django-tenants: its executor ``codename`` wrapped so
    schemas already at the head are left alone."""
    base = tenants_get_executor(codename)

    class SkipAtHeadExecutor(base):
        def run_migrations(self, tenants=None):
            tenants = list(tenants or [])
            public = get_public_schema_name()
            if _may_skip(self.options) and any(t != public for t in tenants):
                database = self.options.get("database") or "default"
                done = schemas_at_head([t for t in tenants if t != public], database=database)
                if done:
                    tenants = [t for t in tenants if t not in done]
                    if int(self.options.get("verbosity", 1)) >= 1:
                        sys.stdout.write(f"{len(done)} schemas already at the head, skipped; "
                                         f"{len(tenants)} to migrate\n")
            if tenants:
                super().run_migrations(tenants=tenants)

    SkipAtHeadExecutor.__name__ = f"SkipAtHead{base.__name__}"
    return SkipAtHeadExecutor
