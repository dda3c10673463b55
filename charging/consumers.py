"""``/ws/app/orders/{id}/``: live state and progress of one order, for the order's own member.

Authentication, never in the URL (URLs end up in access logs): the handshake's
``Authorization: Bearer <access>`` header (``wx.connectSocket({header})``), or, where a
client cannot set headers (browsers), a first message ``{"type": "auth", "token": "<access>"}``
within AUTH_TIMEOUT_S seconds. A ``?token=`` in the URL is refused.

The member's sign-in is checked on connecting and again before a push when the last check
is older than WS_MEMBER_RECHECK_S seconds: a disabled member, a logged-out session or a
suspended operator stops receiving. Close codes: 4401 (no, bad or ended sign-in), 4403
(not the member's order), 4404 (no such order).
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django_tenants.utils import schema_context

from accounts.services import LoginRefused, member_authenticate
from accounts.tokens import TokenClaims, TokenError, bearer_token, token_decode
from tenants.selectors import operator_get_by_schema

from .realtime import order_group, order_payload

AUTH_TIMEOUT_S = 10
UNAUTHORIZED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404


class OrderConsumer(AsyncJsonWebsocketConsumer):
    claims: TokenClaims | None = None
    group: str | None = None

    async def connect(self):
        self.order_id = int(self.scope["url_route"]["kwargs"]["order_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        if "token" in query:
            await self.close(code=UNAUTHORIZED)
            return
        headers = dict(self.scope.get("headers") or [])
        token = bearer_token(headers.get(b"authorization", b"").decode(errors="replace"))
        if token is not None:
            found = await self._authenticate(token)
            if isinstance(found, int):
                await self.close(code=found)
                return
            await self.accept()
            await self._subscribe(found)
            return
        await self.accept()  # the token comes in the first message
        self.auth_timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_S, lambda: asyncio.ensure_future(self._auth_timeout())
        )

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Binary, not JSON, or nested past the parser's stack: a bad first message (closed
        # with 4401), ignored afterwards; never an exception in the consumer.
        try:
            content = json.loads(text_data) if text_data else None
        except (ValueError, RecursionError):
            content = None
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if self.claims is not None:
            return  # the driver only listens
        token = content.get("token") if isinstance(content, dict) else None
        if not (isinstance(content, dict) and content.get("type") == "auth" and isinstance(token, str)):
            await self.close(code=UNAUTHORIZED)
            return
        self.auth_timer.cancel()
        found = await self._authenticate(token)
        if isinstance(found, int):
            await self.close(code=found)
            return
        await self._subscribe(found)

    async def _auth_timeout(self):
        if self.claims is None:
            await self.close(code=UNAUTHORIZED)

    async def _subscribe(self, order: dict) -> None:
        self.checked_at = time.monotonic()
        self.group = order_group(self.claims.schema_name, self.order_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "order", "order": order})

    async def _authenticate(self, token: str) -> dict | int:
        """The order's payload for a live sign-in of its member, or a close code."""
        try:
            claims = token_decode(token)
        except TokenError:
            return UNAUTHORIZED
        found = await self._order(claims)
        if not isinstance(found, int):
            self.claims = claims
        return found

    @database_sync_to_async
    def _order(self, claims: TokenClaims) -> dict | int:
        if self._member_refusal(claims) is not None:
            return UNAUTHORIZED
        with schema_context(claims.schema_name):
            from .models import ChargingOrder

            order = ChargingOrder.objects.filter(pk=self.order_id).first()
            if order is None:
                return NOT_FOUND
            if order.member_id != claims.member_id:
                return FORBIDDEN
            return order_payload(order)

    @staticmethod
    def _member_refusal(claims: TokenClaims) -> str | None:
        operator = operator_get_by_schema(claims.schema_name)
        if operator is None or not operator.is_active:
            return "tenant_inactive"
        with schema_context(claims.schema_name):
            try:
                member_authenticate(claims)
            except LoginRefused as exc:
                return exc.code
        return None

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        timer = getattr(self, "auth_timer", None)
        if timer is not None:
            timer.cancel()

    async def order_update(self, event):
        if time.monotonic() - self.checked_at >= settings.WS_MEMBER_RECHECK_S:
            refused = await database_sync_to_async(self._member_refusal)(self.claims)
            if refused is not None:
                await self.close(code=UNAUTHORIZED)
                return
            self.checked_at = time.monotonic()
        await self.send_json({"type": "order", "order": event["order"]})
