"""``migrate_schemas`` skips operator schemas already at the head (tenants/migration_executor.py)."""

from io import StringIO

from django.core.management import call_command
from django.db import connection

from tenants.migration_executor import expected_migrations, schemas_at_head


def test_freshly_provisioned_operators_are_at_the_head(operators, db):
    schemas = [operators["tenant-a"].schema_name, operators["tenant-b"].schema_name]
    assert schemas_at_head(schemas + ["no_such_schema"]) == set(schemas)
    assert schemas_at_head([]) == set()


def test_a_schema_missing_one_migration_is_not_at_the_head(operators, db):
    a, b = operators["tenant-a"].schema_name, operators["tenant-b"].schema_name
    app, name = sorted(expected_migrations())[-1]
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute(f'DELETE FROM "{b}".django_migrations WHERE app = %s AND name = %s', [app, name])
    assert schemas_at_head([a, b]) == {a}


def test_migrate_schemas_with_nothing_to_do_skips_every_operator(operators, db, capsys):
    call_command("migrate_schemas", tenant=True, interactive=False, verbosity=1, stdout=StringIO())
    out = capsys.readouterr().out
    assert "schemas already at the head, skipped; 0 to migrate" in out
    assert "Applying" not in out
