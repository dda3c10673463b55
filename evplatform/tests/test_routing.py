"""Which operator a request reaches, and how refusals look."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Member
from accounts.services import tokens_for
from tenants.services import operator_set_status

ME = "/api/app/v1/me"


def test_header_slug_routes_to_tenant_and_requires_login(api):
    r = api.get(ME)
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated" and r.json()["fields"] == {}


def test_unknown_tenant_is_404(db, operators):
    for headers in ({"HTTP_X_TENANT": "nope"}, {"HTTP_X_WX_APPID": "wxunknown"}):
        r = APIClient(**headers).get(ME)
        assert r.status_code == 404 and r.json()["code"] == "tenant_not_found"


def test_no_tenant_at_all_is_400(db, operators):
    r = APIClient().get(ME)
    assert r.status_code == 400 and r.json()["code"] == "tenant_required"


def test_token_of_another_tenant_is_refused_whatever_the_headers(member_api, member, other_tenant):
    token = member_api.defaults["HTTP_AUTHORIZATION"]
    for headers in ({"HTTP_X_TENANT": other_tenant.slug}, {"HTTP_X_WX_APPID": "wxtenantb0000001"}):
        r = APIClient(HTTP_AUTHORIZATION=token, **headers).get(ME)
        assert r.status_code == 401 and r.json()["code"] == "token_tenant_mismatch"
    assert member_api.get(ME).json()["id"] == member.pk  # its own tenant still works


def test_token_forged_for_another_schema_is_refused(tenant, other_tenant):
    connection.set_tenant(other_tenant)
    intruder = Member.objects.create(openid="intruder")
    token = tokens_for(intruder).access
    connection.set_tenant(tenant)
    # A tenant-b token used with tenant-a's header: mismatch, and never tenant-a's data.
    r = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT=tenant.slug).get(ME)
    assert r.status_code == 401 and r.json()["code"] == "token_tenant_mismatch"


def test_garbage_and_expired_tokens(db, operators, settings, member, tenant):
    r = APIClient(HTTP_AUTHORIZATION="Bearer not-a-token").get(ME)
    assert r.status_code == 401 and r.json()["code"] == "token_invalid"
    settings.MEMBER_ACCESS_TOKEN_TTL = -10
    connection.set_tenant(tenant)  # the request above left the connection on public
    expired = tokens_for(member).access
    r = APIClient(HTTP_AUTHORIZATION=f"Bearer {expired}").get(ME)
    assert r.status_code == 401 and r.json()["code"] == "token_expired"


def test_suspended_tenant_api_is_403(api, member_api, tenant):
    operator_set_status(operator=tenant, status="suspended")
    try:
        for client in (api, member_api):
            r = client.get(ME)
            assert r.status_code == 403 and r.json()["code"] == "tenant_suspended"
    finally:
        operator_set_status(operator=tenant, status="active")


@pytest.mark.parametrize(
    "host, expected",
    [("testserver", "platform_admin"), ("tenant-a.testserver", "admin"), ("nowhere.example", None)],
)
def test_browsers_are_routed_by_host(client, db, operators, host, expected):
    r = client.get("/admin/login/", HTTP_HOST=host)
    if expected is None:  # a person's browser: a Chinese page, not JSON
        assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
        assert 'data-error-code="tenant_not_found"' in r.text and "此地址没有对应的运营商" in r.text
    else:
        assert r.status_code == 200
        assert r.resolver_match.namespace == expected


def test_operator_admin_logs_in_on_its_own_host_only(client, db, operators):
    ok = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": "admin-pass-123"},
        HTTP_HOST="tenant-a.testserver",
    )
    assert ok.status_code == 302
    assert client.get("/admin/", HTTP_HOST="tenant-a.testserver").status_code == 200
    # The session of tenant-a's admin means nothing on the platform host.
    assert client.get("/admin/", HTTP_HOST="testserver").status_code == 302


def test_suspended_tenant_admin_host_is_403(client, tenant):
    operator_set_status(operator=tenant, status="suspended")
    try:
        r = client.get("/admin/login/", HTTP_HOST="tenant-a.testserver")
        assert r.status_code == 403 and 'data-error-code="tenant_suspended"' in r.text
        assert "该运营商已被暂停" in r.text
        r = client.get("/admin/login/", HTTP_HOST="tenant-a.testserver", HTTP_ACCEPT="application/json")
        assert r.status_code == 403 and r.json()["code"] == "tenant_suspended"
    finally:
        operator_set_status(operator=tenant, status="active")


def test_healthz_reports_database_and_redis(client, db, operators):
    r = client.get("/healthz", HTTP_HOST="anything.example")
    body = r.json()
    assert r.status_code == 200 and body["ok"] is True
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


def test_openapi_schema_and_docs(client, db, operators):
    r = client.get("/api/schema/", HTTP_HOST="testserver")
    assert r.status_code == 200 and b"/api/app/v1/auth/wechat-login" in r.content
    assert client.get("/api/docs/", HTTP_HOST="testserver").status_code == 200


def test_pay_notify_is_routed_by_the_slug_in_the_path(db, operators):
    from django.test import Client

    # no header, no token: the slug decides; unknown slug → 404 in the common format
    r = Client().post("/api/pay/notify/nobody/payment", data="{}", content_type="application/json")
    assert r.status_code == 404 and r.json()["code"] == "tenant_not_found"
    r = Client().post("/api/pay/notify/tenant-b/payment", data="{}", content_type="application/json")
    assert r.status_code in (401, 409)  # reached tenant-b's handler (no merchant there: 409)
    assert connection.schema_name == "op_tenant_b"
