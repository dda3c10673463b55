"""The driver's order WebSocket stays open through silence longer than any Redis timeout
(YKC piles report every 15 s; nothing is pushed in between): the real ASGI app under
uvicorn, the real Redis channel layer, a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import time

import websockets
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.tokens import token_issue
from charging import consumers
from charging.consumers import OrderConsumer
from charging.realtime import order_group
from evplatform.tests.helpers import Uvicorn

SILENCE_S = 21
SCHEMA = "op_tenant_a"


def test_order_socket_survives_20_seconds_of_silence(operators, db, monkeypatch):
    from django.conf import settings

    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"

    # The order lookup and the member's sign-in are the database's part (the API and
    # socket-auth tests cover them); the question here is the channel layer's Redis
    # connection, so the consumer finds a fixed order for a signed-in member.
    async def found(self, claims):
        return {"id": self.order_id, "state": "charging"}

    monkeypatch.setattr(OrderConsumer, "_order", found)
    monkeypatch.setattr(consumers, "member_sign_in_refusal", lambda claims: None)
    server = Uvicorn()
    try:
        async_to_sync(_watch_through_silence)(server.port)
    finally:
        server.stop()


async def _watch_through_silence(port: int) -> None:
    order_id = 990001
    token = token_issue(member_id=7, schema_name=SCHEMA, session_id="silence-test")
    url = f"ws://127.0.0.1:{port}/ws/app/orders/{order_id}/"
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, open_timeout=10, additional_headers=headers) as socket:
        first = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert first["order"]["state"] == "charging"
        started = time.monotonic()
        try:
            await asyncio.wait_for(socket.recv(), SILENCE_S)
            raise AssertionError("a message or close during the silence")
        except TimeoutError:
            pass
        await get_channel_layer().group_send(
            order_group(SCHEMA, order_id),
            {"type": "order.update", "order": {"id": order_id, "state": "stopping"}},
        )
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert message["order"]["state"] == "stopping"
        assert time.monotonic() - started >= SILENCE_S
