"""Drivers' feedback and complaints: submitted through the driver API, handled by staff in
the admin (assigned, replied to, closed); each staff reply notifies the driver by WeChat
subscribe message (a queued task, ``operations.feedback_reply_notify``)."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit, wechat
from charging.models import ChargingOrder
from evplatform.errors import DomainError
from evplatform.queue import task_queue_on_commit
from stations.models import Connector

from .models import Feedback, FeedbackReply, FeedbackSettings

MAX_PHOTOS = 9
MAX_PHOTO_BYTES = 5 * 1024 * 1024
PHOTO_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
PHOTO_NAME = r"[0-9a-f]{32}\.(?:jpg|png|webp)"


class FeedbackError(DomainError):
    pass


def feedback_submit(*, member, category: str, text: str, photos: list[str] | None = None,
                    order_id: int | None = None, connector_id: int | None = None) -> Feedback:
    """A driver's feedback. The order must be the member's own; raises FeedbackError
    ``order_not_found`` / ``connector_not_found`` (404), ``too_many_photos`` (400)."""
    photos = list(photos or [])
    if len(photos) > MAX_PHOTOS:
        raise FeedbackError("too_many_photos", _("At most 9 photos."), 400)
    order = None
    if order_id is not None:
        order = ChargingOrder.objects.filter(pk=order_id, member=member).first()
        if order is None:
            raise FeedbackError("order_not_found", _("No such order."), 404)
    connector = None
    if connector_id is not None:
        connector = Connector.objects.filter(pk=connector_id).first()
        if connector is None:
            raise FeedbackError("connector_not_found", _("No such connector."), 404)
    if connector is None and order is not None:
        connector = order.connector
    return Feedback.objects.create(member=member, category=category, text=text.strip(),
                                   photos=photos, order=order, connector=connector)


def feedback_photo_store(*, upload) -> str:
    """Keep a driver's photo (JPEG, PNG or WebP, at most 5 MB) for their feedback; returns
    its storage name ``feedback/<schema>/<32 hex>.<ext>`` (served by
    ``operations.views.feedback_photo_file``). Raises FeedbackError ``photo_missing``,
    ``photo_too_large`` (413), ``photo_invalid`` (not an image of those formats)."""
    import uuid

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image, UnidentifiedImageError

    if upload is None:
        raise FeedbackError("photo_missing", _("Choose a photo."), 400)
    if upload.size > MAX_PHOTO_BYTES:
        raise FeedbackError("photo_too_large", _("A photo may be at most 5 MB."), 413)
    data = upload.read()
    try:
        import io

        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        kind = None
    if kind not in PHOTO_FORMATS:
        raise FeedbackError("photo_invalid", _("Send a JPEG, PNG or WebP photo."), 400)
    name = f"feedback/{connection.schema_name}/{uuid.uuid4().hex}.{PHOTO_FORMATS[kind]}"
    return default_storage.save(name, ContentFile(data))


def feedback_follow_up(*, member, feedback_id: int, text: str) -> FeedbackReply:
    """The driver adds to their own feedback (reopens it for staff unless closed)."""
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().filter(pk=feedback_id, member=member).first()
        if feedback is None:
            raise FeedbackError("feedback_not_found", _("No such feedback."), 404)
        if feedback.status == Feedback.Status.CLOSED:
            raise FeedbackError("feedback_closed", _("This feedback is closed."), 409)
        reply = FeedbackReply.objects.create(feedback=feedback, from_member=True, text=text.strip())
        feedback.status = Feedback.Status.IN_PROGRESS if feedback.assigned_to_id else Feedback.Status.NEW
        feedback.save(update_fields=["status"])
    return reply


def feedback_assign(*, feedback_id: int, staff) -> Feedback:
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().get(pk=feedback_id)
        feedback.assigned_to = staff
        if feedback.status == Feedback.Status.NEW:
            feedback.status = Feedback.Status.IN_PROGRESS
        feedback.save(update_fields=["assigned_to", "status"])
    return feedback


def feedback_reply(*, feedback_id: int, staff, text: str, close: bool = False) -> FeedbackReply:
    """Staff answer the driver (the driver is notified after commit); ``close`` ends it."""
    if not text.strip():
        raise FeedbackError("reply_empty", _("Write a reply."), 400)
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().get(pk=feedback_id)
        if feedback.status == Feedback.Status.CLOSED:
            raise FeedbackError("feedback_closed", _("This feedback is closed."), 409)
        reply = FeedbackReply.objects.create(feedback=feedback, staff=staff, text=text.strip())
        feedback.status = Feedback.Status.CLOSED if close else Feedback.Status.REPLIED
        feedback.replied_at = timezone.now()
        if feedback.assigned_to_id is None:
            feedback.assigned_to = staff
        feedback.save(update_fields=["status", "replied_at", "assigned_to"])
        audit.record(staff, "feedback.reply", feedback, detail=reply.text[:500],
                     changes={"status": [None, feedback.status]})
        task_queue_on_commit("operations.feedback_reply_notify", reply.pk)
    return reply


def feedback_reply_notify(*, reply_id: int) -> str:
    """Tell the driver of a staff reply (subscribe message, once). Returns "sent",
    "skipped" (already or not a staff reply) or "no_template"; raises WeChatError to be
    retried."""
    reply = FeedbackReply.objects.select_related("feedback__member").filter(pk=reply_id).first()
    if reply is None or reply.from_member or reply.notified_at:
        return "skipped"
    template = FeedbackSettings.load().reply_template_id
    from tenants.models import MiniProgram

    mini_program = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    if not template or mini_program is None:
        return "no_template"
    feedback = reply.feedback
    local = timezone.localtime(reply.at)
    wechat.subscribe_message_send(
        mini_program, openid=feedback.member.openid, template_id=template,
        page=f"pages/feedback/detail?id={feedback.pk}",
        data={"thing1": {"value": str(feedback.get_category_display())[:20]},
              "thing2": {"value": reply.text[:20]},
              "time3": {"value": f"{local:%Y-%m-%d %H:%M}"}})
    FeedbackReply.objects.filter(pk=reply.pk, notified_at__isnull=True).update(notified_at=timezone.now())
    return "sent"
