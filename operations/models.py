"""Operations: alarms raised from pile faults and platform rules, who hears of them, and
what was sent; the audit log's two halves (staff actions, model changes) as the admin shows
them. Tenant schema (each operator's own)."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEntry
from evplatform.singleton import SingletonModel
from stations.models import Pile


class AlarmSettings(SingletonModel):
    """This operator's alarm rules (one row; ``AlarmSettings.load()``)."""

    class Level(models.TextChoices):
        CRITICAL = "critical", _("Critical only")
        MAJOR = "major", _("Major and critical")
        MINOR = "minor", _("Every fault")

    fault_min_severity = models.CharField(
        _("alarm on pile faults of"), max_length=10, choices=Level.choices, default=Level.MAJOR
    )
    offline_after_min = models.PositiveIntegerField(
        _("alarm when a pile is offline longer than (min)"), default=10,
        help_text=_("0 turns this rule off."),
    )
    finishing_stuck_min = models.PositiveIntegerField(
        _("alarm when a connector stays in finishing longer than (min)"), default=30,
        help_text=_("0 turns this rule off."),
    )
    revenue_zero_hours = models.PositiveIntegerField(
        _("alarm when a station that earned money earns nothing for (hours)"), default=24,
        help_text=_("Settled orders' totals in the last hours are zero, and were not in the "
                    "hours before. 0 turns this rule off."),
    )
    repeat_after_min = models.PositiveIntegerField(
        _("notify an open alarm again after (min)"), default=120,
        help_text=_("Repeats of an open alarm are counted, not sent, until then. 0: never again."),
    )
    max_notifications_per_hour = models.PositiveIntegerField(
        _("at most this many notifications per hour"), default=30,
        help_text=_("Beyond it alarms are still recorded, and one summary says how many were held back."),
    )
    wechat_template_id = models.CharField(
        _("WeChat subscribe message template"), max_length=64, blank=True,
        help_text=_("Template with thing1 (alarm), thing2 (station), time3 (time), phrase4 (level)."),
    )
    sms_template_id = models.CharField(
        _("alarm SMS template ID"), max_length=20, blank=True,
        help_text=_("An approved template of the SMS account (marketing's SMS settings) with {1} "
                    "level, {2} alarm, {3} station, {4} time, {5} note. Empty: no alarm SMS."),
    )

    class Meta:
        verbose_name = _("alarm settings")
        verbose_name_plural = _("alarm settings")

    def __str__(self) -> str:
        return str(_("alarm settings"))



class DutyContact(models.Model):
    """A member of the on-duty staff: hears of alarms by WeChat subscribe message (their
    mini-program openid) and by SMS (their phone) while ``on_duty``."""

    name = models.CharField(_("name"), max_length=50)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("staff user"),
    )
    openid = models.CharField(_("mini-program openid"), max_length=64, blank=True)
    phone = models.CharField(_("mobile phone"), max_length=20, blank=True)
    on_duty = models.BooleanField(_("on duty"), default=True)

    class Meta:
        verbose_name = _("on-duty contact")
        verbose_name_plural = _("on-duty contacts")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlarmWebhook(models.Model):
    """A group robot (企业微信 or 钉钉) that posts alarms to a chat group."""

    class Kind(models.TextChoices):
        WECOM = "wecom", _("WeCom group robot")
        DINGTALK = "dingtalk", _("DingTalk group robot")

    name = models.CharField(_("name"), max_length=50)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.WECOM)
    url = models.URLField(_("webhook URL"), max_length=500)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("alarm webhook")
        verbose_name_plural = _("alarm webhooks")

    def __str__(self) -> str:
        return self.name


class Alarm(models.Model):
    """One alarm: raised by a rule, grouped by ``group_key`` while not closed (a repeat
    counts in ``occurrences`` instead of raising another), acknowledged and closed by staff
    or cleared by itself when its cause ends."""

    class Kind(models.TextChoices):
        FAULT = "fault", _("Pile fault")
        OFFLINE = "offline", _("Pile offline")
        STUCK_FINISHING = "stuck_finishing", _("Connector stuck in finishing")
        REVENUE_ZERO = "revenue_zero", _("Station revenue dropped to zero")

    class Status(models.TextChoices):
        OPEN = "open", _("Unhandled")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        CLOSED = "closed", _("Closed")

    class Severity(models.TextChoices):
        CRITICAL = "critical", _("Critical")
        MAJOR = "major", _("Major")
        MINOR = "minor", _("Minor")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(
        _("status"), max_length=14, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    title = models.CharField(_("alarm"), max_length=200)
    group_key = models.CharField(_("grouping key"), max_length=120, db_index=True)
    station = models.ForeignKey(
        "stations.Station", on_delete=models.CASCADE, related_name="+", verbose_name=_("station")
    )
    pile = models.ForeignKey(
        "stations.Pile", on_delete=models.CASCADE, related_name="alarms", verbose_name=_("pile"),
        null=True, blank=True,  # a station's alarm (revenue) names no pile
    )
    connector = models.ForeignKey(
        "stations.Connector", on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        verbose_name=_("connector"),
    )
    fault = models.ForeignKey(
        "stations.Fault", on_delete=models.SET_NULL, null=True, blank=True, related_name="alarms",
        verbose_name=_("fault"),
    )
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    first_at = models.DateTimeField(_("first raised"))
    last_at = models.DateTimeField(_("last raised"))
    notified_at = models.DateTimeField(_("last notified"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("acknowledged by"),
    )
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("closed by"),
    )
    auto_cleared = models.BooleanField(_("cleared by itself"), default=False)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("alarm")
        verbose_name_plural = _("alarms")
        ordering = ["-last_at"]
        constraints = [
            # One alarm per group until it is closed: the grouping holds under races.
            models.UniqueConstraint(
                fields=["group_key"], condition=~models.Q(status="closed"),
                name="alarm_one_open_per_group",
            )
        ]

    def __str__(self) -> str:
        return self.title


class AlarmDelivery(models.Model):
    """One notification of an alarm on one channel, sent or not (and why)."""

    class Channel(models.TextChoices):
        WECHAT = "wechat", _("WeChat subscribe message")
        SMS = "sms", _("SMS")
        WEBHOOK = "webhook", _("Group robot")

    alarm = models.ForeignKey(
        Alarm, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("alarm"),
        null=True, blank=True,
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    target = models.CharField(_("recipient"), max_length=200)
    ok = models.BooleanField(_("delivered"))
    error = models.CharField(_("error"), max_length=300, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("alarm delivery")
        verbose_name_plural = _("alarm deliveries")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.target}"


class ControlPolicy(SingletonModel):
    """Which remote commands station owners (站长) may send to their own piles (one row;
    operator admins may send every command)."""

    owner_commands = models.JSONField(
        _("commands station owners may send"), default=list, blank=True,
        help_text=_("Names from: remote_stop, reboot, time_sync, power_cap, read_realtime, push_tariff."),
    )

    class Meta:
        verbose_name = _("remote control policy")
        verbose_name_plural = _("remote control policy")

    def __str__(self) -> str:
        return str(_("remote control policy"))

    @classmethod
    def singleton_defaults(cls) -> dict:
        return {"owner_commands": ["read_realtime", "time_sync"]}


class PileControl(Pile):
    """The remote-control page of a pile (a proxy: the admin's 远程控制)."""

    class Meta:
        proxy = True
        verbose_name = _("remote control")
        verbose_name_plural = _("remote control")
        default_permissions = ("view",)
        permissions = [("send_command", _("Can send commands to piles"))]


class FeedbackSettings(SingletonModel):
    """How drivers hear of staff replies to their feedback (one row)."""

    reply_template_id = models.CharField(
        _("reply subscribe message template"), max_length=64, blank=True,
        help_text=_("Template with thing1 (subject), thing2 (reply), time3 (time)."),
    )
    chat_template_id = models.CharField(
        _("unread chat message subscribe message template"), max_length=64, blank=True,
        help_text=_("Same fields; sent when the driver has not read a customer-service message."),
    )

    class Meta:
        verbose_name = _("feedback settings")
        verbose_name_plural = _("feedback settings")

    def __str__(self) -> str:
        return str(_("feedback settings"))



class Feedback(models.Model):
    """A driver's feedback or complaint, optionally about an order or a connector, handled
    by staff: assigned, replied to (the driver is notified), closed."""

    class Category(models.TextChoices):
        FAULT = "fault", _("Equipment fault")
        BILLING = "billing", _("Charges and payment")
        SERVICE = "service", _("Service complaint")
        SUGGESTION = "suggestion", _("Suggestion")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("In progress")
        REPLIED = "replied", _("Replied")
        CLOSED = "closed", _("Closed")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="feedback", verbose_name=_("member")
    )
    category = models.CharField(_("category"), max_length=12, choices=Category.choices)
    text = models.TextField(_("content"), max_length=1000)
    photos = models.JSONField(_("photos"), default=list, blank=True, help_text=_("Image URLs."))
    order = models.ForeignKey(
        "charging.ChargingOrder", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("order"),
    )
    connector = models.ForeignKey(
        "stations.Connector", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("connector"),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.NEW, db_index=True
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("assigned to"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    replied_at = models.DateTimeField(_("last replied"), null=True, blank=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback and complaints")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_category_display()}"


class FeedbackReply(models.Model):
    """One message in a feedback's thread: staff's reply (``staff`` set) or the driver's
    follow-up."""

    feedback = models.ForeignKey(
        Feedback, on_delete=models.CASCADE, related_name="replies", verbose_name=_("feedback")
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("staff"),
    )
    from_member = models.BooleanField(_("from the driver"), default=False)
    text = models.TextField(_("content"), max_length=1000)
    at = models.DateTimeField(_("time"), auto_now_add=True)
    notified_at = models.DateTimeField(_("driver notified"), null=True, blank=True)

    class Meta:
        verbose_name = _("reply")
        verbose_name_plural = _("replies")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return self.text[:30]


class WorkOrder(models.Model):
    """A maintenance or cleaning job (工单) at a station or on a pile: made from a fault, an
    alarm, feedback or by hand; assigned, due, worked and closed. While an open work order
    holds its pile in maintenance (``pile_maintenance``), the pile is disabled (no start)."""

    class Kind(models.TextChoices):
        MAINTENANCE = "maintenance", _("Maintenance")
        CLEANING = "cleaning", _("Cleaning")
        INSPECTION = "inspection", _("Inspection")

    class Status(models.TextChoices):
        OPEN = "open", _("To be assigned")
        ASSIGNED = "assigned", _("Assigned")
        IN_PROGRESS = "in_progress", _("In progress")
        DONE = "done", _("Done, to be checked")
        CLOSED = "closed", _("Closed")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.MAINTENANCE)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    station = models.ForeignKey("stations.Station", on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("station"))
    pile = models.ForeignKey("stations.Pile", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="work_orders", verbose_name=_("pile"))
    fault = models.ForeignKey("stations.Fault", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", verbose_name=_("fault"))
    alarm = models.ForeignKey(Alarm, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="work_orders", verbose_name=_("alarm"))
    feedback = models.ForeignKey("operations.Feedback", on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="work_orders", verbose_name=_("feedback"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices,
                              default=Status.OPEN, db_index=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("assigned to"))
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    pile_maintenance = models.BooleanField(
        _("pile in maintenance while open"), default=False,
        help_text=_("The pile cannot be started until the work order is closed."))
    photos = models.JSONField(_("photos"), default=list, blank=True, help_text=_("Image URLs."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("work order")
        verbose_name_plural = _("work orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class WorkOrderNote(models.Model):
    """Progress on a work order: who, when, what (and the status it moved to)."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="notes",
                                   verbose_name=_("work order"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+", verbose_name=_("staff"))
    text = models.TextField(_("note"))
    status = models.CharField(_("status"), max_length=12, choices=WorkOrder.Status.choices, blank=True)
    at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("progress note")
        verbose_name_plural = _("progress notes")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return self.text[:30]


class Conversation(models.Model):
    """A driver's customer-service chat (在线客服) with the operator's staff: one open
    conversation per member at a time; closed by staff, a new one opens with the driver's
    next message.

    ``member_read_upto`` / ``staff_read_upto``: the id of the last message each side has
    read; unread counts are the other side's messages after it. ``member_notified_upto``:
    the last staff message the driver was told of by subscribe message (offline)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Ongoing")
        CLOSED = "closed", _("Ended")

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="conversations",
        verbose_name=_("member"),
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices,
                              default=Status.OPEN, db_index=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("assigned to"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_message_at = models.DateTimeField(_("last message"), null=True, blank=True, db_index=True)
    member_read_upto = models.BigIntegerField(_("read by the driver up to"), default=0)
    staff_read_upto = models.BigIntegerField(_("read by staff up to"), default=0)
    member_notified_upto = models.BigIntegerField(_("driver notified up to"), default=0)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("chat conversation")
        verbose_name_plural = _("customer-service chat")
        ordering = ["-last_message_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["member"], condition=models.Q(status="open"),
                                    name="chat_one_open_per_member"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.member}"


class ChatMessage(models.Model):
    """One message of a conversation: the driver's (``from_member``) or a staff member's.
    ``client_id`` (the sender's own id for it) makes a resend after a dropped connection
    land once."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages",
        verbose_name=_("chat conversation"),
    )
    from_member = models.BooleanField(_("from the driver"), default=False)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("staff"),
    )
    text = models.TextField(_("content"), max_length=1000)
    client_id = models.CharField(_("client message id"), max_length=64, blank=True)
    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "from_member", "client_id"],
                                    condition=~models.Q(client_id=""), name="chat_message_client_once"),
        ]

    def __str__(self) -> str:
        return self.text[:30]


# --- the audit log, both halves under 运维 ------------------------------------------------


class StaffAction(AuditEntry):
    """The staff actions log (``accounts.AuditEntry``, written by ``accounts.audit.record``),
    shown in the admin beside the model changes."""

    class Meta:
        proxy = True
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        default_permissions = ("view",)


class ModelChange(LogEntry):
    """A change of an audited model (django-auditlog's ``LogEntry``, in the operator's
    schema; the models and fields are ``settings.AUDITLOG_INCLUDE_TRACKING_MODELS``)."""

    class Meta:
        proxy = True
        verbose_name = _("model change")
        verbose_name_plural = _("model change log")
        default_permissions = ("view",)

    def __str__(self) -> str:
        from .model_changes import action_label

        return f"{action_label(self.action)} {self.object_repr}"
