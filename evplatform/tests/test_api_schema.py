"""The OpenAPI document declares what a mini-program developer needs: bearer token, tenant
headers, one tag per domain, the error shape on every 4xx, the WebSocket and pay notify."""

from django.test import Client

from evplatform.api.schema import TAGS


def _schema(db, operators):
    r = Client().get("/api/schema/?format=json", HTTP_HOST="testserver")
    assert r.status_code == 200
    return r.json()


def test_security_tags_headers_and_errors(db, operators):
    schema = _schema(db, operators)
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "detail", "fields"}
    tag_names = {t["name"] for t in TAGS}
    assert {t["name"] for t in schema["tags"]} == tag_names
    operations = [(path, method, op) for path, ops in schema["paths"].items()
                  for method, op in ops.items() if path.startswith("/api/app/v1/")]
    assert len(operations) > 20
    for path, _method, op in operations:
        assert op["tags"][0] in tag_names, (path, op["tags"])
        headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
        assert {"X-Tenant", "X-WX-AppId"} <= headers, path
        for status in ("400", "404"):
            body = op["responses"][status]["content"]["application/json"]
            assert body["schema"] == {"$ref": "#/components/schemas/Error"}, (path, status)
        if op.get("security") and {"bearer": []} in op["security"]:
            assert "token_tenant_mismatch" in op["responses"]["401"]["description"]
    login = schema["paths"]["/api/app/v1/auth/wechat-login"]["post"]
    assert login["tags"] == ["accounts"]
    wallet = schema["paths"]["/api/app/v1/wallet"]["get"]
    assert {"bearer": []} in wallet["security"]


def test_description_covers_websocket_and_pay_notify_in_both_languages(db, operators):
    description = _schema(db, operators)["info"]["description"]
    assert "/ws/app/orders/{order_id}/" in description and "4403" in description
    assert "/api/pay/notify/" in description and "204" in description
    assert "车主小程序接口" in description and "mini-program API" in description


def test_every_operation_has_a_chinese_and_english_summary(db, operators):
    import re

    schema = _schema(db, operators)
    missing = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if not path.startswith("/api/app/v1/") or method not in ("get", "post", "put", "patch", "delete"):
                continue
            summary = op.get("summary", "")
            if not (re.search(r"[\u4e00-\u9fff]", summary) and re.search(r"[A-Za-z]", summary)):
                missing.append(f"{method} {path}")
    assert not missing, "add to evplatform.api.schema.SUMMARIES: " + ", ".join(missing)
