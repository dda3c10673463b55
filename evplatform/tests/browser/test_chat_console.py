"""The live customer-service chat page in Chromium: a driver's complaint (a real WebSocket
client with the driver's token) appears on the operator admin's page with its unread
count, the reply typed there reaches the driver's socket, typing shows both ways, the
conversation is assigned and ended, and the audit log lists the reply — styled, Chinese,
fitting 1440 px."""

from __future__ import annotations

import json
import time

from django_tenants.utils import tenant_context
from websockets.sync.client import connect

from evplatform.tests.estate import ADMIN
from protocols.tests.helpers import committed


def _driver_token(site) -> tuple[int, str]:
    def make():
        from accounts.models import Member
        from accounts.services import tokens_for

        with tenant_context(site.operator):
            member = Member.objects.create(openid="chat-browser-driver", nickname="车主老周")
            return member.pk, tokens_for(member).access
    return committed(make)


def _next(socket, kind: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == kind:
            return frame


def test_a_complaint_answered_on_the_chat_page_reaches_the_driver(open_page, site):
    member_id, token = _driver_token(site)
    page = open_page()
    page.login(*ADMIN)
    page.goto("/admin/operations/conversation/")
    page.page.click("#chat-console-link")
    page.page.wait_for_selector("#chat-status:has-text('已连接')")
    page.assert_styled()
    page.assert_chinese()

    with connect(f"ws://127.0.0.1:{site.web.port}/ws/app/chat/",
                 additional_headers={"Authorization": f"Bearer {token}"}, proxy=None) as driver:
        assert _next(driver, "hello")["conversation"] is None
        driver.send(json.dumps({"type": "message", "text": "昨天那单多扣了 8 元，请核实", "client_id": "b-1"}))
        # Live on the page: the conversation with its unread count, no reload.
        page.page.wait_for_selector("#chat-list .conv:has-text('车主老周') .badge:has-text('1')")
        page.screenshot("new-complaint")
        page.page.click("#chat-list .conv:has-text('车主老周')")
        page.page.wait_for_selector("#chat-thread .msg.driver:has-text('昨天那单多扣了 8 元')")
        assert _next(driver, "read")["side"] == "staff"  # opening it read it
        page.page.wait_for_selector("#chat-list .conv:has-text('车主老周') .badge", state="detached")

        page.page.fill("#chat-text", "您好，已为您查询，8 元将原路退回")
        assert _next(driver, "typing")["side"] == "staff"
        driver.send(json.dumps({"type": "typing"}))
        page.page.wait_for_selector("#chat-typing:has-text('车主')")
        page.page.click("#chat-send")
        reply = _next(driver, "message")["message"]
        assert (reply["from_staff"], reply["text"]) == (True, "您好，已为您查询，8 元将原路退回")
        page.page.wait_for_selector("#chat-thread .msg.staff:has-text('8 元将原路退回')")

        driver.send(json.dumps({"type": "message", "text": "好的，谢谢", "client_id": "b-2"}))
        page.page.wait_for_selector("#chat-thread .msg.driver:has-text('好的，谢谢')")
        driver.send(json.dumps({"type": "read", "upto": reply["id"]}))
        page.page.wait_for_selector("#chat-thread .msg.staff:has-text('已读')")
        page.page.wait_for_selector("#chat-list .conv:has-text('分配给')")
        assert page.page.eval_on_selector("#chat-assign", "s => s.selectedOptions[0].text") == ADMIN[0]
        page.assert_chinese()
        page.assert_fits()
        page.screenshot("answered")

        page.page.click("#chat-end")
        assert _next(driver, "conversation")["conversation"]["status"] == "closed"
        page.page.wait_for_selector("#chat-head:has-text('该会话已结束')")
        assert page.page.is_disabled("#chat-send")

    page.goto("/admin/operations/staffaction/")
    text = page.text("#result_list")
    assert "发送客服消息" in text and "结束客服会话" in text
    page.screenshot("audit")

    def clean():
        from accounts.models import Member

        with tenant_context(site.operator):
            Member.objects.filter(pk=member_id).delete()
    committed(clean)
