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
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django_tenants.utils import schema_context

from accounts.sockets import (
    AUTH_TIMEOUT_S,
    FORBIDDEN,
    NOT_FOUND,
    UNAUTHORIZED,
    TolerantJsonConsumer,
    member_sign_in_refusal,
)
from accounts.tokens import TokenClaims, TokenError, bearer_token, token_decode

from .realtime import order_group, order_payload


class OrderConsumer(TolerantJsonConsumer):
    """(Bad JSON: a bad first message, closed with 4401; ignored afterwards.)"""

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
        if member_sign_in_refusal(claims) is not None:
            return UNAUTHORIZED
        with schema_context(claims.schema_name):
            from .models import ChargingOrder

            order = ChargingOrder.objects.filter(pk=self.order_id).first()
            if order is None:
                return NOT_FOUND
            if order.member_id != claims.member_id:
                return FORBIDDEN
            return order_payload(order)

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        timer = getattr(self, "auth_timer", None)
        if timer is not None:
            timer.cancel()

    async def order_update(self, event):
        if time.monotonic() - self.checked_at >= settings.WS_MEMBER_RECHECK_S:
            refused = await database_sync_to_async(member_sign_in_refusal)(self.claims)
            if refused is not None:
                await self.close(code=UNAUTHORIZED)
                return
            self.checked_at = time.monotonic()
        await self.send_json({"type": "order", "order": event["order"]})
