"""Hostile input is a 4xx in the common error shape, never a 500 (issue 21, item 5).

NUL bytes cannot be stored in PostgreSQL text, and JSON nested a thousand deep overflows
Python's parser: both are refused in one place, before any view or database sees them.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

LOGIN = "/api/app/v1/auth/wechat-login"
TENANT_HOST = "tenant-a.testserver"


def _assert_error(r, status, code):
    assert r.status_code == status, r.content[:300]
    body = r.json()
    assert set(body) == {"code", "detail", "fields"} and body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/app/v1/connectors/by-code/%00",
        "/api/app/v1/stations/%00",
        "/api/app/v1/stations?q=%00",
        "/api/app/v1/stations?city=a%00b",
        "/api/app/v1/wallet/payments/%00",
    ],
)
def test_nul_in_driver_api_path_or_query(member_api, path):
    _assert_error(member_api.get(path, HTTP_X_TENANT="tenant-a"), 400, "bad_request")


def test_nul_in_pay_notify_path(db, operators):
    r = Client().post("/api/pay/notify/%00/payment", data=b"{}", content_type="application/json")
    _assert_error(r, 400, "bad_request")


def test_nul_in_qr_landing_path(tenant):
    _assert_error(Client().get("/q/%00", HTTP_HOST=TENANT_HOST), 400, "bad_request")


def test_nul_in_tenant_header(db, operators):
    _assert_error(APIClient(HTTP_X_TENANT="tenant-a\x00").get("/api/app/v1/stations"), 400, "bad_request")


def test_nul_in_admin_autocomplete_and_search(tenant):
    user = get_user_model().objects.create_superuser("nul-admin", password="pw-123456789")
    client = Client(HTTP_HOST=TENANT_HOST)
    client.force_login(user)
    r = client.get(
        "/admin/autocomplete/",
        {"term": "\x00", "app_label": "stations", "model_name": "pile", "field_name": "station"},
    )
    _assert_error(r, 400, "bad_request")
    _assert_error(client.get("/admin/stations/station/", {"q": "a\x00"}), 400, "bad_request")


def test_nul_in_json_body_string(api):
    r = api.post(LOGIN, data=b'{"code": "a\\u0000b"}', content_type="application/json")
    _assert_error(r, 400, "parse_error")


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_refused_before_login(api, depth):
    r = api.post(LOGIN, data=b"[" * depth + b"]" * depth, content_type="application/json")
    _assert_error(r, 400, "parse_error")
    r = api.post(LOGIN, data=b'{"a":' * depth + b"1" + b"}" * depth, content_type="application/json")
    _assert_error(r, 400, "parse_error")


def test_deeply_nested_json_with_a_token(member_api):
    depth = 1000
    r = member_api.post("/api/app/v1/orders", data=b"[" * depth + b"]" * depth, content_type="application/json")
    _assert_error(r, 400, "parse_error")


def test_ordinary_nesting_still_parses(api):
    # A few levels deep is a normal body: it reaches the view (and its validation).
    r = api.post(LOGIN, data=b'{"code": "x", "extra": [[[{"a": [1]}]]]}', content_type="application/json")
    assert r.status_code != 400 or r.json()["code"] != "parse_error"
