"""Reads of operators and their routes (public schema)."""

from __future__ import annotations

from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from .models import Domain, MiniProgram, Operator


def operator_list() -> QuerySet[Operator]:
    """Every operator except the platform's own public tenant row."""
    return Operator.objects.exclude(schema_name=get_public_schema_name())


def operator_get_by_slug(slug: str) -> Operator | None:
    return operator_list().filter(slug=slug).first()


def operator_get_by_schema(schema_name: str) -> Operator | None:
    return Operator.objects.filter(schema_name=schema_name).first()


def operator_get_by_appid(appid: str) -> Operator | None:
    mp = MiniProgram.objects.select_related("operator").filter(appid=appid).first()
    return mp.operator if mp else None


def operator_get_by_host(hostname: str) -> Operator | None:
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    return domain.tenant if domain else None
