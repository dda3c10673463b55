"""Customer-service chat through its services, the driver's REST side and the admin (the
live sockets are in test_chat_sockets.py): conversations, unread counts and read markers,
assignment, closing, audit, offline notification, refusals."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEntry, Member
from accounts.roles import STATION_OWNER, role_group
from operations import chat
from operations.models import ChatMessage, Conversation, FeedbackSettings

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def kefu(django_user_model, tenant):
    return django_user_model.objects.create_superuser("kefu-chat", password="x-pass-123",
                                                      first_name="小美")


@pytest.fixture
def staff_client(kefu):
    client = Client()
    client.force_login(kefu)
    return client


def test_a_driver_message_opens_a_conversation_and_counts_unread_for_staff(member, kefu):
    first = chat.chat_member_send(member=member, text="  充电桩扫不了码  ", client_id="c-1")
    conversation = first.conversation
    assert (conversation.status, conversation.assigned_to, first.text) == ("open", None, "充电桩扫不了码")
    second = chat.chat_member_send(member=member, text="在珠江新城站", client_id="c-2")
    assert second.conversation_id == conversation.pk
    assert chat.unread_count(conversation, for_staff=True) == 2
    # The same client id again (a resend after a dropped connection) stores nothing.
    again = chat.chat_member_send(member=member, text="在珠江新城站", client_id="c-2")
    assert again.pk == second.pk and ChatMessage.objects.count() == 2

    chat.chat_read(conversation_id=conversation.pk, upto=first.pk)
    conversation.refresh_from_db()
    assert chat.unread_count(conversation, for_staff=True) == 1
    # Never back, never past the last message.
    chat.chat_read(conversation_id=conversation.pk, upto=1)
    chat.chat_read(conversation_id=conversation.pk, upto=10**12)
    conversation.refresh_from_db()
    assert conversation.staff_read_upto == second.pk
    assert chat.unread_count(conversation, for_staff=True) == 0


def test_the_first_staff_reply_assigns_and_every_staff_action_is_audited(member, kefu, django_user_model):
    from django.contrib.auth.models import Permission

    other = django_user_model.objects.create_user("kefu-2", password="x-pass-123", is_staff=True)
    other.user_permissions.add(Permission.objects.get(codename="change_conversation"))
    conversation = chat.chat_member_send(member=member, text="退款多久到账？").conversation
    reply = chat.chat_staff_send(conversation_id=conversation.pk, staff=kefu, text="一般 1-3 个工作日")
    conversation.refresh_from_db()
    assert conversation.assigned_to == kefu
    assert chat.unread_count(conversation, for_staff=False) == 1
    assert chat.message_payload(reply)["staff_name"] == "小美"
    # A second staff member answering does not take it over.
    chat.chat_staff_send(conversation_id=conversation.pk, staff=other, text="补充：原路退回")
    conversation.refresh_from_db()
    assert conversation.assigned_to == kefu
    assert chat.unread_count(conversation, for_staff=False) == 2

    chat.chat_assign(conversation_id=conversation.pk, staff_id=other.pk, by=kefu)
    chat.chat_close(conversation_id=conversation.pk, by=other)
    chat.chat_close(conversation_id=conversation.pk, by=other)  # again: nothing more
    entries = list(AuditEntry.objects.order_by("pk").values_list("action", "actor_name", "detail", "changes"))
    assert entries == [
        ("chat.message", "kefu-chat", "一般 1-3 个工作日", {}),
        ("chat.message", "kefu-2", "补充：原路退回", {}),
        ("chat.assign", "kefu-chat", "", {"assigned_to": ["小美", "kefu-2"]}),
        ("chat.close", "kefu-2", "", {"status": ["open", "closed"]}),
    ]
    with pytest.raises(chat.ChatError) as refused:
        chat.chat_staff_send(conversation_id=conversation.pk, staff=kefu, text="还在吗")
    assert (refused.value.code, refused.value.status) == ("conversation_closed", 409)
    # The driver's next message opens a new conversation.
    later = chat.chat_member_send(member=member, text="又有问题了")
    assert later.conversation_id != conversation.pk
    assert Conversation.objects.filter(member=member, status="open").count() == 1


@pytest.mark.parametrize(("text", "code"), [("", "text_empty"), ("   ", "text_empty"),
                                            ("字" * 1001, "text_too_long")])
def test_bad_text_is_refused_and_stores_nothing(member, text, code):
    with pytest.raises(chat.ChatError) as refused:
        chat.chat_member_send(member=member, text=text)
    assert refused.value.code == code
    assert not Conversation.objects.exists()


def test_refusals_name_what_is_missing(member, kefu, django_user_model):
    driverish = django_user_model.objects.create_user("not-staff", password="x-pass-123")
    # Staff, but not allowed to answer chats (a station owner, say): not assignable either.
    owner = django_user_model.objects.create_user("owner-no-chat", password="x-pass-123", is_staff=True)
    conversation = chat.chat_member_send(member=member, text="你好").conversation
    for call, code in [
        (lambda: chat.chat_staff_send(conversation_id=999999, staff=kefu, text="x"), "conversation_not_found"),
        (lambda: chat.chat_assign(conversation_id=conversation.pk, staff_id=driverish.pk, by=kefu), "staff_not_found"),
        (lambda: chat.chat_assign(conversation_id=conversation.pk, staff_id=owner.pk, by=kefu), "staff_not_found"),
        (lambda: chat.chat_close(conversation_id=999999, by=kefu), "conversation_not_found"),
    ]:
        with pytest.raises(chat.ChatError) as refused:
            call()
        assert refused.value.code == code
    stranger = Member.objects.create(openid="someone-else")
    with pytest.raises(chat.ChatError):
        chat.chat_read(conversation_id=conversation.pk, upto=1, member=stranger)
    assert not AuditEntry.objects.exists()


def test_an_unread_staff_message_is_told_to_the_driver_once(member, kefu, fake_wechat):
    conversation = chat.chat_member_send(member=member, text="在吗").conversation
    chat.chat_staff_send(conversation_id=conversation.pk, staff=kefu, text="您好，请讲")
    assert chat.chat_offline_notify(conversation_id=conversation.pk) == "no_template"
    FeedbackSettings.objects.update(chat_template_id="TPL-CHAT")
    assert chat.chat_offline_notify(conversation_id=conversation.pk) == "sent"
    # The second staff message of the same unread stretch: not told again.
    chat.chat_staff_send(conversation_id=conversation.pk, staff=kefu, text="请问哪个站？")
    assert chat.chat_offline_notify(conversation_id=conversation.pk) == "already"
    sent = [m for m in fake_wechat.messages("wxtenanta0000001") if m["template_id"] == "TPL-CHAT"]
    assert len(sent) == 1 and sent[0]["touser"] == member.openid
    assert (sent[0]["page"], sent[0]["data"]["thing2"]["value"]) == ("pages/chat/index", "您好，请讲")
    # Read: nothing to tell; a new stretch after reading is told.
    last = conversation.messages.order_by("-pk").first()
    chat.chat_read(conversation_id=conversation.pk, upto=last.pk, member=member)
    assert chat.chat_offline_notify(conversation_id=conversation.pk) == "read"
    chat.chat_staff_send(conversation_id=conversation.pk, staff=kefu, text="还需要帮助吗？")
    assert chat.chat_offline_notify(conversation_id=conversation.pk) == "sent"
    assert chat.chat_offline_notify(conversation_id=999999) == "missing"


def test_the_driver_api_sends_reads_and_pages_back(member_api, kefu):
    r = member_api.get("/api/app/v1/chat")
    assert r.status_code == 200 and r.json() == {"conversation": None, "messages": [], "unread": 0}
    r = member_api.post("/api/app/v1/chat/read", {"upto": 1}, format="json")
    assert (r.status_code, r.json()["code"]) == (404, "conversation_not_found")

    r = member_api.post("/api/app/v1/chat/messages", {"text": "发票怎么开", "client_id": "m1"}, format="json")
    assert r.status_code == 201, r.json()
    mine = r.json()
    assert (mine["from_staff"], mine["text"], mine["client_id"]) == (False, "发票怎么开", "m1")
    conversation = Conversation.objects.get()
    replies = [chat.chat_staff_send(conversation_id=conversation.pk, staff=kefu, text=f"第{n}条")
               for n in range(1, 56)]
    body = member_api.get("/api/app/v1/chat").json()
    assert body["unread"] == 55 and body["conversation"]["assigned_to"] == "小美"
    assert len(body["messages"]) == 50 and body["messages"][-1]["text"] == "第55条"
    older = member_api.get("/api/app/v1/chat", {"before": body["messages"][0]["id"]}).json()["messages"]
    assert [m["text"] for m in older] == ["发票怎么开", "第1条", "第2条", "第3条", "第4条", "第5条"]

    r = member_api.post("/api/app/v1/chat/read", {"upto": replies[-1].pk}, format="json")
    assert r.status_code == 200 and r.json()["unread"] == 0
    assert member_api.get("/api/app/v1/chat").json()["unread"] == 0

    for bad in ({"text": ""}, {"text": "字" * 1001}, {}):
        r = member_api.post("/api/app/v1/chat/messages", bad, format="json")
        assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    for bad in ({"upto": -1}, {"upto": "x"}):
        assert member_api.post("/api/app/v1/chat/read", bad, format="json").status_code == 400
    assert member_api.get("/api/app/v1/chat", {"before": "abc"}).status_code == 400
    assert ChatMessage.objects.count() == 56


def test_the_driver_api_needs_a_sign_in(api):
    assert api.get("/api/app/v1/chat").status_code == 401
    assert api.post("/api/app/v1/chat/messages", {"text": "x"}, format="json").status_code == 401


def test_another_operators_driver_sees_none_of_it(member_api, other_tenant):
    from django.db import connection
    from rest_framework.test import APIClient

    from accounts.services import tokens_for

    member_api.post("/api/app/v1/chat/messages", {"text": "A 运营商的会话"}, format="json")
    connection.set_tenant(other_tenant)
    someone = Member.objects.create(openid="openid-tenant-b")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(someone).access}")
    assert client.get("/api/app/v1/chat").json()["conversation"] is None
    assert not Conversation.objects.exists()


def test_the_admin_lists_conversations_and_opens_the_live_page(staff_client, member, kefu):
    conversation = chat.chat_member_send(member=member, text="枪头拔不下来").conversation
    page = staff_client.get("/admin/operations/conversation/", **HOST).content.decode()
    assert "测试车主" in page and "在线客服工作台" in page
    console = staff_client.get("/admin/operations/conversation/console/", **HOST)
    assert console.status_code == 200
    text = console.content.decode()
    assert "/ws/admin/chat/" in text and "结束会话" in text
    r = staff_client.post("/admin/operations/conversation/", {
        "action": "assign_to_me", "_selected_action": [conversation.pk]}, **HOST)
    assert r.status_code == 302
    conversation.refresh_from_db()
    assert conversation.assigned_to == kefu
    detail = staff_client.get(f"/admin/operations/conversation/{conversation.pk}/change/", **HOST)
    assert "枪头拔不下来" in detail.content.decode()


def test_station_owners_have_no_chat(django_user_model, tenant):
    from accounts.roles import roles_sync

    roles_sync()
    owner = django_user_model.objects.create_user("owner-chat", password="x-pass-123", is_staff=True)
    owner.groups.add(role_group(STATION_OWNER))
    client = Client()
    client.force_login(owner)
    assert client.get("/admin/operations/conversation/console/", **HOST).status_code == 403
    assert client.get("/admin/operations/conversation/", **HOST).status_code == 403
