"""What the OpenAPI document (``/api/schema/``, Swagger UI at ``/api/docs/``) declares beyond
what drf-spectacular infers: the bearer token, the tenant headers, one tag per domain, the
error shape on every 4xx with its codes, and the parts of the API that are not DRF views
(the order WebSocket, WeChat Pay's notifications) in the description.

Summaries of the document are bilingual (中文 / English); the error body is
``{"code", "detail", "fields"}`` (``evplatform.api.errors``).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

API_PREFIX = "/api/app/v1/"

# path segment after /api/app/v1/ → tag (one per domain)
TAG_OF_SEGMENT = {
    "auth": "accounts", "me": "accounts",
    "stations": "stations", "connectors": "stations",
    "orders": "charging", "reservations": "charging",
    "wallet": "wallet",
    "coupons": "marketing", "points": "marketing",
    "owner": "owner",
    "invoices": "invoices",
}
TAGS = [
    {"name": "accounts", "description": "登录与会员资料 · WeChat login, tokens and the member's profile"},
    {"name": "stations", "description": "找站、扫码查枪 · stations by distance, price, map; a connector by its QR code"},
    {"name": "charging", "description": "充电订单与预约 · start, watch and stop a charge; reservations"},
    {"name": "wallet", "description": "钱包、充值、退费、提现 · balance, ledger, WeChat Pay top-ups, refunds, withdrawals"},
    {"name": "marketing", "description": "营销 · coupons, points"},
    {"name": "invoices", "description": "电子发票 · invoiceable orders, saved titles, invoice requests and PDFs"},
    {"name": "owner", "description": "站长中心 · a station owner's stations, earnings, statements and faults"},
    {"name": "feedback", "description": "意见反馈与投诉 · feedback and complaints, staff replies"},
]

# What each 4xx means here, with the codes it may carry (all in the common error shape).
ERRORS = {
    "400": ("请求有误 · Bad request",
            ["validation_error", "parse_error", "tenant_required", "refused (domain codes, e.g. "
             "connector_busy, insufficient_balance)"]),
    "401": ("未登录或令牌无效 · Not authenticated",
            ["not_authenticated", "token_invalid", "token_expired", "token_tenant_mismatch"]),
    "403": ("无权访问 · Forbidden", ["permission_denied", "tenant_suspended"]),
    "404": ("不存在 · Not found", ["not_found", "tenant_not_found"]),
    "429": ("请求过于频繁 · Too many requests", ["throttled"]),
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "detail", "fields"],
    "properties": {
        "code": {"type": "string", "description": "稳定的错误代码 · stable machine-readable code",
                 "example": "validation_error"},
        "detail": {"type": "string", "description": "给人看的说明（按 Accept-Language）· human sentence",
                   "example": "输入无效。"},
        # messages per field; a nested field (a list or object input) nests the same way
        "fields": {"type": "object", "additionalProperties": True,
                   "description": "字段错误（仅 validation_error）· per-field messages",
                   "example": {"code": ["该字段不能为空。"]}},
    },
}
TENANT_HEADERS = [
    {"name": "X-Tenant", "in": "header", "required": False, "schema": {"type": "string"},
     "example": "demo",
     "description": "登录前：运营商标识 · before login: the operator's slug"},
    {"name": "X-WX-AppId", "in": "header", "required": False, "schema": {"type": "string"},
     "example": "wxdemo0000000001",
     "description": "登录前：小程序 AppID（或微信的 Referer）· before login: the mini-program's appid"},
]

DESCRIPTION = """
车主小程序接口 · The drivers' mini-program API.

**运营商 · Operator.** 登录前发送 `X-Tenant: <运营商标识>` 或 `X-WX-AppId: <小程序 AppID>`；
登录后发送 `Authorization: Bearer <access>`，令牌本身指明运营商（他家的令牌一律 401
`token_tenant_mismatch`）。 Before login send `X-Tenant` or `X-WX-AppId`; after login the bearer
token names its operator, whatever the headers say.

**错误 · Errors.** 每个 4xx 都是 `{"code", "detail", "fields"}`；`code` 稳定可判断，`detail`
按 `Accept-Language` 给出中文或英文。 Every 4xx has this shape; see each operation's responses.

**金额与时间 · Money and time.** 金额单位为元（字符串，两位小数），电量 kWh，时间为 ISO 8601（UTC）。
Amounts in yuan as strings with 2 decimals, energy in kWh, times ISO 8601 in UTC.

**实时订单 · WebSocket** `GET /ws/app/orders/{order_id}/?token=<access>` — 仅订单本人。
连接后服务器先发 `{"type": "order", "order": {…同 GET /orders/{id}…}}`，之后每次状态或进度变化再发一条
同样的消息（电量 kWh、金额、功率 kW、SOC、时长）。关闭码：4401 令牌无效，4403 不是本人的订单，
4404 订单不存在。 The server sends the order as `GET /orders/{id}` returns it on connect and on
every change; close codes 4401 / 4403 / 4404.

**微信支付通知 · WeChat Pay notifications** `POST /api/pay/notify/<运营商标识>/<payment|refund|transfer>`
— 由微信支付调用，不需要令牌：验签（微信支付公钥）、5 分钟内的时间戳、解密、与我方记录核对，只入账一次。
204 已处理（或此前已处理）；401 无法验证；400 与我方记录不符（提交人工核查）。 Called by WeChat Pay:
verified, decrypted, matched with our record and applied exactly once; 204 applied, 401 untrusted,
400 mismatch (flagged for staff).
"""


class ErrorSerializer(serializers.Serializer):
    """The common error body (component ``Error``)."""

    code = serializers.CharField(help_text="stable machine-readable code")
    detail = serializers.CharField(help_text="translated sentence")
    fields = serializers.DictField(help_text="field name → messages (validation errors only)")


# For an operation's non-4xx refusals, e.g. ``responses={200: Out, 502: ERROR}``.
ERROR = OpenApiResponse(ErrorSerializer, description="Refused: the common error body.")


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.MemberTokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "登录接口返回的 access 令牌 · the access token from wechat-login"}


CATCH_ALL_4XX = {
    "description": "其他拒绝 · Refused: the common error body.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def postprocess(result, generator, request, public):
    """Tags per domain, tenant headers, and the error shape on every operation's 4xx."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    result["tags"] = TAGS
    result.setdefault("info", {})["description"] = DESCRIPTION.strip()
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        segment = path[len(API_PREFIX):].split("/", 1)[0]
        tag = TAG_OF_SEGMENT.get(segment, segment)
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operation["tags"] = [tag]
            params = operation.setdefault("parameters", [])
            names = {p.get("name") for p in params}
            params.extend(h for h in TENANT_HEADERS if h["name"] not in names)
            responses = operation.setdefault("responses", {})
            responses.setdefault("4XX", CATCH_ALL_4XX)
            for status, (summary, codes) in ERRORS.items():
                if status == "401" and not operation.get("security"):
                    continue
                responses.setdefault(status, {
                    "description": f"{summary} — code: " + ", ".join(f"`{c}`" for c in codes),
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"},
                        "example": {"code": codes[0].split(" ")[0], "detail": summary.split(" · ")[0],
                                    "fields": {}},
                    }},
                })
    return result


def paginated(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """A page of ``item``s as ``evplatform.api.pagination.Pagination`` answers it."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
