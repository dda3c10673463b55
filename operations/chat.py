"""Customer-service chat (在线客服): a driver and the operator's staff, live over WebSockets.

Writes are here, one transaction each; the sockets (``operations.consumers``) and the
driver's REST fallback (``operations.api``) only call these. After a write commits, the
change is pushed through the Channels layer to two groups of this operator:

* ``chat.<schema>.member.<member id>`` — the driver's own sockets (any number of devices);
* ``chat.<schema>.staff`` — every open staff console of the operator.

Events (``type`` is the consumer's handler): ``chat.message`` {message}, ``chat.read``
{conversation, side, upto}, ``chat.conversation`` {conversation} (assigned, closed) and
``chat.typing`` {conversation, side, name} (never stored). A push is best effort: what was
sent is in PostgreSQL first and each socket reloads the history when it (re)connects.

Several staff may answer at once: every message lands (ordered by id); the first staff
reply to an unassigned conversation takes it, decided under the conversation's row lock so
two simultaneous first replies assign it once. A staff message the driver has not read
``CHAT_OFFLINE_NOTIFY_S`` seconds later (no chat screen open) is told to the driver by a
WeChat subscribe message, once until they read it (``operations.chat_offline_notify``).

Refusal codes (ChatError, HTTP status): ``text_empty`` 400, ``text_too_long`` 400,
``conversation_not_found`` 404, ``conversation_closed`` 409, ``staff_not_found`` 404.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit, wechat
from evplatform.errors import DomainError
from evplatform.queue import task_queue_on_commit

from .models import ChatMessage, Conversation, FeedbackSettings

logger = logging.getLogger(__name__)

MAX_TEXT = 1000
HISTORY = 50


class ChatError(DomainError):
    pass


# ---- groups and payloads ----

def member_group(schema: str, member_id: int) -> str:
    return f"chat.{schema}.member.{member_id}"


def staff_group(schema: str) -> str:
    return f"chat.{schema}.staff"


def staff_name(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def message_payload(message: ChatMessage) -> dict:
    """{id, conversation, from_staff, staff_name, text, at (ISO 8601 UTC), client_id}."""
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "from_staff": not message.from_member,
        "staff_name": staff_name(message.staff) if not message.from_member else "",
        "text": message.text,
        "at": message.at.isoformat(),
        "client_id": message.client_id,
    }


def conversation_payload(conversation: Conversation, *, for_staff: bool = False) -> dict:
    """{id, status, assigned_to (name or ""), unread (the reader's side), last_message_at,
    member_read_upto, staff_read_upto}; for staff also {member: {id, nickname},
    assigned_to_id}."""
    data = {
        "id": conversation.pk,
        "status": conversation.status,
        "assigned_to": staff_name(conversation.assigned_to),
        "unread": unread_count(conversation, for_staff=for_staff),
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "member_read_upto": conversation.member_read_upto,
        "staff_read_upto": conversation.staff_read_upto,
    }
    if for_staff:
        member = conversation.member
        data["member"] = {"id": member.pk, "nickname": member.nickname or _("Driver #%(id)d") % {"id": member.pk}}
        data["assigned_to_id"] = conversation.assigned_to_id
        last = conversation.messages.order_by("-pk").first()
        data["last_text"] = last.text[:60] if last else ""
    return data


def _push(groups: list[str], event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, event)
    except Exception:  # best effort: the history is in PostgreSQL
        logger.warning("chat push %s failed", event.get("type"), exc_info=True)


def _push_on_commit(conversation: Conversation, event: dict) -> None:
    schema = connection.schema_name
    groups = [member_group(schema, conversation.member_id), staff_group(schema)]
    transaction.on_commit(lambda: _push(groups, event))


# ---- reads ----

def unread_count(conversation: Conversation, *, for_staff: bool) -> int:
    """The other side's messages after the reader's read marker."""
    if for_staff:
        return conversation.messages.filter(from_member=True, pk__gt=conversation.staff_read_upto).count()
    return conversation.messages.filter(from_member=False, pk__gt=conversation.member_read_upto).count()


def conversation_of_member(member) -> Conversation | None:
    """The member's open conversation, else their latest one, else None."""
    rows = Conversation.objects.filter(member=member).select_related("assigned_to").order_by("-pk")
    return rows.filter(status=Conversation.Status.OPEN).first() or rows.first()


def messages_of(conversation: Conversation, *, before: int | None = None, limit: int = HISTORY) -> list[ChatMessage]:
    """Up to ``limit`` messages, oldest first, ending before message id ``before`` if given."""
    rows = conversation.messages.select_related("staff").order_by("-pk")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return list(reversed(rows[:limit]))


def staff_who_answer():
    """Active staff who may answer chats (``operations.change_conversation``, directly, by
    a role, or as superusers): whom a conversation can be assigned to."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.with_perm(
        "operations.change_conversation", is_active=True, include_superusers=True,
        backend="django.contrib.auth.backends.ModelBackend").filter(is_staff=True)


def member_unread_total(member) -> int:
    return sum(unread_count(c, for_staff=False) for c in Conversation.objects.filter(member=member))


def _clean(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ChatError("text_empty", _("Write a message."), 400)
    if len(text) > MAX_TEXT:
        raise ChatError("text_too_long", _("At most 1000 characters."), 400)
    return text


def _locked(conversation_id: int) -> Conversation:
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    if conversation is None:
        raise ChatError("conversation_not_found", _("No such conversation."), 404)
    return conversation


# ---- writes ----

def chat_member_send(*, member, text: str, client_id: str = "") -> ChatMessage:
    """The driver's message, into their open conversation (opened if none). A message with
    a ``client_id`` already stored is returned again, not stored twice. Raises ChatError
    ``text_empty`` / ``text_too_long``."""
    text = _clean(text)
    client_id = (client_id or "")[:64]
    for _attempt in range(2):
        try:
            with transaction.atomic():
                # The member's open conversation, made if none: the partial unique
                # constraint settles two first messages from two devices (one retries).
                conversation = (Conversation.objects.select_for_update()
                                .filter(member=member, status=Conversation.Status.OPEN).first())
                if conversation is None:
                    conversation = Conversation.objects.create(member=member)
                if client_id:
                    again = conversation.messages.filter(from_member=True, client_id=client_id).first()
                    if again is not None:
                        return again
                message = ChatMessage.objects.create(conversation=conversation, from_member=True,
                                                     text=text, client_id=client_id)
                conversation.last_message_at = message.at
                conversation.member_read_upto = message.pk  # they have the thread open
                conversation.save(update_fields=["last_message_at", "member_read_upto"])
                _push_on_commit(conversation, {"type": "chat.message", "message": message_payload(message),
                                               "conversation": conversation_payload(conversation, for_staff=True)})
                return message
        except IntegrityError:
            continue
    raise ChatError("conversation_busy", _("Try again."), 409)


def chat_staff_send(*, conversation_id: int, staff, text: str, client_id: str = "") -> ChatMessage:
    """A staff member's message to the driver. The first staff message of an unassigned
    conversation assigns it to the sender. Audited (``chat.message``); the driver is told
    by subscribe message if still unread after CHAT_OFFLINE_NOTIFY_S seconds. Raises
    ChatError ``text_empty`` / ``text_too_long`` / ``conversation_not_found`` /
    ``conversation_closed``."""
    text = _clean(text)
    client_id = (client_id or "")[:64]
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Conversation.Status.CLOSED:
            raise ChatError("conversation_closed", _("This conversation is closed."), 409)
        if client_id:
            again = conversation.messages.filter(from_member=False, client_id=client_id).first()
            if again is not None:
                return again
        message = ChatMessage.objects.create(conversation=conversation, staff=staff, text=text,
                                             client_id=client_id)
        fields = ["last_message_at", "staff_read_upto"]
        conversation.last_message_at = message.at
        conversation.staff_read_upto = message.pk
        if conversation.assigned_to_id is None:
            conversation.assigned_to = staff
            fields.append("assigned_to")
        conversation.save(update_fields=fields)
        audit.record(staff, "chat.message", conversation, detail=text[:500])
        _push_on_commit(conversation, {"type": "chat.message", "message": message_payload(message),
                                       "conversation": conversation_payload(conversation, for_staff=True)})
        task_queue_on_commit("operations.chat_offline_notify", conversation.pk,
                             countdown=settings.CHAT_OFFLINE_NOTIFY_S)
    return message


def chat_assign(*, conversation_id: int, staff_id: int | None, by) -> Conversation:
    """Assign the conversation to staff ``staff_id`` (None: nobody); audited
    (``chat.assign``). Raises ChatError ``conversation_not_found`` / ``staff_not_found``."""
    staff = None
    if staff_id is not None:
        staff = staff_who_answer().filter(pk=staff_id).first()
        if staff is None:
            raise ChatError("staff_not_found", _("No such staff member."), 404)
    with transaction.atomic():
        conversation = _locked(conversation_id)
        before = staff_name(conversation.assigned_to)
        conversation.assigned_to = staff
        conversation.save(update_fields=["assigned_to"])
        audit.record(by, "chat.assign", conversation, changes={"assigned_to": [before, staff_name(staff)]})
        _push_on_commit(conversation, {"type": "chat.conversation",
                                       "conversation": conversation_payload(conversation, for_staff=True)})
    return conversation


def chat_close(*, conversation_id: int, by) -> Conversation:
    """Close the conversation (the driver's next message opens a new one); audited
    (``chat.close``). Closing a closed one changes nothing. Raises ChatError
    ``conversation_not_found``."""
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Conversation.Status.CLOSED:
            return conversation
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = timezone.now()
        conversation.save(update_fields=["status", "closed_at"])
        audit.record(by, "chat.close", conversation, changes={"status": ["open", "closed"]})
        _push_on_commit(conversation, {"type": "chat.conversation",
                                       "conversation": conversation_payload(conversation, for_staff=True)})
    return conversation


def chat_read(*, conversation_id: int, upto: int, member=None) -> Conversation:
    """Move a read marker forward to message id ``upto`` (never back, never past the last
    message): the driver's when ``member`` is given (their own conversation only), else
    staff's. Raises ChatError ``conversation_not_found``."""
    field = "member_read_upto" if member is not None else "staff_read_upto"
    rows = Conversation.objects.filter(pk=conversation_id)
    if member is not None:
        rows = rows.filter(member=member)
    with transaction.atomic():
        conversation = rows.select_for_update().first()
        if conversation is None:
            raise ChatError("conversation_not_found", _("No such conversation."), 404)
        last = conversation.messages.aggregate(m=Max("pk"))["m"] or 0
        upto = max(0, min(int(upto), last))
        if upto > getattr(conversation, field):
            rows.filter(pk=conversation.pk).update(**{field: Greatest(field, upto)})
            conversation.refresh_from_db()
            _push_on_commit(conversation, {
                "type": "chat.read", "conversation": conversation.pk,
                "side": "member" if member is not None else "staff", "upto": getattr(conversation, field)})
    return conversation


def chat_offline_notify(*, conversation_id: int) -> str:
    """Tell the driver of staff messages they have not read (the queued check after each
    staff message): once per unread stretch. Returns "sent", "read" (nothing unread),
    "already" (told of these), "no_template" or "missing"; raises WeChatError to be
    retried."""
    conversation = Conversation.objects.select_related("member").filter(pk=conversation_id).first()
    if conversation is None:
        return "missing"
    last_staff = (conversation.messages.filter(from_member=False, pk__gt=conversation.member_read_upto)
                  .order_by("-pk").first())
    if last_staff is None:
        return "read"
    if conversation.member_notified_upto >= last_staff.pk or conversation.member_notified_upto > conversation.member_read_upto:
        return "already"
    template = FeedbackSettings.load().chat_template_id
    from tenants.models import MiniProgram

    mini_program = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    if not template or mini_program is None:
        return "no_template"
    local = timezone.localtime(last_staff.at)
    wechat.subscribe_message_send(
        mini_program, openid=conversation.member.openid, template_id=template,
        page="pages/chat/index",
        data={"thing1": {"value": str(_("Customer service"))[:20]},
              "thing2": {"value": last_staff.text[:20]},
              "time3": {"value": f"{local:%Y-%m-%d %H:%M}"}})
    Conversation.objects.filter(pk=conversation.pk).update(member_notified_upto=last_staff.pk)
    return "sent"

