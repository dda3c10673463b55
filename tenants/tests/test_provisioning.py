import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from accounts.roles import OPERATOR_ADMIN, ROLE_NAMES, STATION_OWNER
from tenants.models import Domain, MiniProgram, Operator
from tenants.services import operator_create


@pytest.fixture
def public(operators, db):
    connection.set_schema_to_public()
    yield
    connection.set_schema_to_public()


def test_create_operator_clones_template_with_admin_and_roles(public, capsys):
    call_command(
        "create_operator",
        "--slug", "fresh-op", "--name", "新运营商", "--domain", "fresh.testserver",
        "--admin-user", "boss",
    )
    out = capsys.readouterr().out
    assert "created operator fresh-op" in out and "s\n" in out.splitlines()[0] + "\n"
    assert "operator admin: boss / " in out
    op = Operator.objects.get(slug="fresh-op")
    assert op.schema_name == "op_fresh_op" and schema_exists("op_fresh_op")
    assert op.name == "新运营商" and op.status == "active" and op.time_zone == "Asia/Shanghai"
    assert Domain.objects.get(domain="fresh.testserver").tenant == op
    with tenant_context(op):
        boss = User.objects.get(username="boss")
        assert boss.is_staff and boss.is_superuser
        assert set(boss.groups.values_list("name", flat=True)) == {ROLE_NAMES[OPERATOR_ADMIN]}
        groups = User._meta.apps.get_model("auth", "Group").objects
        admin_perms = set(
            groups.get(name=ROLE_NAMES[OPERATOR_ADMIN]).permissions.values_list("codename", flat=True)
        )
        assert "view_member" in admin_perms  # roles travel with the template into new tenants
        assert groups.filter(name=ROLE_NAMES[STATION_OWNER]).exists()
    # CREATE SCHEMA is transactional in PostgreSQL: the test's rollback removes it.


def test_create_operator_refuses_taken_slug_and_domain(public):
    with pytest.raises(ValidationError):
        operator_create(slug="tenant-a", name="x", domain="new.testserver", admin_username="a")
    with pytest.raises(ValidationError):
        operator_create(slug="newslug", name="x", domain="tenant-a.testserver", admin_username="a")
    with pytest.raises(ValidationError):
        operator_create(slug="Bad Slug", name="x", domain="b.testserver", admin_username="a")
    assert not schema_exists("op_newslug")


def test_secrets_are_encrypted_in_the_row_and_masked(public, operators):
    mp = MiniProgram.objects.get(operator=operators["tenant-a"])
    mp.apiv3_key = "0123456789abcdef0123456789abcdef"
    mp.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT app_secret, apiv3_key FROM public.tenants_miniprogram WHERE id = %s", [mp.pk]
        )
        app_secret_raw, apiv3_raw = cursor.fetchone()
    assert app_secret_raw.startswith("fernet:") and "secret-tenant-a" not in app_secret_raw
    assert "0123456789abcdef" not in apiv3_raw
    reloaded = MiniProgram.objects.get(pk=mp.pk)
    assert reloaded.apiv3_key == "0123456789abcdef0123456789abcdef"
    assert "0123456789abcdef" not in repr(reloaded) and "secret" not in str(reloaded)


def test_suspend_and_resume_commands(public, operators):
    call_command("suspend_operator", "tenant-b")
    assert Operator.objects.get(slug="tenant-b").status == "suspended"
    call_command("resume_operator", "tenant-b")
    assert Operator.objects.get(slug="tenant-b").status == "active"
