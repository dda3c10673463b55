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
    "orders": "charging", "reservations": "charging", "queue": "charging",
    "wallet": "wallet",
    "coupons": "marketing", "points": "marketing", "svip": "marketing",
    "scratch-cards": "marketing", "point-cards": "marketing", "sms-consent": "marketing",
    "referral": "marketing",
    "owner": "owner",
    "chat": "feedback",
    "invoices": "invoices",
}
TAGS = [
    {"name": "accounts", "description": "登录与会员资料 · WeChat login, tokens and the member's profile"},
    {"name": "stations", "description": "找站、扫码查枪 · stations by distance, price, map; a connector by its QR code"},
    {"name": "charging", "description": "充电订单与预约 · start, watch and stop a charge; reservations"},
    {"name": "wallet", "description": "钱包、充值、退费、提现 · balance, ledger, WeChat Pay top-ups, refunds, withdrawals"},
    {"name": "marketing", "description": "营销 · coupons, SVIP, points and the points mall, scratch cards, point cards"},
    {"name": "invoices", "description": "电子发票 · invoiceable orders, saved titles, invoice requests and PDFs"},
    {"name": "owner", "description": "站长中心 · a station owner's stations, earnings, statements and faults"},
    {"name": "feedback", "description": "意见反馈、投诉与在线客服 · feedback and complaints, staff replies, customer-service chat (REST side; live on the WebSocket /ws/app/chat/)"},
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

**在线客服 · Chat WebSocket** `GET /ws/app/chat/` — 令牌放在握手的 `Authorization: Bearer` 头里，
或连接后 10 秒内发 `{"type": "auth", "token": "<access>"}`（URL 里带令牌会被拒绝，4401）。
服务器先发 `{"type": "hello", "conversation", "messages", "unread"}`（同 `GET /chat`）；
客户端发 `{"type": "message", "text", "client_id"}`、`{"type": "typing"}`、`{"type": "read", "upto"}`、
`{"type": "history", "before"}`；服务器推送 `message`、`read`、`typing`（客服正在输入）、`conversation`
（分配、结束）与 `error` `{code, detail, client_id}`。 Sign in by header or first message; the server
sends the conversation on connect, then every message, read marker, typing and assignment live;
a refused message comes back as an `error` frame with its code.

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


# One line per operation, Chinese · English, shown beside each operation in /api/docs/.
# ``evplatform/tests/test_api_schema.py`` fails for an operation without one.
SUMMARIES = {
    ("post", "auth/logout"): "退出登录 · Sign out",
    ("post", "auth/refresh"): "刷新访问令牌 · Refresh the access token",
    ("post", "auth/wechat-login"): "微信登录 · Sign in with WeChat",
    ("get", "connectors/{id}"): "充电枪详情 · A connector by id",
    ("get", "connectors/by-code/{code}"): "扫码查询充电枪 · A connector by its QR code",
    ("get", "invoices"): "我的发票 · My invoices",
    ("post", "invoices"): "申请开票 · Request an invoice",
    ("get", "invoices/{id}"): "发票详情 · An invoice",
    ("get", "invoices/{id}/pdf"): "下载发票 PDF · The invoice as PDF",
    ("get", "invoices/orders"): "可开票订单 · Orders that can be invoiced",
    ("get", "invoices/titles"): "发票抬头列表 · Saved invoice titles",
    ("post", "invoices/titles"): "新增发票抬头 · Save an invoice title",
    ("put", "invoices/titles/{id}"): "修改发票抬头 · Change an invoice title",
    ("delete", "invoices/titles/{id}"): "删除发票抬头 · Delete an invoice title",
    ("get", "me"): "我的资料 · My profile",
    ("post", "me/phone"): "绑定手机号 · Bind my phone number",
    ("get", "orders"): "我的充电订单 · My charging orders",
    ("post", "orders"): "开始充电 · Start charging",
    ("get", "orders/{order_id}"): "订单详情 · An order",
    ("post", "orders/{order_id}/stop"): "停止充电 · Stop charging",
    ("post", "orders/{order_id}/departure"): "设置离场时间 · Set the requested departure",
    ("get", "orders/current"): "进行中的订单 · The order in progress",
    ("get", "orders/roaming"): "伙伴桩订单 · My orders on partners' piles",
    ("post", "orders/roaming"): "在伙伴桩充电 · Charge on a partner's pile",
    ("get", "orders/roaming/{order_id}"): "伙伴桩订单详情 · An order on a partner's pile",
    ("post", "orders/roaming/{order_id}/stop"): "停止伙伴桩充电 · Stop charging on a partner's pile",
    ("post", "orders/prepay"): "单次预付 · Prepay one order",
    ("get", "owner/faults"): "站长：故障 · Station owner: faults",
    ("get", "owner/orders"): "站长：订单 · Station owner: orders",
    ("get", "owner/overview"): "站长：概览 · Station owner: overview",
    ("get", "owner/statements"): "站长：结算单 · Station owner: statements",
    ("get", "owner/statements/{id}"): "站长：结算单详情 · Station owner: a statement",
    ("get", "owner/stations"): "站长：我的电站 · Station owner: my stations",
    ("get", "reservations"): "我的预约 · My reservation",
    ("post", "reservations"): "预约充电枪 · Reserve a connector",
    ("post", "reservations/{reservation_id}/cancel"): "取消预约 · Cancel a reservation",
    ("get", "stations"): "附近电站 · Stations nearby",
    ("get", "stations/{id}"): "电站详情 · A station",
    ("get", "stations/map"): "地图电站 · Stations on the map",
    ("get", "stations/partners"): "互联伙伴电站 · Partners' stations",
    ("get", "stations/partners/{id}"): "互联伙伴电站详情 · A partner's station",
    ("get", "stations/recommend"): "一键找空闲枪 · Nearest free connectors",
    ("get", "wallet"): "我的钱包 · My wallet",
    ("get", "wallet/ledger"): "钱包明细 · Wallet movements",
    ("get", "wallet/payments/{out_trade_no}"): "支付结果 · A payment's state",
    ("get", "wallet/refunds"): "退款记录 · My refunds",
    ("post", "wallet/refunds"): "申请退款 · Request a refund",
    ("get", "wallet/refunds/{id}"): "退款详情 · A refund",
    ("get", "wallet/refunds/preview"): "退款预览 · Preview a refund",
    ("get", "wallet/top-up-options"): "充值档位 · Top-up options",
    ("post", "wallet/top-ups"): "钱包充值 · Top up the wallet",
    ("get", "wallet/withdrawals"): "提现记录 · My withdrawals",
    ("post", "wallet/withdrawals"): "申请提现 · Request a withdrawal",
    ("get", "wallet/withdrawals/{id}"): "提现详情 · A withdrawal",
    ("get", "owner/withdrawals"): "站长：提现记录 · Station owner: my withdrawals",
    ("post", "owner/withdrawals"): "站长：申请提现 · Station owner: ask to be paid",
    ("get", "coupons"): "我的优惠券 · My coupons",
    ("post", "coupons/{id}/choose"): "本单使用此券 · Use this coupon on an order",
    ("get", "coupons/applicable"): "可用优惠券 · Coupons usable on a connector",
    ("post", "coupons/claim"): "领取优惠券 · Claim a coupon",
    ("post", "coupons/buy"): "购买优惠券 · Buy a coupon with WeChat Pay",
    ("get", "coupons/claimable"): "可领取的优惠券 · Coupons to claim",
    ("post", "point-cards/redeem"): "点卡充值 · Redeem a point card",
    ("get", "points"): "我的积分 · My points",
    ("get", "points/entries"): "积分明细 · Points entries",
    ("get", "points/mall"): "积分商城 · The points mall",
    ("get", "points/mall/redemptions"): "我的积分兑换 · My redemptions",
    ("post", "points/mall/redemptions"): "积分兑换 · Spend points on an item",
    ("get", "scratch-cards"): "我的刮刮卡 · My scratch cards",
    ("post", "scratch-cards/{id}/scratch"): "刮开刮刮卡 · Scratch a card",
    ("get", "referral"): "邀请好友 · My invite code and invitations",
    ("post", "referral/bind"): "填写邀请码 · Accept an invite code",
    ("get", "sms-consent"): "营销短信订阅状态 · Marketing SMS consent",
    ("put", "sms-consent"): "订阅或退订营销短信 · Agree to or opt out of marketing SMS",
    ("get", "svip"): "SVIP 会员 · SVIP status and plans",
    ("get", "svip/purchases"): "SVIP 购买记录 · SVIP purchases",
    ("post", "svip/purchases"): "购买或续费 SVIP · Buy or renew SVIP",
    ("post", "svip/purchases/{id}/refund"): "退订 SVIP · Refund an SVIP purchase",
    ("post", "svip/wechat-pay"): "微信支付购买 SVIP · Buy or renew SVIP with WeChat Pay",
    ("get", "feedback"): "我的反馈 · My feedback",
    ("post", "feedback"): "提交反馈或投诉 · Send feedback or a complaint",
    ("get", "feedback/{feedback_id}"): "反馈详情 · A feedback thread",
    ("post", "feedback/{feedback_id}/replies"): "追加回复 · Add to a feedback thread",
    ("post", "feedback/photos"): "上传反馈图片 · Upload a photo for feedback",
    ("get", "chat"): "在线客服会话 · My customer-service conversation",
    ("post", "chat/messages"): "发送客服消息 · Send a message to customer service",
    ("post", "chat/read"): "标记客服消息已读 · Mark customer-service messages read",
    ("get", "queue"): "我的排队 · My place in a queue",
    ("post", "queue"): "排队充电 · Join a station's queue",
    ("post", "queue/{entry_id}/decline"): "放弃本次分配 · Decline the offered connector",
    ("post", "queue/{entry_id}/leave"): "退出排队 · Leave the queue",
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
            summary = SUMMARIES.get((method, path[len(API_PREFIX):]))
            if summary and not operation.get("summary"):
                operation["summary"] = summary
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
