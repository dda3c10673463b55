"""Provisioning and lifecycle of operators (tenants)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name, schema_exists, tenant_context

from .models import Domain, Operator
from .selectors import operator_routes_forget

logger = logging.getLogger(__name__)


def schema_name_for(slug: str) -> str:
    """PostgreSQL schema of the operator with ``slug`` (``op_`` + slug, hyphens → _)."""
    return "op_" + slug.replace("-", "_")


def platform_ensure(*, host: str | None = None) -> Operator:
    """The public tenant row and its host, which django-tenants requires. Idempotent."""
    host = host or settings.PUBLIC_HOST
    public, _ = Operator.objects.get_or_create(
        schema_name=get_public_schema_name(),
        defaults={"name": "平台", "slug": "platform"},
    )
    Domain.objects.get_or_create(domain=host, defaults={"tenant": public, "is_primary": True})
    return public


def template_schema_ensure(*, verbosity: int = 0) -> bool:
    """Create (if missing) and migrate the template schema new operators are cloned from.

    Returns True when the schema was created. Run after every deploy's migrations: a
    stale template would give new operators an old schema.
    """
    name = settings.TENANT_BASE_SCHEMA
    created = False
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
        created = True
    call_command(
        "migrate_schemas", schema_name=name, tenant=True, interactive=False, verbosity=verbosity
    )
    connection.set_schema_to_public()
    return created


@dataclass
class ProvisionResult:
    operator: Operator
    admin_password: str | None
    seconds: float


def operator_create(
    *,
    slug: str,
    name: str,
    domain: str,
    admin_username: str,
    admin_password: str | None = None,
    admin_email: str = "",
    time_zone: str = "Asia/Shanghai",
    contact_name: str = "",
    contact_phone: str = "",
) -> ProvisionResult:
    """Create a working operator: schema cloned from the template, host, operator admin.

    Raises django.core.exceptions.ValidationError for a bad slug, name, domain or time
    zone, or a slug/domain already taken. ``admin_password`` is generated (and returned)
    when not given.
    """
    from django.core.exceptions import ValidationError

    started = time.perf_counter()
    if not schema_exists(settings.TENANT_BASE_SCHEMA):
        template_schema_ensure()
    operator = Operator(
        schema_name=schema_name_for(slug),
        slug=slug,
        name=name,
        time_zone=time_zone,
        contact_name=contact_name,
        contact_phone=contact_phone,
    )
    operator.full_clean()
    domain_row = Domain(domain=domain, tenant=operator, is_primary=True)
    domain_row.full_clean(exclude=["tenant"])
    if Domain.objects.filter(domain=domain).exists():
        raise ValidationError({"domain": f"domain {domain} is already in use"})

    operator.save(verbosity=0)  # clones the template schema (django-tenants)
    try:
        with transaction.atomic():
            domain_row.tenant = operator
            domain_row.save()
            generated = admin_password is None
            password = admin_password or secrets.token_urlsafe(12)
            with tenant_context(operator):
                from accounts.roles import OPERATOR_ADMIN, role_group

                user = get_user_model().objects.create_superuser(
                    username=admin_username, email=admin_email, password=password
                )
                user.groups.add(role_group(OPERATOR_ADMIN))
    except Exception:
        operator.delete(force_drop=True)
        raise
    seconds = time.perf_counter() - started
    logger.info("operator %s provisioned in %.2fs", slug, seconds)
    return ProvisionResult(
        operator=operator, admin_password=password if generated else None, seconds=seconds
    )


def operator_set_status(*, operator: Operator, status: str) -> Operator:
    """Suspend or resume an operator. A suspended operator's API answers 403
    ``tenant_suspended`` (at once in this process, within ``TENANT_ROUTE_CACHE_SECONDS``
    in the other web processes) and its piles are refused at login."""
    if status not in Operator.Status.values:
        raise ValueError(f"unknown status {status!r}")
    operator.status = status
    operator.save(update_fields=["status"])
    # The driver API caches its operators per process (TENANT_ROUTE_CACHE_SECONDS): forget
    # them now, and again once committed (a request in between may have read the old row).
    operator_routes_forget()
    transaction.on_commit(operator_routes_forget)
    logger.info("operator %s is now %s", operator.slug, status)
    return operator


@transaction.atomic
def registry_assign(*, codes: list[str], operator: Operator) -> tuple[list[str], list[str]]:
    """Register pile ``codes`` to ``operator`` in the public registry (the super admin's
    answer to a refused login): ``(registered, held)``, ``held`` the codes another operator
    already holds (left as they are). A code already the operator's counts as registered."""
    from .models import PileRegistration

    done, held = [], []
    for code in sorted(set(codes)):
        row, _created = PileRegistration.objects.select_for_update().get_or_create(
            code=code, defaults={"operator": operator})
        (done if row.operator_id == operator.pk else held).append(code)
    return done, held
