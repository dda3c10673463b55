"""The customer-service chat between real WebSocket clients: the ASGI app under uvicorn,
the Redis channel layer, the ``websockets`` client for the driver (bearer token) and for
staff (admin session cookie, the operator's host). Rows are committed (the server's
threads read them) and removed afterwards."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
import websockets
from asgiref.sync import async_to_sync
from django.db import connection
from django_tenants.utils import schema_context

from evplatform.tests.helpers import Uvicorn
from protocols.tests.helpers import committed

pytestmark = pytest.mark.django_db
_n = itertools.count(1)


@pytest.fixture(scope="module")
def server():
    web = Uvicorn()
    yield web
    web.stop()


@pytest.fixture
def world(tenant, other_tenant):
    """A driver (token), two staff of tenant-a with admin sessions, one of tenant-b."""
    from django.db import connections

    db_settings = connections.settings["default"]
    saved_max_age, db_settings["CONN_MAX_AGE"] = db_settings["CONN_MAX_AGE"], 0
    n = next(_n)

    def make():
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django.test import Client

        from accounts.models import Member
        from accounts.services import tokens_for

        def session(user) -> str:
            client = Client()
            client.force_login(user)
            return client.cookies[settings.SESSION_COOKIE_NAME].value

        users = get_user_model().objects
        with schema_context(tenant.schema_name):
            member = Member.objects.create(openid=f"chat-ws-{n}", nickname="车主小李")
            mei = users.create_superuser(f"chat-mei-{n}", password="x-pass-123", first_name="小美")
            wang = users.create_superuser(f"chat-wang-{n}", password="x-pass-123", first_name="小王")
            viewer = users.create_user(f"chat-viewer-{n}", password="x-pass-123", is_staff=True)
            viewer.user_permissions.add(Permission.objects.get(codename="view_conversation"))
            world = {"member": member.pk, "access": tokens_for(member).access,
                     "mei": session(mei), "wang": session(wang), "viewer": session(viewer),
                     "ids": {"mei": mei.pk, "wang": wang.pk}}
        with schema_context(other_tenant.schema_name):
            other = users.create_superuser(f"chat-b-{n}", password="x-pass-123")
            world["other"] = session(other)
        return world

    data = committed(make)
    yield data

    def clean():
        from django.contrib.auth import get_user_model

        from accounts.models import AuditEntry, Member

        for schema in (tenant.schema_name, other_tenant.schema_name):
            with schema_context(schema):
                AuditEntry.objects.filter(actor_name__startswith="chat-").delete()
                Member.objects.filter(openid__startswith="chat-ws-").delete()
                get_user_model().objects.filter(username__startswith="chat-").delete()

    committed(clean)
    db_settings["CONN_MAX_AGE"] = saved_max_age
    connection.set_tenant(tenant)


def _driver(port: int, token: str | None = None, query: str = ""):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return websockets.connect(f"ws://127.0.0.1:{port}/ws/app/chat/{query}", open_timeout=10,
                              additional_headers=headers, proxy=None)


def _staff(port: int, session: str | None, host: str = "tenant-a.testserver"):
    # The operator's host in the URL (Host header), the loopback address to connect to.
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    return websockets.connect(f"ws://{host}:{port}/ws/admin/chat/", open_timeout=10,
                              additional_headers=headers, host="127.0.0.1", port=port, proxy=None)


async def _next(socket, kind: str, timeout: float = 10) -> dict:
    """The next frame of ``kind`` (others in between are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), max(0.1, deadline - time.monotonic())))
        if frame["type"] == kind:
            return frame


async def _closed_with(connect) -> int:
    try:
        async with connect as socket:
            await asyncio.wait_for(socket.recv(), 10)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code
    raise AssertionError("not closed")


def test_a_chat_round_trip_between_a_driver_and_staff(server, world):
    timings = async_to_sync(_round_trip)(server.port, world)
    print(f"\nchat round trip: driver→staff {timings[0] * 1000:.0f} ms, staff→driver {timings[1] * 1000:.0f} ms")

    from accounts.models import AuditEntry
    from operations.models import ChatMessage, Conversation

    conversation = Conversation.objects.get(member_id=world["member"])
    assert conversation.assigned_to_id == world["ids"]["mei"]
    assert list(ChatMessage.objects.filter(conversation=conversation).values_list("from_member", "text")) == [
        (True, "你好，扫码后一直启动失败"), (False, "您好，请问是哪个站？"), (True, "珠江新城站 2 号枪")]
    entry = AuditEntry.objects.get(action="chat.message", target_id=str(conversation.pk))
    assert entry.detail == "您好，请问是哪个站？"


async def _round_trip(port: int, world: dict) -> tuple[float, float]:
    async with _driver(port, world["access"]) as driver, _staff(port, world["mei"]) as staff:
        hello = await _next(driver, "hello")
        assert hello == {"type": "hello", "conversation": None, "messages": [], "unread": 0}
        console = await _next(staff, "hello")
        assert console["me"]["name"] == "小美" and console["may_write"] is True
        assert all(c["member"]["id"] != world["member"] for c in console["conversations"])

        started = time.monotonic()
        await driver.send(json.dumps({"type": "message", "text": "你好，扫码后一直启动失败", "client_id": "d-1"}))
        arrived = await _next(staff, "message")
        to_staff = time.monotonic() - started
        assert arrived["message"]["text"] == "你好，扫码后一直启动失败"
        assert arrived["message"]["from_staff"] is False
        assert arrived["conversation"]["unread"] == 1 and arrived["conversation"]["member"]["nickname"] == "车主小李"
        conversation = arrived["conversation"]["id"]
        echo = await _next(driver, "message")  # the driver's other devices see it too
        assert echo["message"]["client_id"] == "d-1"

        await staff.send(json.dumps({"type": "read", "conversation": conversation, "upto": arrived["message"]["id"]}))
        read = await _next(driver, "read")
        assert (read["side"], read["upto"]) == ("staff", arrived["message"]["id"])

        await staff.send(json.dumps({"type": "typing", "conversation": conversation}))
        typing = await _next(driver, "typing")
        assert (typing["side"], typing["name"]) == ("staff", "小美")

        started = time.monotonic()
        await staff.send(json.dumps({"type": "message", "conversation": conversation,
                                     "text": "您好，请问是哪个站？", "client_id": "s-1"}))
        reply = await _next(driver, "message")
        to_driver = time.monotonic() - started
        assert (reply["message"]["from_staff"], reply["message"]["staff_name"], reply["message"]["text"]) == (
            True, "小美", "您好，请问是哪个站？")
        assert "assigned_to_id" not in reply["conversation"] and "member" not in reply["conversation"]
        assert reply["conversation"]["assigned_to"] == "小美"

        await driver.send(json.dumps({"type": "typing"}))
        assert (await _next(staff, "typing"))["side"] == "member"
        await driver.send(json.dumps({"type": "message", "text": "珠江新城站 2 号枪", "client_id": "d-2"}))
        assert (await _next(staff, "message"))["message"]["text"] == "珠江新城站 2 号枪"
        # A refused message is answered on the socket, which stays open.
        await driver.send(json.dumps({"type": "message", "text": "   ", "client_id": "d-3"}))
        error = await _next(driver, "error")
        assert (error["code"], error["client_id"]) == ("text_empty", "d-3")
        assert error["detail"] == "请输入消息内容。"
        await driver.send("not json")
        await driver.send(json.dumps({"type": "history"}))
        history = await _next(driver, "history")
        assert [m["text"] for m in history["messages"]][-1] == "珠江新城站 2 号枪"
    # Reconnecting: the history and the unread count come back from PostgreSQL.
    async with _driver(port, world["access"]) as driver:
        hello = await _next(driver, "hello")
        assert [m["client_id"] for m in hello["messages"]] == ["d-1", "s-1", "d-2"]
        assert hello["unread"] == 0  # the driver's own later message marks the reply read
    return to_staff, to_driver


def test_several_staff_typing_and_answering_at_once(server, world):
    async_to_sync(_together)(server.port, world)

    from accounts.models import AuditEntry
    from operations.models import ChatMessage, Conversation

    conversation = Conversation.objects.get(member_id=world["member"])
    assert conversation.assigned_to_id in (world["ids"]["mei"], world["ids"]["wang"])
    assert ChatMessage.objects.filter(conversation=conversation, from_member=False).count() == 2
    assert AuditEntry.objects.filter(action="chat.message", target_id=str(conversation.pk)).count() == 2
    assert AuditEntry.objects.filter(action="chat.assign", target_id=str(conversation.pk)).count() == 1


async def _together(port: int, world: dict) -> None:
    async with (_driver(port) as driver, _staff(port, world["mei"]) as mei,
                _staff(port, world["wang"]) as wang, _staff(port, world["viewer"]) as viewer):
        await driver.send(json.dumps({"type": "auth", "token": world["access"]}))  # in the first message
        await _next(driver, "hello")
        for socket in (mei, wang, viewer):
            await _next(socket, "hello")
        await driver.send(json.dumps({"type": "message", "text": "充电没反应"}))
        conversation = (await _next(mei, "message"))["conversation"]["id"]
        await _next(wang, "message")
        assert (await _next(viewer, "message"))["message"]["text"] == "充电没反应"

        await asyncio.gather(mei.send(json.dumps({"type": "typing", "conversation": conversation})),
                             wang.send(json.dumps({"type": "typing", "conversation": conversation})))
        names = {(await _next(driver, "typing"))["name"] for _ in range(2)}
        assert names == {"小美", "小王"}
        assert (await _next(mei, "typing"))["name"] == "小王"  # each sees the other, not themself

        await asyncio.gather(
            mei.send(json.dumps({"type": "message", "conversation": conversation, "text": "我来处理"})),
            wang.send(json.dumps({"type": "message", "conversation": conversation, "text": "我看一下"})))
        got = [(await _next(driver, "message"))["message"] for _ in range(2)]
        assert {m["text"] for m in got} == {"我来处理", "我看一下"}
        assert got[0]["id"] < got[1]["id"]  # in the order they were stored

        # A staff member who may only view cannot answer.
        await viewer.send(json.dumps({"type": "message", "conversation": conversation, "text": "x"}))
        assert (await _next(viewer, "error"))["code"] == "permission_denied"
        await mei.send(json.dumps({"type": "assign", "conversation": conversation,
                                   "staff_id": world["ids"]["wang"]}))
        update = await _next(wang, "conversation")
        assert update["conversation"]["assigned_to"] == "小王"
        assert (await _next(driver, "conversation"))["conversation"]["assigned_to"] == "小王"
        await wang.send(json.dumps({"type": "close", "conversation": conversation}))
        assert (await _next(driver, "conversation"))["conversation"]["status"] == "closed"
        await mei.send(json.dumps({"type": "message", "conversation": conversation, "text": "还在吗"}))
        assert (await _next(mei, "error"))["code"] == "conversation_closed"


def test_sockets_refuse_strangers_and_other_operators(server, world):
    async def go():
        port = server.port
        assert await _closed_with(_driver(port, query=f"?token={world['access']}")) == 4401
        assert await _closed_with(_driver(port, "not-a-token")) == 4401
        async with _driver(port) as driver:
            await driver.send(json.dumps({"type": "auth", "token": "nope"}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(driver.recv(), 10)
            assert closed.value.rcvd.code == 4401
        assert await _closed_with(_staff(port, None)) == 4403
        assert await _closed_with(_staff(port, "forged-session-key")) == 4403
        # tenant-a's session on tenant-b's host, and tenant-b's staff on tenant-a's host.
        assert await _closed_with(_staff(port, world["mei"], host="tenant-b.testserver")) == 4403
        assert await _closed_with(_staff(port, world["other"])) == 4403
        assert await _closed_with(_staff(port, world["mei"], host="nobody.testserver")) == 4404
        # tenant-b's console hears nothing of tenant-a's driver.
        async with _staff(port, world["other"], host="tenant-b.testserver") as other, \
                _driver(port, world["access"]) as driver:
            assert (await _next(other, "hello"))["conversations"] == []
            await _next(driver, "hello")
            await driver.send(json.dumps({"type": "message", "text": "只给 A 运营商"}))
            await _next(driver, "message")
            with pytest.raises(TimeoutError):
                await _next(other, "message", timeout=2)

    async_to_sync(go)()
