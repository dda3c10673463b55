"""Members (drivers) of one operator. Tenant schema."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class Member(models.Model):
    """A driver of this operator, known by the WeChat openid of its mini-program."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DISABLED = "disabled", _("Disabled")

    openid = models.CharField(_("openid"), max_length=64, unique=True)
    unionid = models.CharField(_("unionid"), max_length=64, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    nickname = models.CharField(_("nickname"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    fleet = models.CharField(
        _("fleet"), max_length=64, blank=True,
        help_text=_("The company fleet the driver charges for (empty: none); fleet vehicles "
                    "get priority at stations that share power by priority."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_login_at = models.DateTimeField(_("last login"), null=True, blank=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.nickname or self.phone or self.openid

    # DRF treats request.user as a user object.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class MemberSession(models.Model):
    """One sign-in of a member (one device): the refresh token now valid for it, by ``jti``.

    Each refresh replaces ``refresh_jti`` (rotation); a refresh token presented again after
    its rotation means it was copied, so the session is revoked (``reused``). Revoked on
    logout and when the member is disabled; access tokens name their session (``sid``) and
    die with it.
    """

    class Revoked(models.TextChoices):
        LOGOUT = "logout", _("Logged out")
        REUSED = "reused", _("Refresh token reused")
        MEMBER_DISABLED = "member_disabled", _("Member disabled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("member")
    )
    refresh_jti = models.CharField(_("current refresh token"), max_length=32)
    created_at = models.DateTimeField(_("signed in"), auto_now_add=True)
    refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_reason = models.CharField(
        _("revoked because"), max_length=20, choices=Revoked.choices, blank=True
    )

    class Meta:
        verbose_name = _("member session")
        verbose_name_plural = _("member sessions")
        indexes = [models.Index(fields=["member", "revoked_at"], name="membersession_member_live")]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.pk}"


class AuditAction(models.TextChoices):
    """The staff actions the audit log records (``accounts.audit.record``)."""

    PILE_COMMAND = "pile.command", _("Pile command sent")
    ALARM_ACKNOWLEDGE = "alarm.acknowledge", _("Alarm acknowledged")
    ALARM_CLOSE = "alarm.close", _("Alarm closed")
    ORDER_FORCE_STOP = "order.force_stop", _("Order force-stopped")
    ORDER_SETTLE_BY_HAND = "order.settle_by_hand", _("Order settled by hand")
    ORDER_REFUND = "order.refund", _("Order refunded")
    TARIFF_PUBLISH = "tariff.publish", _("Tariff published")
    SPLIT_RULE_CHANGE = "split_rule.change", _("Split rule changed")
    FEEDBACK_REPLY = "feedback.reply", _("Feedback replied")
    WORK_ORDER_CHANGE = "work_order.change", _("Work order changed")
    CHAT_MESSAGE = "chat.message", _("Chat message sent")
    CHAT_ASSIGN = "chat.assign", _("Chat assigned")
    CHAT_CLOSE = "chat.close", _("Chat closed")
    # Model changes are django-auditlog's now (operations' 模型变更记录); these name the
    # entries recorded before it.
    MODEL_ADD = "model.add", _("Added in the admin")
    MODEL_CHANGE = "model.change", _("Changed in the admin")
    MODEL_DELETE = "model.delete", _("Deleted in the admin")
    REFUND_REVIEW = "refund.review", _("Refund or withdrawal reviewed")


class AuditEntry(models.Model):
    """One staff action: who, when, what (``action``), on what, and what changed.

    Written by :func:`accounts.audit.record`; never edited. ``changes`` is
    {field: [before, after]} where the action changes fields, else {}.
    """

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("staff user"),
    )
    actor_name = models.CharField(_("staff"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=50, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(_("object type"), max_length=100, blank=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_label = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action}"
