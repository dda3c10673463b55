"""``evplatform.prepared``: a prepared statement is reused, logged like any query, and never
reads another operator's tables when django-tenants switches schema on the same connection."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts.models import Member
from evplatform.prepared import execute_prepared_one

SQL = "SELECT current_schema(), (SELECT count(*) FROM accounts_member WHERE openid = %s)"


def _prepared_runs() -> int:
    """How many times this connection has run SQL's prepared statement (plans used)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements "
            "WHERE statement LIKE %s", ["SELECT current_schema(), (SELECT count(*) FROM accounts_member%"])
        return int(cursor.fetchone()[0])


def test_a_prepared_statement_follows_the_schema_on_one_connection(tenant, other_tenant):
    Member.objects.create(openid="prepared-a")
    with tenant_context(other_tenant):
        Member.objects.create(openid="prepared-b")
        Member.objects.create(openid="prepared-b2")
    before = _prepared_runs()
    # Eight rounds: past PostgreSQL's five custom plans, so a cached generic plan is in use.
    for _round in range(8):
        assert execute_prepared_one(SQL, ["prepared-a"]) == (tenant.schema_name, 1)
        assert execute_prepared_one(SQL, ["prepared-b"]) == (tenant.schema_name, 0)
        with tenant_context(other_tenant):
            assert execute_prepared_one(SQL, ["prepared-a"]) == (other_tenant.schema_name, 0)
            assert execute_prepared_one(SQL, ["prepared-b"]) == (other_tenant.schema_name, 1)
    assert _prepared_runs() - before == 32  # every run went through the one prepared statement


def test_a_prepared_statement_is_logged_and_raises_djangos_errors(tenant):
    import pytest
    from django.db import ProgrammingError, transaction

    execute_prepared_one(SQL, ["nobody"])  # the schema set, the statement prepared
    with CaptureQueriesContext(connection) as queries:
        assert execute_prepared_one(SQL, ["nobody"]) == (tenant.schema_name, 0)
    assert [q["sql"] for q in queries.captured_queries] == [SQL]
    with pytest.raises(ProgrammingError), transaction.atomic():
        execute_prepared_one("SELECT count(*) FROM no_such_table WHERE id = %s", [1])
