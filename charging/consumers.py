"""``/ws/app/orders/{id}/?token=<access>``: live state and progress of one order, for the
order's own member only. Closes with 4401 (bad token), 4403 (not the member's order) or
4404 (no such order)."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import schema_context

from accounts.tokens import TokenError, token_decode
from tenants.selectors import operator_get_by_schema

from .realtime import order_group, order_payload


class OrderConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        token = (query.get("token") or [""])[0]
        try:
            claims = token_decode(token)
        except TokenError:
            await self.close(code=4401)
            return
        order_id = int(self.scope["url_route"]["kwargs"]["order_id"])
        found = await self._order(claims.schema_name, order_id, claims.member_id)
        if found in (4403, 4404, 4401):
            await self.close(code=found)
            return
        self.group = order_group(claims.schema_name, order_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "order", "order": found})

    @database_sync_to_async
    def _order(self, schema: str, order_id: int, member_id: int):
        operator = operator_get_by_schema(schema)
        if operator is None or not operator.is_active:
            return 4401
        with schema_context(schema):
            from .models import ChargingOrder

            order = ChargingOrder.objects.filter(pk=order_id).first()
            if order is None:
                return 4404
            if order.member_id != member_id:
                return 4403
            return order_payload(order)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # the driver only listens

    async def order_update(self, event):
        await self.send_json({"type": "order", "order": event["order"]})
