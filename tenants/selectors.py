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


def operator_app_branding(operator: Operator, *, mini_program: MiniProgram | None = None) -> dict:
    """What the drivers' app shows of its operator (the H5 app's ``window.__EVP__`` and each
    mini-program's ext.json): ``{tenant, name, themeColor, logo}`` (+ ``appid``); ``logo`` is
    a path on the operator's host, empty without one."""
    config = {
        "tenant": operator.slug,
        "name": mini_program.display_name if mini_program else operator.name,
        "themeColor": operator.brand_color,
        "logo": f"/m/logo?v={operator.logo.name.rsplit('/', 1)[-1]}" if operator.logo else "",
    }
    if mini_program is not None:
        config["appid"] = mini_program.appid
    return config
