"""Every 4xx has the shape {"code", "detail", "fields"}; malformed requests never 500."""

import pytest

LOGIN = "/api/app/v1/auth/wechat-login"


def _assert_error(r, status, code):
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"code", "detail", "fields"} and body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


def test_malformed_json(api):
    r = api.post(LOGIN, data=b"{not json", content_type="application/json")
    _assert_error(r, 400, "parse_error")


def test_wrong_content_type(api):
    r = api.post(LOGIN, data="code=x", content_type="application/x-www-form-urlencoded")
    _assert_error(r, 415, "unsupported_media_type")


def test_method_not_allowed(api):
    _assert_error(api.get(LOGIN), 405, "method_not_allowed")


def test_unknown_api_path(api):
    _assert_error(api.get("/api/app/v1/no-such-thing"), 404, "not_found")


def test_validation_error_names_fields(api):
    r = api.post(LOGIN, {"code": ""}, format="json")
    _assert_error(r, 400, "validation_error")
    assert list(r.json()["fields"]) == ["code"]


@pytest.mark.parametrize("body", [b"[]", b"null", b"123", b'"x"', b'{"code": {"a": 1}}'])
def test_odd_json_bodies_are_4xx(api, body):
    r = api.post(LOGIN, data=body, content_type="application/json")
    assert 400 <= r.status_code < 500 and set(r.json()) == {"code", "detail", "fields"}


def test_chinese_is_the_default_language(api):
    r = api.get(LOGIN)
    assert r.json()["detail"] == "方法 “GET” 不被允许。"
    r = api.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en")
    assert r.json()["detail"] == 'Method "GET" not allowed.'


def test_our_own_messages_ship_in_chinese(db, operators):
    from rest_framework.test import APIClient

    r = APIClient(HTTP_X_TENANT="nope").get("/api/app/v1/me")
    assert r.json() == {"code": "tenant_not_found", "detail": "未知的运营商。", "fields": {}}


def test_domain_errors_become_their_code_status_and_fields():
    """Any DomainError a service raises is answered by the exception handler, no view code."""
    from rest_framework.decorators import api_view, permission_classes
    from rest_framework.permissions import AllowAny
    from rest_framework.test import APIRequestFactory

    from accounts.services import LoginRefused
    from billing.payments.services import BillingError
    from charging.services import OrderRefused
    from evplatform.errors import DomainError

    class Closed(DomainError):
        code, status = "station_closed", 409

    cases = [
        (OrderRefused("connector_busy", "Busy."), 409, "connector_busy", {}),
        (OrderRefused("member_disabled", "Disabled.", 403), 403, "member_disabled", {}),
        (BillingError("amount_too_small", "Too small."), 400, "amount_too_small", {}),
        (LoginRefused("wechat_error", "WeChat down."), 502, "wechat_error", {}),
        (LoginRefused("token_invalid", "Bad token."), 401, "token_invalid", {}),
        (Closed(detail="Closed."), 409, "station_closed", {}),
        (DomainError("bad_amount", "Bad.", fields={"amount": ["Bad."]}), 400, "bad_amount",
         {"amount": ["Bad."]}),
    ]
    for error, status, code, fields in cases:

        @api_view(["GET"])
        @permission_classes([AllowAny])
        def view(request, error=error):
            raise error

        r = view(APIRequestFactory().get("/x"))
        r.render()
        assert r.status_code == status, (code, r.status_code)
        assert r.data == {"code": code, "detail": str(error.detail), "fields": fields}
