"""The customer-service chat's WebSockets (services and events in ``operations.chat``).

``/ws/app/chat/`` — the driver, on the shared API host. Sign-in as on the order socket:
the handshake's ``Authorization: Bearer <access>`` or a first message
``{"type": "auth", "token": "<access>"}`` within AUTH_TIMEOUT_S seconds; a ``?token=`` in
the URL is refused. Close codes: 4401 (no, bad or ended sign-in).

``/ws/admin/chat/`` — the staff console, on the operator's own host, signed in to the
admin (session cookie); the Host header names the operator, so one operator's staff never
hear another's drivers. Watching needs ``operations.view_conversation``; writing
(message, assign, close, read) ``operations.change_conversation``. Close codes: 4403 (not
signed in or may not view), 4404 (unknown host).

Client → server (JSON):
  driver: {"type": "message", "text", "client_id"?} · {"type": "typing"} ·
          {"type": "read", "upto": <message id>} · {"type": "history", "before": <id>}
  staff:  the same with "conversation": <id>, plus {"type": "assign", "conversation",
          "staff_id": <id or null>} · {"type": "close", "conversation"} ·
          {"type": "open", "conversation"} (its history).
Server → client:
  {"type": "hello", ...} on sign-in — driver: {conversation or null, messages, unread};
  staff: {me: {id, name}, conversations (open ones, newest first), staff: [{id, name}]} ·
  {"type": "message", message, conversation?} · {"type": "read", conversation, side, upto} ·
  {"type": "conversation", conversation} · {"type": "typing", conversation, side, name} ·
  {"type": "history", conversation, messages} ·
  {"type": "error", code, detail, client_id?} (a refused action; the socket stays open).
A client sending more than RATE_MESSAGES messages in RATE_WINDOW_S seconds gets
``error`` ``too_fast`` for the excess.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
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

from . import chat

RATE_MESSAGES, RATE_WINDOW_S = 20, 10.0


def _as_int(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number < 2**62 else None


class _ChatSocket(TolerantJsonConsumer):
    """What both sides share: tolerant JSON, a rate limit, refusals as ``error`` frames."""

    schema: str | None = None

    def _too_fast(self) -> bool:
        now = time.monotonic()
        sent = [t for t in getattr(self, "sent_at", []) if now - t < RATE_WINDOW_S]
        self.sent_at = sent + [now]
        return len(sent) >= RATE_MESSAGES

    async def _error(self, code: str, detail: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail, **extra})

    def _lang(self):
        return translation.override(settings.LANGUAGE_CODE)

    # group events → frames
    async def chat_message(self, event):
        await self._deliver({"type": "message", "message": event["message"],
                             **self._conversation_extra(event.get("conversation"))})

    async def chat_read(self, event):
        await self._deliver({"type": "read", "conversation": event["conversation"],
                             "side": event["side"], "upto": event["upto"]})

    async def chat_conversation(self, event):
        await self._deliver({"type": "conversation",
                             **self._conversation_extra(event["conversation"])})

    async def chat_typing(self, event):
        if event.get("sender") == self.channel_name:
            return  # not one's own typing
        await self._deliver({"type": "typing", "conversation": event["conversation"],
                             "side": event["side"], "name": event["name"]})

    def _conversation_extra(self, conversation: dict | None) -> dict:
        return {"conversation": conversation} if conversation is not None else {}

    async def _deliver(self, frame: dict) -> None:
        await self.send_json(frame)


class DriverChatConsumer(_ChatSocket):
    claims: TokenClaims | None = None
    group: str | None = None

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        # Refusals accept first, then close: a client sees the close code (a handshake
        # refused outright is only an HTTP 403 to it).
        if "token" in query:
            await self.accept()
            await self.close(code=UNAUTHORIZED)
            return
        headers = dict(self.scope.get("headers") or [])
        token = bearer_token(headers.get(b"authorization", b"").decode(errors="replace"))
        if token is not None:
            await self.accept()
            if not await self._sign_in(token):
                await self.close(code=UNAUTHORIZED)
                return
            await self._hello()
            return
        await self.accept()  # the token comes in the first message
        self.auth_timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_S, lambda: asyncio.ensure_future(self._auth_timeout()))

    async def _auth_timeout(self):
        if self.claims is None:
            await self.close(code=UNAUTHORIZED)

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        timer = getattr(self, "auth_timer", None)
        if timer is not None:
            timer.cancel()

    async def _sign_in(self, token: str) -> bool:
        try:
            claims = token_decode(token)
        except TokenError:
            return False
        if await database_sync_to_async(member_sign_in_refusal)(claims) is not None:
            return False
        self.claims, self.schema = claims, claims.schema_name
        self.checked_at = time.monotonic()
        return True

    async def _still_signed_in(self) -> bool:
        """Re-check the sign-in at most every WS_MEMBER_RECHECK_S seconds; closes if ended."""
        if time.monotonic() - self.checked_at < settings.WS_MEMBER_RECHECK_S:
            return True
        if await database_sync_to_async(member_sign_in_refusal)(self.claims) is not None:
            await self.close(code=UNAUTHORIZED)
            return False
        self.checked_at = time.monotonic()
        return True

    async def _hello(self) -> None:
        self.group = chat.member_group(self.schema, self.claims.member_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "hello", **await self._state()})

    @database_sync_to_async
    def _state(self) -> dict:
        from accounts.models import Member

        with schema_context(self.schema), self._lang():
            member = Member.objects.get(pk=self.claims.member_id)
            conversation = chat.conversation_of_member(member)
            if conversation is None:
                return {"conversation": None, "messages": [], "unread": 0}
            return {"conversation": chat.conversation_payload(conversation),
                    "messages": [chat.message_payload(m) for m in chat.messages_of(conversation)],
                    "unread": chat.member_unread_total(member)}

    async def receive_json(self, content, **kwargs):
        if self.claims is None:
            token = content.get("token") if isinstance(content, dict) else None
            if not (isinstance(content, dict) and content.get("type") == "auth" and isinstance(token, str)):
                await self.close(code=UNAUTHORIZED)
                return
            self.auth_timer.cancel()
            if not await self._sign_in(token):
                await self.close(code=UNAUTHORIZED)
                return
            await self._hello()
            return
        if not isinstance(content, dict) or not await self._still_signed_in():
            return
        kind = content.get("type")
        if kind == "message":
            if self._too_fast():
                await self._error("too_fast", _("Too many messages; wait a moment."),
                                  client_id=str(content.get("client_id") or ""))
                return
            await self._run(self._send, content)
        elif kind == "typing":
            conversation = await self._open_conversation()
            if conversation is not None:
                await self._typing(conversation)
        elif kind == "read":
            await self._run(self._read, content)
        elif kind == "history":
            await self._run(self._history, content)

    async def _run(self, action, content: dict) -> None:
        frame = await database_sync_to_async(self._in_schema)(action, content)
        if frame is not None:
            await self.send_json(frame)

    def _in_schema(self, action, content: dict) -> dict | None:
        from accounts.models import Member

        with schema_context(self.schema), self._lang():
            member = Member.objects.get(pk=self.claims.member_id)
            try:
                return action(member, content)
            except chat.ChatError as exc:
                return {"type": "error", "code": exc.code, "detail": str(exc.detail),
                        "client_id": str(content.get("client_id") or "")}

    @staticmethod
    def _send(member, content: dict) -> None:
        text = content.get("text")
        chat.chat_member_send(member=member, text=text if isinstance(text, str) else "",
                              client_id=str(content.get("client_id") or ""))
        return None  # the message comes back through the member's group

    @staticmethod
    def _read(member, content: dict) -> None:
        conversation = chat.conversation_of_member(member)
        upto = _as_int(content.get("upto"))
        if conversation is not None and upto is not None:
            chat.chat_read(conversation_id=conversation.pk, upto=upto, member=member)

    @staticmethod
    def _history(member, content: dict) -> dict:
        conversation = chat.conversation_of_member(member)
        if conversation is None:
            return {"type": "history", "conversation": None, "messages": []}
        before = _as_int(content.get("before"))
        return {"type": "history", "conversation": conversation.pk,
                "messages": [chat.message_payload(m) for m in chat.messages_of(conversation, before=before)]}

    @database_sync_to_async
    def _open_conversation(self):
        from .models import Conversation

        with schema_context(self.schema):
            return Conversation.objects.filter(member_id=self.claims.member_id,
                                               status=Conversation.Status.OPEN).first()

    async def _typing(self, conversation) -> None:
        event = {"type": "chat.typing", "conversation": conversation.pk, "side": "member",
                 "name": "", "sender": self.channel_name}
        await self.channel_layer.group_send(chat.staff_group(self.schema), event)

    async def _deliver(self, frame: dict) -> None:
        if not await self._still_signed_in():
            return
        conversation = frame.get("conversation")
        if isinstance(conversation, dict):
            # The driver sees neither staff ids nor the staff side's unread count.
            frame["conversation"] = {k: conversation[k] for k in
                                     ("id", "status", "assigned_to", "last_message_at",
                                      "member_read_upto", "staff_read_upto")}
        await self.send_json(frame)


def _host(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1").split(":")[0].lower()
    return ""


def _cookies(scope) -> dict:
    cookies = dict(scope.get("cookies") or {})
    if not cookies:
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    k, _sep, v = part.strip().partition("=")
                    cookies[k] = v
    return cookies


class StaffChatConsumer(_ChatSocket):
    user = None

    async def connect(self):
        found = await self._authorise()
        await self.accept()  # then close if refused, so the page sees why (4403 / 4404)
        if isinstance(found, int):
            await self.close(code=found)
            return
        self.group = chat.staff_group(self.schema)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "hello", **await self._state()})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    @database_sync_to_async
    def _authorise(self) -> int | None:
        from django.contrib.auth import (
            BACKEND_SESSION_KEY,
            HASH_SESSION_KEY,
            SESSION_KEY,
            load_backend,
        )
        from django.contrib.sessions.backends.db import SessionStore
        from django.utils.crypto import constant_time_compare

        from tenants.models import Domain

        domain = Domain.objects.select_related("tenant").filter(domain=_host(self.scope)).first()
        if domain is None or domain.tenant.schema_name == "public" or not domain.tenant.is_active:
            return NOT_FOUND
        key = _cookies(self.scope).get(settings.SESSION_COOKIE_NAME, "")
        with schema_context(domain.tenant.schema_name):
            session = SessionStore(session_key=key)
            user_id = session.get(SESSION_KEY)
            backend_path = session.get(BACKEND_SESSION_KEY)
            if not user_id or backend_path not in settings.AUTHENTICATION_BACKENDS:
                return FORBIDDEN
            user = load_backend(backend_path).get_user(user_id)
            if user is None or not (user.is_active and user.is_staff):
                return FORBIDDEN
            if not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
                return FORBIDDEN
            if not user.has_perm("operations.view_conversation"):
                return FORBIDDEN
            self.may_write = user.has_perm("operations.change_conversation")
        self.user, self.schema = user, domain.tenant.schema_name
        return None

    @database_sync_to_async
    def _state(self) -> dict:
        from .models import Conversation

        with schema_context(self.schema), self._lang():
            rows = (Conversation.objects.filter(status=Conversation.Status.OPEN)
                    .select_related("member", "assigned_to").order_by("-last_message_at", "-pk")[:200])
            staff = chat.staff_who_answer().order_by("username")
            return {"me": {"id": self.user.pk, "name": chat.staff_name(self.user)},
                    "may_write": self.may_write,
                    "conversations": [chat.conversation_payload(c, for_staff=True) for c in rows],
                    "staff": [{"id": u.pk, "name": chat.staff_name(u)} for u in staff]}

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        conversation_id = _as_int(content.get("conversation"))
        if kind not in ("message", "typing", "read", "assign", "close", "open"):
            return
        if conversation_id is None:
            await self._error("conversation_not_found", str(_("No such conversation.")))
            return
        if kind == "open":
            await self._run(self._open, conversation_id, content)
            return
        if not self.may_write:
            await self._error("permission_denied", str(_("You may not answer chats.")))
            return
        if kind == "typing":
            event = {"type": "chat.typing", "conversation": conversation_id, "side": "staff",
                     "name": chat.staff_name(self.user), "sender": self.channel_name}
            member_id = await self._member_of(conversation_id)
            if member_id is not None:
                await self.channel_layer.group_send(chat.member_group(self.schema, member_id), event)
                await self.channel_layer.group_send(self.group, event)
            return
        if kind == "message" and self._too_fast():
            await self._error("too_fast", str(_("Too many messages; wait a moment.")),
                              client_id=str(content.get("client_id") or ""))
            return
        await self._run(getattr(self, f"_{kind}"), conversation_id, content)

    @database_sync_to_async
    def _member_of(self, conversation_id: int) -> int | None:
        from .models import Conversation

        with schema_context(self.schema):
            return (Conversation.objects.filter(pk=conversation_id)
                    .values_list("member_id", flat=True).first())

    async def _run(self, action, conversation_id: int, content: dict) -> None:
        frame = await database_sync_to_async(self._in_schema)(action, conversation_id, content)
        if frame is not None:
            await self.send_json(frame)

    def _in_schema(self, action, conversation_id: int, content: dict) -> dict | None:
        with schema_context(self.schema), self._lang():
            try:
                return action(conversation_id, content)
            except chat.ChatError as exc:
                return {"type": "error", "code": exc.code, "detail": str(exc.detail),
                        "client_id": str(content.get("client_id") or "")}

    def _message(self, conversation_id: int, content: dict) -> None:
        text = content.get("text")
        chat.chat_staff_send(conversation_id=conversation_id, staff=self.user,
                             text=text if isinstance(text, str) else "",
                             client_id=str(content.get("client_id") or ""))

    def _read(self, conversation_id: int, content: dict) -> None:
        upto = _as_int(content.get("upto"))
        if upto is not None:
            chat.chat_read(conversation_id=conversation_id, upto=upto)

    def _assign(self, conversation_id: int, content: dict) -> None:
        staff_id = content.get("staff_id")
        staff_id = None if staff_id is None else _as_int(staff_id)
        if content.get("staff_id") is not None and staff_id is None:
            raise chat.ChatError("staff_not_found", _("No such staff member."), 404)
        chat.chat_assign(conversation_id=conversation_id, staff_id=staff_id, by=self.user)

    def _close(self, conversation_id: int, content: dict) -> None:
        chat.chat_close(conversation_id=conversation_id, by=self.user)

    def _open(self, conversation_id: int, content: dict) -> dict:
        from .models import Conversation

        conversation = (Conversation.objects.select_related("member", "assigned_to")
                        .filter(pk=conversation_id).first())
        if conversation is None:
            raise chat.ChatError("conversation_not_found", _("No such conversation."), 404)
        before = _as_int(content.get("before"))
        return {"type": "history", "conversation": chat.conversation_payload(conversation, for_staff=True),
                "messages": [chat.message_payload(m) for m in chat.messages_of(conversation, before=before)]}
