"""Reads of operators and their routes (public schema)."""

from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
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


# The driver API's routing cache: {(kind, value): (monotonic expiry, operator)}. Only found
# operators are kept (an unknown slug costs a query each time, and random slugs cannot
# fill the memory); bounded all the same.
_ROUTES: dict[tuple[str, str], tuple[float, Operator]] = {}
_ROUTES_LOCK = threading.Lock()
ROUTES_MAX = 10_000
_ROUTE_LOOKUPS = {
    "slug": operator_get_by_slug,
    "appid": operator_get_by_appid,
    "schema": operator_get_by_schema,
}


def operator_for_api(kind: str, value: str) -> Operator | None:
    """The operator a driver-API request names — ``kind`` "slug" (X-Tenant), "appid"
    (X-WX-AppId) or "schema" (the token's claim) — or None if there is none.

    Why cached: the driver API is the platform's most frequent request, and looking its
    operator up costs every request a query on the public schema and a second
    ``search_path`` switch (a third of a station-list request's CPU). The answer is kept
    in this process for ``TENANT_ROUTE_CACHE_SECONDS`` (0: not cached), so a suspension
    made in another process takes effect within that many seconds; one made through
    ``tenants.services.operator_set_status`` forgets this process's entry at once. Each
    call returns its own copy (the middleware sets attributes on it).
    Raises KeyError for an unknown ``kind``.
    """
    lookup = _ROUTE_LOOKUPS[kind]
    ttl = float(getattr(settings, "TENANT_ROUTE_CACHE_SECONDS", 0))
    if ttl <= 0:
        return lookup(value)
    now = time.monotonic()
    hit = _ROUTES.get((kind, value))
    if hit is not None and hit[0] > now:
        return copy.copy(hit[1])
    operator = lookup(value)
    if operator is not None:
        with _ROUTES_LOCK:
            if len(_ROUTES) >= ROUTES_MAX:
                _ROUTES.clear()
            _ROUTES[(kind, value)] = (now + ttl, copy.copy(operator))
    return operator


def operator_routes_forget() -> None:
    """Forget every cached driver-API route of this process (after an operator changed)."""
    with _ROUTES_LOCK:
        _ROUTES.clear()


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
