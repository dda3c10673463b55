"""POST /api/app/v1/auth/wechat-login, /auth/refresh, /me/phone against the fake WeChat."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Member
from accounts.tokens import token_decode
from fakes.wechat_api import demo_openid

LOGIN = "/api/app/v1/auth/wechat-login"


@pytest.fixture
def wx(fake_wechat):
    return fake_wechat


def test_login_creates_member_and_returns_tokens_naming_the_tenant(api, wx, tenant):
    r = api.post(LOGIN, {"code": "demo-alice#1"}, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    member = Member.objects.get(openid=demo_openid("wxtenanta0000001", "alice"))
    assert body["member"]["id"] == member.pk and body["token_type"] == "Bearer"
    claims = token_decode(body["access"])
    assert claims.member_id == member.pk and claims.schema_name == tenant.schema_name
    # Logging in again finds the same member.
    r2 = api.post(LOGIN, {"code": "demo-alice#2"}, format="json")
    assert r2.json()["member"]["id"] == member.pk
    assert Member.objects.count() == 1


def test_token_alone_routes_to_its_tenant(api, wx):
    access = api.post(LOGIN, {"code": "demo-bob#1"}, format="json").json()["access"]
    r = APIClient(HTTP_AUTHORIZATION=f"Bearer {access}").get("/api/app/v1/me")
    assert r.status_code == 200 and r.json()["nickname"] == ""


def test_login_by_appid_header(wx, tenant):
    client = APIClient(HTTP_X_WX_APPID="wxtenanta0000001")
    r = client.post(LOGIN, {"code": "demo-carol#1"}, format="json")
    assert r.status_code == 200
    client = APIClient(HTTP_REFERER="https://servicewechat.com/wxtenanta0000001/3/page-frame.html")
    assert client.post(LOGIN, {"code": "demo-carol#2"}, format="json").status_code == 200


def test_disabled_member_cannot_log_in(api, wx):
    Member.objects.create(openid=demo_openid("wxtenanta0000001", "dave"), status="disabled")
    r = api.post(LOGIN, {"code": "demo-dave#1"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "member_disabled"


def test_disabled_member_token_is_refused(member_api, member):
    member.status = "disabled"
    member.save()
    r = member_api.get("/api/app/v1/me")
    assert r.status_code == 401 and r.json()["code"] == "member_disabled"


def test_invalid_code_is_the_clients_error_in_our_words(api, wx):
    r = api.post(LOGIN, {"code": "invalid-code"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "wechat_code_invalid"
    assert "rid" not in r.json()["detail"] and "invalid code" not in r.json()["detail"]
    assert Member.objects.count() == 0


def test_reused_code_is_the_clients_error(api, wx):
    assert api.post(LOGIN, {"code": "demo-gus#1"}, format="json").status_code == 200
    r = api.post(LOGIN, {"code": "demo-gus#1"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 400 and r.json()["code"] == "wechat_code_invalid"
    assert "code been used" not in r.json()["detail"]


def test_invalid_phone_code_is_the_clients_error(member_api, wx):
    r = member_api.post("/api/app/v1/me/phone", {"code": "invalid-1"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "wechat_code_invalid"


def test_wechat_unreachable_is_502_without_its_text(api, tenant, settings):
    settings.WECHAT_API_BASE_URL = "http://127.0.0.1:9/"  # nothing listens on the discard port
    r = api.post(LOGIN, {"code": "demo-hal#1"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 502 and r.json()["code"] == "wechat_error"
    assert "Connection" not in r.json()["detail"] and "unreachable" not in r.json()["detail"]


def test_missing_code_is_a_validation_error(api, wx):
    r = api.post(LOGIN, {}, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "code": "validation_error",
        "detail": r.json()["detail"],
        "fields": {"code": [r.json()["fields"]["code"][0]]},
    }


def test_refresh_gives_new_tokens_and_rejects_access_tokens(api, wx):
    tokens = api.post(LOGIN, {"code": "demo-erin#1"}, format="json").json()
    r = api.post("/api/app/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert r.status_code == 200 and token_decode(r.json()["access"]).member_id == tokens["member"]["id"]
    r = api.post("/api/app/v1/auth/refresh", {"refresh": tokens["access"]}, format="json")
    assert r.status_code == 401 and r.json()["code"] == "token_invalid"


def test_phone_binding(member_api, wx, member):
    r = member_api.post("/api/app/v1/me/phone", {"code": "phone-13812345678"}, format="json")
    assert r.status_code == 200 and r.json()["phone"] == "13812345678"
    member.refresh_from_db()
    assert member.phone == "13812345678"


def test_access_token_is_cached_and_shared(api, wx):
    """The WeChat access token is fetched once and reused through Django's cache."""
    from django.core.cache import cache

    api.post(LOGIN, {"code": "demo-fay#1"}, format="json")
    api.post(LOGIN, {"code": "demo-fay#2"}, format="json")
    assert cache.get("wechatpy:wxtenanta0000001_access_token")
