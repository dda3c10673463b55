"""The driver API's per-process operator cache (tenants.selectors.operator_for_api): one
query per operator per TENANT_ROUTE_CACHE_SECONDS, suspensions seen at once in this process
and within the cache's lifetime elsewhere, and never another operator's row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenants import selectors
from tenants.models import Operator
from tenants.services import operator_set_status

STATIONS = "/api/app/v1/stations?city=上海市"


def _lookups(kind: str, value: str):
    """(the answer, how many queries it took — the search_path switch not counted)."""
    with CaptureQueriesContext(connection) as captured:
        found = selectors.operator_for_api(kind, value)
    return found, len([q for q in captured.captured_queries if not q["sql"].startswith("SET search_path")])


@pytest.fixture
def cached(settings):
    settings.TENANT_ROUTE_CACHE_SECONDS = 5
    return settings


def test_second_lookup_is_served_without_a_query(cached, operators, db):
    for kind, value, slug in (
        ("slug", "tenant-a", "tenant-a"),
        ("appid", "wxtenantb0000001", "tenant-b"),
        ("schema", operators["tenant-b"].schema_name, "tenant-b"),
    ):
        first, queries = _lookups(kind, value)
        assert queries == 1
        again, queries = _lookups(kind, value)
        assert queries == 0
        assert first.pk == again.pk == operators[slug].pk


def test_each_call_gets_its_own_copy(cached, operators, db):
    one = selectors.operator_for_api("slug", "tenant-a")
    one.domain_url = "mutated.example"
    one.name = "changed in one request"
    two = selectors.operator_for_api("slug", "tenant-a")
    assert two is not one
    assert two.name == operators["tenant-a"].name
    assert getattr(two, "domain_url", None) != "mutated.example"


def test_unknown_operators_are_not_cached(cached, operators, db):
    for _ in range(2):
        assert _lookups("slug", "no-such-operator") == (None, 1)


def test_unknown_kind_is_a_key_error(cached, db):
    with pytest.raises(KeyError):
        selectors.operator_for_api("host", "tenant-a")


def test_zero_seconds_means_no_cache(settings, operators, db):
    settings.TENANT_ROUTE_CACHE_SECONDS = 0
    for _ in range(2):
        found, queries = _lookups("slug", "tenant-a")
        assert found.pk == operators["tenant-a"].pk and queries == 1


def test_suspension_through_the_service_is_seen_at_once(cached, api, tenant):
    assert api.get(STATIONS).status_code == 200  # the operator is now cached
    operator_set_status(operator=tenant, status="suspended")
    try:
        r = api.get(STATIONS)
        assert r.status_code == 403 and r.json()["code"] == "tenant_suspended"
    finally:
        operator_set_status(operator=tenant, status="active")
    assert api.get(STATIONS).status_code == 200


def test_change_made_elsewhere_is_seen_once_the_entry_expires(cached, api, tenant, monkeypatch):
    """Another process suspends the operator (a plain UPDATE here): this process answers
    from its cache until the entry's seconds have passed, then reads the row again."""
    assert api.get(STATIONS).status_code == 200
    Operator.objects.filter(pk=tenant.pk).update(status=Operator.Status.SUSPENDED)
    assert api.get(STATIONS).status_code == 200  # still cached
    clock = selectors.time.monotonic() + 5.1
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock)
    r = api.get(STATIONS)
    assert r.status_code == 403 and r.json()["code"] == "tenant_suspended"


def test_cached_routes_never_mix_operators(cached, operators, db):
    """Alternating operators through the cache: each request lists its own stations."""
    from stations.models import Station

    names = {}
    for slug in ("tenant-a", "tenant-b"):
        connection.set_tenant(operators[slug])
        Station.objects.create(name=f"{slug} 路由测试站", code=f"RT-{slug}", address="某路", city="上海市",
                               latitude="31.2", longitude="121.4")
        names[slug] = f"{slug} 路由测试站"
    connection.set_schema_to_public()
    for _ in range(3):
        for slug in ("tenant-a", "tenant-b"):
            rows = APIClient(HTTP_X_TENANT=slug).get(STATIONS + "&q=路由测试").json()["results"]
            assert [r["name"] for r in rows] == [names[slug]]
