"""Brute-force protection (issue 21, item 4).

- Admin logins (operator hosts and the super admin): after AXES_FAILURE_LIMIT failures a
  username is locked out from any address, and an address is locked out for any
  username; an operator's lockouts are its own (per schema).
- The driver login and token refresh are throttled per client address, taken from the
  connection or, behind TRUSTED_PROXY_COUNT proxies, from the address the nearest trusted
  proxy saw: a client cannot escape its bucket by sending its own X-Forwarded-For.
"""

from __future__ import annotations

import itertools

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

LIMIT = getattr(settings, "AXES_FAILURE_LIMIT", 5)
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))
_nets = (f"203.0.{n}" for n in itertools.count(1))


def _login(host: str, username: str, password: str, address: str):
    client = Client(HTTP_HOST=host, REMOTE_ADDR=address)
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def _logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


@pytest.fixture
def staff(tenant):
    return get_user_model().objects.create_superuser("boss", password="right-pass-123")


def test_username_is_locked_out_after_failures_from_any_address(staff):
    codes = [_login("tenant-a.testserver", "boss", "wrong", next(_addresses)).status_code
             for _ in range(LIMIT)]
    assert codes == [200] * (LIMIT - 1) + [429]  # the form again with its error, then locked
    r = _login("tenant-a.testserver", "boss", "right-pass-123", next(_addresses))
    assert r.status_code == 429 and not _logged_in(r)
    assert "登录失败次数过多" in r.content.decode()  # zh-hans, the default language
    assert "_auth_user_id" not in Client().session


def test_address_is_locked_out_for_any_username(staff):
    address = next(_addresses)
    for n in range(LIMIT):
        _login("tenant-a.testserver", f"guess-{n}", "wrong", address)
    assert _login("tenant-a.testserver", "boss", "right-pass-123", address).status_code == 429
    # Another address still logs in.
    assert _logged_in(_login("tenant-a.testserver", "boss", "right-pass-123", next(_addresses)))


def test_success_before_the_limit_resets_the_count(staff):
    address = next(_addresses)
    for _ in range(LIMIT - 1):
        _login("tenant-a.testserver", "boss", "wrong", address)
    assert _logged_in(_login("tenant-a.testserver", "boss", "right-pass-123", address))
    for _ in range(LIMIT - 1):
        _login("tenant-a.testserver", "boss", "wrong", address)
    assert _logged_in(_login("tenant-a.testserver", "boss", "right-pass-123", address))


def test_lockouts_are_per_operator(staff, other_tenant):
    with schema_context(other_tenant.schema_name):
        get_user_model().objects.create_superuser("boss", password="other-pass-123")
    for _ in range(LIMIT):
        _login("tenant-a.testserver", "boss", "wrong", next(_addresses))
    assert _login("tenant-a.testserver", "boss", "right-pass-123", next(_addresses)).status_code == 429
    # The same username at another operator is another account.
    assert _logged_in(_login("tenant-b.testserver", "boss", "other-pass-123", next(_addresses)))


def test_super_admin_login_is_locked_out(db, operators):
    with schema_context("public"):
        get_user_model().objects.create_superuser("root-h21", password="root-pass-123")
    for _ in range(LIMIT):
        _login("testserver", "root-h21", "wrong", next(_addresses))
    assert _login("testserver", "root-h21", "root-pass-123", next(_addresses)).status_code == 429


# --- driver login and refresh throttles -------------------------------------------------

LOGIN = "/api/app/v1/auth/wechat-login"
REFRESH = "/api/app/v1/auth/refresh"


@pytest.fixture
def low_rates(monkeypatch):
    """Rates of 3 a minute, from empty buckets (they live in Redis, not the rolled-back DB)."""
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    for key in redis.scan_iter(f"*{settings.REDIS_KEY_PREFIX}*throttle_*"):
        redis.delete(key)
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login", "3/min")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "token_refresh", "3/min")


def _post(path: str, address: str, forwarded: str | None = None, body: dict | None = None):
    extra = {"REMOTE_ADDR": address}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return APIClient(HTTP_X_TENANT="tenant-a", **extra).post(path, body or {}, format="json")


@pytest.mark.parametrize("path", [LOGIN, REFRESH])
def test_spoofed_forwarded_for_does_not_escape_the_throttle(tenant, low_rates, path, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    address = next(_addresses)
    codes = [_post(path, address, forwarded=f"10.9.9.{n}").status_code for n in range(5)]
    assert codes[:3] == [400, 400, 400] and codes[3:] == [429, 429]
    r = _post(path, address)
    assert r.status_code == 429 and r.json()["code"] == "throttled"


def test_behind_a_trusted_proxy_the_client_address_is_the_one_the_proxy_saw(
    tenant, low_rates, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy, net = "10.0.0.2", next(_nets)
    # The client forges a left-most entry; the proxy appends what it saw (right-most).
    codes = [_post(LOGIN, proxy, f"1.2.3.{n}, {net}.7").status_code for n in range(4)]
    assert codes == [400, 400, 400, 429]
    # Another client behind the same proxy has its own bucket.
    assert _post(LOGIN, proxy, f"{net}.8").status_code == 400
