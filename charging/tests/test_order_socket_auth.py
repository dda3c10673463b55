"""``/ws/app/orders/{id}/`` (issue 21, item 6): the access token never travels in the URL,
and the member's sign-in is checked on connecting and re-checked while connected.

The consumer reads the database from its own threads, so the rows it must see are
committed (``committed``) and removed afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal

import channels.layers
import pytest
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.db import connection
from django_tenants.utils import schema_context

from charging.realtime import order_group
from charging.routing import websocket_urlpatterns
from protocols.tests.helpers import committed

pytestmark = pytest.mark.django_db
_n = itertools.count(1)


@pytest.fixture
def order_world(tenant):
    """A member with a sign-in (tokens), their order, and a stranger with one: committed."""
    from django.db import connections

    schema = tenant.schema_name
    # The consumer's threads close their connections after each call (as under uvicorn,
    # Procfile), so none is left open on the test database.
    db_settings = connections.settings["default"]
    saved_max_age, db_settings["CONN_MAX_AGE"] = db_settings["CONN_MAX_AGE"], 0

    def make():
        from accounts.models import Member
        from accounts.services import tokens_for
        from charging.models import ChargingOrder
        from stations.models import Connector, Pile, Station

        with schema_context(schema):
            n = next(_n)
            station = Station.objects.create(
                name="WS站", code=f"WS{n:04d}", address="广州", area_code="440106",
                latitude=Decimal("23.1"), longitude=Decimal("113.3"),
            )
            pile = Pile.objects.create(station=station, code=f"4401069800{n:04d}", rated_power_kw=Decimal("60"))
            gun = Connector.objects.create(pile=pile, number=1, rated_power_kw=Decimal("60"))
            member = Member.objects.create(openid=f"ws-member-{n}")
            stranger = Member.objects.create(openid=f"ws-stranger-{n}")
            order = ChargingOrder.objects.create(
                number=f"WS{n:010d}", member=member, connector=gun, pile=pile, station=station,
                trade_no=f"WSTRADE{n:010d}", mode="wallet",
            )
            return {
                "schema": schema, "order": order.pk, "member": member.pk, "station": station.pk,
                "access": tokens_for(member).access, "stranger": tokens_for(stranger).access,
            }

    world = committed(make)
    yield world

    def clean():
        from accounts.models import Member
        from charging.models import ChargingOrder
        from stations.models import Pile, Station

        with schema_context(schema):
            ChargingOrder.objects.filter(pk=world["order"]).delete()
            Member.objects.filter(openid__startswith="ws-").delete()
            Pile.objects.filter(station_id=world["station"]).delete()
            Station.objects.filter(pk=world["station"]).delete()

    committed(clean)
    db_settings["CONN_MAX_AGE"] = saved_max_age
    connection.set_tenant(tenant)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A channel layer of the test's own: each test runs its own event loop, and a Redis
    layer keeps per-loop receive state (locks, buffers) that must not outlive the loop."""
    channels.layers.channel_layers.backends.clear()
    yield
    channels.layers.channel_layers.backends.clear()


class Socket(ApplicationCommunicator):
    """A WebSocket client speaking ASGI to the consumer (channels.testing's needs daphne)."""

    def __init__(self, path: str, query: str, headers: list):
        scope = {
            "type": "websocket", "path": path, "query_string": query.encode(),
            "headers": headers, "subprotocols": [],
        }
        super().__init__(URLRouter(websocket_urlpatterns), scope)

    async def connect(self, timeout: float = 5):
        await self.send_input({"type": "websocket.connect"})
        reply = await self.receive_output(timeout)
        if reply["type"] == "websocket.close":
            return False, reply.get("code", 1000)
        return True, None

    async def send_json_to(self, data) -> None:
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout: float = 5):
        reply = await self.receive_output(timeout)
        assert reply["type"] == "websocket.send", reply
        return json.loads(reply["text"])

    async def disconnect(self) -> None:
        """Hang up and let the consumer leave its group and stop, as a server would."""
        if not self.future.done():
            await self.send_input({"type": "websocket.disconnect", "code": 1000})
            await self.wait(1)


_open: list[Socket] = []


def _communicator(order_id: int, *, query: str = "", token: str | None = None) -> Socket:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    ws = Socket(f"/ws/app/orders/{order_id}/", query, headers)
    _open.append(ws)
    return ws


def _run(coro):
    """Run a test's client, then hang up every socket it opened before the loop closes."""

    async def main():
        try:
            return await coro
        finally:
            while _open:
                await _open.pop().disconnect()

    return asyncio.run(main())


def test_token_in_the_header_connects(order_world):
    async def go():
        ws = _communicator(order_world["order"], token=order_world["access"])
        connected, _ = await ws.connect()
        assert connected
        message = await ws.receive_json_from(timeout=5)
        assert message["type"] == "order" and message["order"]["id"] == order_world["order"]
        await ws.disconnect()

    _run(go())


def test_token_in_the_first_message_connects(order_world):
    async def go():
        ws = _communicator(order_world["order"])
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json_to({"type": "auth", "token": order_world["access"]})
        message = await ws.receive_json_from(timeout=5)
        assert message["order"]["id"] == order_world["order"]
        await ws.disconnect()

    _run(go())


def test_token_in_the_url_is_refused(order_world):
    async def go():
        ws = _communicator(order_world["order"], query=f"token={order_world['access']}")
        connected, code = await ws.connect()
        assert not connected and code == 4401

    _run(go())


@pytest.mark.parametrize(
    "first",
    [
        {"text": '{"type": "auth", "token": "not-a-token"}'},
        {"text": "not json"},
        {"text": "[1]"},
        {"text": "[" * 5000 + "]" * 5000},
        {"bytes": b"\x00\x01"},
    ],
)
def test_a_bad_first_message_closes(order_world, first):
    async def go():
        ws = _communicator(order_world["order"])
        await ws.connect()
        await ws.send_input({"type": "websocket.receive", **first})
        out = await ws.receive_output(timeout=5)
        while out["type"] != "websocket.close":  # nothing but the close may follow
            assert out["type"] != "websocket.send" or "order" not in out.get("text", ""), out
            out = await ws.receive_output(timeout=5)
        assert out.get("code") == 4401, out

    _run(go())


def test_another_members_order_is_refused(order_world):
    async def go():
        ws = _communicator(order_world["order"], token=order_world["stranger"])
        connected, code = await ws.connect()
        assert not connected and code == 4403

    _run(go())


def _disable_member(world):
    def disable():
        from accounts.models import Member

        with schema_context(world["schema"]):
            Member.objects.filter(pk=world["member"]).update(status="disabled")

    committed(disable)


def test_a_disabled_member_cannot_connect(order_world):
    _disable_member(order_world)

    async def go():
        ws = _communicator(order_world["order"], token=order_world["access"])
        connected, code = await ws.connect()
        assert not connected and code == 4401

    _run(go())


def test_a_member_disabled_while_connected_stops_receiving(order_world, settings):
    settings.WS_MEMBER_RECHECK_S = 0

    async def go():
        ws = _communicator(order_world["order"], token=order_world["access"])
        assert (await ws.connect())[0]
        await ws.receive_json_from(timeout=5)
        layer = get_channel_layer()
        group = order_group(order_world["schema"], order_world["order"])
        await layer.group_send(group, {"type": "order.update", "order": {"id": 1, "state": "charging"}})
        assert (await ws.receive_json_from(timeout=5))["order"]["state"] == "charging"
        await asyncio.to_thread(_disable_member, order_world)
        await layer.group_send(group, {"type": "order.update", "order": {"id": 1, "state": "charging"}})
        assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}

    _run(go())
