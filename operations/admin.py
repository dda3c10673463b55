"""Operator admin for operations: alarms (acknowledge, close), who hears of them, the
remote-control page of each pile, and the audit log: staff actions and model changes, side by
side under 运维 (django-auditlog's own admin is replaced by ``ModelChangeAdmin``)."""

from __future__ import annotations

from auditlog.models import LogEntry
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from import_export import resources
from import_export.fields import Field
from import_export.formats.base_formats import CSV, XLSX

from accounts import audit
from accounts.models import AuditEntry
from evplatform.admin_display import html_table, local_seconds
from evplatform.admin_export import ScopedExportMixin
from evplatform.admin_readonly import ReadOnlyAdminMixin
from stations import firmware as firmware_service
from stations import selectors as station_selectors
from stations.models import Firmware, FirmwareUpdate

from . import alarms, chat, control, feedback, model_changes, workorders
from .models import (
    Alarm,
    AlarmDelivery,
    AlarmSettings,
    AlarmWebhook,
    ChatMessage,
    ControlPolicy,
    Conversation,
    DutyContact,
    Feedback,
    FeedbackReply,
    FeedbackSettings,
    ModelChange,
    PileControl,
    StaffAction,
    WorkOrder,
    WorkOrderNote,
)

# django-auditlog registers an admin of its own (English, unscoped): the operator's is below.
if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


def _scoped(request, qs, path: str):
    if station_selectors.sees_all_stations(request.user):
        return qs
    return qs.filter(**{path: request.user})


DELIVERY_ERRORS = {
    "no_template": _("no subscribe message template or mini-program"),
    "no_sms_provider": _("no SMS provider configured"),
    "no_sms_template": _("no alarm SMS template"),
    "no_sms_result": _("the SMS provider did not answer for this number"),
    "rate_limited": _("held back by the hourly limit"),
}


class AlarmDeliveryInline(admin.TabularInline):
    model = AlarmDelivery
    extra = 0
    can_delete = False
    fields = readonly_fields = ["at", "channel", "target", "ok", "error_said"]

    @admin.display(description=_("error"))
    def error_said(self, obj):
        return DELIVERY_ERRORS.get(obj.error, obj.error) or "-"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alarm)
class AlarmAdmin(admin.ModelAdmin):
    list_display = ["title", "severity", "status", "station", "occurrences", "last_at",
                    "acknowledged_by"]
    list_filter = ["status", "severity", "kind"]
    search_fields = ["title", "pile__code", "station__name"]
    list_select_related = ["station", "acknowledged_by"]
    date_hierarchy = "first_at"
    readonly_fields = ["kind", "severity", "status", "title", "group_key", "station", "pile",
                       "connector", "fault", "occurrences", "first_at", "last_at", "notified_at",
                       "acknowledged_at", "acknowledged_by", "closed_at", "closed_by", "auto_cleared",
                       "note"]
    inlines = [AlarmDeliveryInline]
    actions = ["acknowledge", "close", "make_work_order"]

    def get_queryset(self, request):
        return _scoped(request, super().get_queryset(request), "station__owners")

    def lookup_allowed(self, lookup, value, request):
        # The pile page links here with its alarms (the queryset is scoped already).
        return lookup == "pile__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Acknowledge"), permissions=["change"])
    def acknowledge(self, request, queryset):
        done = 0
        for alarm in queryset:
            try:
                alarms.alarm_acknowledge(alarm_id=alarm.pk, user=request.user)
                done += 1
            except alarms.AlarmError as exc:
                self.message_user(request, f"{alarm}: {exc.detail}", messages.WARNING)
        self.message_user(request, _("%(n)d alarms acknowledged.") % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Create a work order (pile in maintenance)"), permissions=["change"])
    def make_work_order(self, request, queryset):
        for alarm in queryset.select_related("pile__station"):
            made = workorders.work_order_create(user=request.user, title=alarm.title, alarm=alarm,
                                                fault=alarm.fault, pile_maintenance=True)
            self.message_user(request, _("Work order %(wo)s created.") % {"wo": made}, messages.SUCCESS)

    @admin.action(description=_("Close"), permissions=["change"])
    def close(self, request, queryset):
        done = 0
        for alarm in queryset:
            try:
                alarms.alarm_close(alarm_id=alarm.pk, user=request.user)
                done += 1
            except alarms.AlarmError as exc:
                self.message_user(request, f"{alarm}: {exc.detail}", messages.WARNING)
        self.message_user(request, _("%(n)d alarms closed.") % {"n": done}, messages.SUCCESS)


@admin.register(AlarmSettings)
class AlarmSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "fault_min_severity", "offline_after_min", "finishing_stuck_min",
                    "max_notifications_per_hour"]

    def has_add_permission(self, request):
        return not AlarmSettings.objects.exists() and super().has_add_permission(request)


class ControlPolicyForm(forms.ModelForm):
    owner_commands = forms.MultipleChoiceField(
        label=_("commands station owners may send"), required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(name, label) for name, (label, _connector) in control.COMMANDS.items()])

    class Meta:
        model = ControlPolicy
        fields = ["owner_commands"]


@admin.register(ControlPolicy)
class ControlPolicyAdmin(admin.ModelAdmin):
    form = ControlPolicyForm
    list_display = ["__str__", "commands"]

    @admin.display(description=_("commands station owners may send"))
    def commands(self, obj):
        return "、".join(str(control.COMMANDS[n][0]) for n in obj.owner_commands if n in control.COMMANDS) or "-"

    def has_add_permission(self, request):
        return not ControlPolicy.objects.exists() and super().has_add_permission(request)


@admin.register(DutyContact)
class DutyContactAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "phone", "openid", "on_duty"]
    list_filter = ["on_duty"]


@admin.register(AlarmWebhook)
class AlarmWebhookAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "enabled"]


class CommandForm(forms.Form):
    command = forms.ChoiceField(label=_("command"), choices=[])
    connector_no = forms.TypedChoiceField(label=_("connector"), coerce=int, required=False,
                                          empty_value=None, choices=[])
    percent = forms.IntegerField(label=_("power cap (%)"), min_value=30, max_value=100,
                                 required=False)
    when_idle = forms.BooleanField(label=_("reboot when idle"), required=False, initial=True)
    firmware = forms.ModelChoiceField(label=_("firmware image"), queryset=Firmware.objects.none(),
                                      required=False)

    def __init__(self, *args, names: list[str], connectors: list[int], protocol: str = "",
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["firmware"].queryset = Firmware.objects.filter(protocol=protocol)
        self.fields["command"].choices = [(n, control.COMMANDS[n][0]) for n in names]
        self.fields["connector_no"].choices = [("", "-")] + [(n, f"{n}号枪") for n in connectors]


@admin.register(PileControl)
class PileControlAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "station", "online", "control_link"]
    list_filter = ["online"]
    search_fields = ["code", "station__name"]
    list_select_related = ["station"]

    def get_queryset(self, request):
        return _scoped(request, super().get_queryset(request), "station__owners")

    @admin.display(description=_("remote control"))
    def control_link(self, obj):
        url = reverse("admin:operations_pilecontrol_send", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Open"))

    def get_urls(self):
        return [path("<int:pile_id>/send/", self.admin_site.admin_view(self.send_view),
                     name="operations_pilecontrol_send")] + super().get_urls()

    def send_view(self, request, pile_id: int):
        pile = self.get_queryset(request).select_related("station").filter(pk=pile_id).first()
        if pile is None:
            raise Http404(_("Not found."))
        names = control.commands_allowed(request.user, pile)
        if not names:
            raise PermissionDenied
        connectors = list(pile.connectors.order_by("number").values_list("number", flat=True))
        form = CommandForm(request.POST or None, names=names, connectors=connectors,
                           protocol=pile.protocol)
        outcome = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                outcome = control.command_send(
                    user=request.user, pile=pile, name=data["command"],
                    connector_no=data["connector_no"], percent=data["percent"],
                    when_idle=data["when_idle"], firmware=data["firmware"],
                    base_url=request.build_absolute_uri("/"))
            except control.ControlRefused as exc:
                self.message_user(request, exc.detail, messages.ERROR)
        history = AuditEntry.objects.filter(target_type="stations.pile", target_id=str(pile.pk))[:20]
        context = {**self.admin_site.each_context(request), "title": _("Remote control: %(pile)s") % {"pile": pile.code},
                   "pile": pile, "form": form, "outcome": outcome,
                   "reply": control.reply_rows(outcome.result) if outcome else [],
                   "error": control.error_label(outcome.result.error) if outcome else "",
                   "history": history, "opts": self.model._meta,
                   "firmware_updates": pile.firmware_updates.select_related("firmware")[:5]}
        return TemplateResponse(request, "admin/operations/pile_control.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        try:
            return self.send_view(request, int(object_id))
        except ValueError:
            raise Http404(_("Not found.")) from None


class FirmwareForm(forms.ModelForm):
    class Meta:
        model = Firmware
        fields = ["name", "version", "protocol", "file"]


@admin.register(Firmware)
class FirmwareAdmin(admin.ModelAdmin):
    """Firmware images hosted by the platform (uploaded here; sent from a pile's remote
    control page). An image in use by an update cannot be deleted."""

    form = FirmwareForm
    list_display = ["name", "version", "protocol", "size_bytes", "sha256", "uploaded_at"]
    list_filter = ["protocol"]
    readonly_fields = ["file_name", "size_bytes", "sha256", "uploaded_at"]

    def get_fields(self, request, obj=None):
        return ["name", "version", "protocol", "file"] if obj is None else \
            ["name", "version", "protocol", "file_name", "size_bytes", "sha256", "uploaded_at"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "version", "protocol"])
            return
        saved = firmware_service.firmware_upload(
            name=obj.name, version=obj.version, protocol=obj.protocol,
            uploaded=form.cleaned_data["file"])
        obj.pk, obj.token, obj.file = saved.pk, saved.token, saved.file


@admin.register(FirmwareUpdate)
class FirmwareUpdateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Firmware updates sent to piles and their progress as the piles report it."""

    list_display = ["pile", "firmware", "status", "detail", "requested_by", "created_at",
                    "updated_at"]
    list_filter = ["status"]
    search_fields = ["pile__code"]
    list_select_related = ["pile", "firmware"]

    def get_queryset(self, request):
        return _scoped(request, super().get_queryset(request), "pile__station__owners")


class AuditResource(resources.ModelResource):
    action_label = Field(attribute="action", column_name=str(_("action")))

    class Meta:
        model = StaffAction
        fields = ["at", "actor_name", "action", "action_label", "target_type", "target_id", "target_label",
                  "changes", "detail"]

    def dehydrate_action_label(self, entry):
        return audit.action_label(entry.action)


class TargetTypeFilter(admin.SimpleListFilter):
    title = _("object type")
    parameter_name = "target_type"

    def lookups(self, request, model_admin):
        from django.apps import apps

        out = []
        for label in AuditEntry.objects.order_by().values_list("target_type", flat=True).distinct():
            try:
                out.append((label, apps.get_model(label)._meta.verbose_name))
            except (LookupError, ValueError):
                out.append((label, label))
        return sorted(out, key=lambda pair: str(pair[1]))

    def queryset(self, request, queryset):
        return queryset.filter(target_type=self.value()) if self.value() else queryset


class AuditLinksMixin:
    """Each half of the audit log links to the other (both are under 运维)."""

    change_list_template = "admin/operations/audit_change_list.html"

    def changelist_view(self, request, extra_context=None):
        links = []
        for model in (StaffAction, ModelChange):
            if self.admin_site.is_registered(model) and \
                    self.admin_site._registry[model].has_view_or_change_permission(request):
                opts = model._meta
                links.append((opts.verbose_name_plural, reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                              model is self.model))
        return super().changelist_view(request, {**(extra_context or {}), "audit_links": links})


@admin.register(StaffAction)
class StaffActionAdmin(ReadOnlyAdminMixin, AuditLinksMixin, ScopedExportMixin, admin.ModelAdmin):
    """Staff actions (tariff published, refund approved, pile command sent, …), recorded by
    the services with ``accounts.audit.record``."""

    resource_classes = [AuditResource]
    formats = [XLSX, CSV]
    list_display = ["at", "actor_name", "action_name", "target_label", "detail"]
    list_filter = ["action", TargetTypeFilter]
    search_fields = ["actor_name", "target_label", "detail"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    @admin.display(description=_("action"), ordering="action")
    def action_name(self, obj):
        return audit.action_label(obj.action)


class ModelChangeResource(resources.ModelResource):
    at = Field(attribute="timestamp", column_name=str(_("time")))
    actor_name = Field(column_name=str(_("staff")))
    action_name = Field(column_name=str(_("action")))
    object_type = Field(column_name=str(_("object type")))
    object_key = Field(attribute="object_pk", column_name=str(_("object id")))
    object_label = Field(attribute="object_repr", column_name=str(_("object")))
    change_text = Field(column_name=str(_("changes")))
    address = Field(attribute="remote_addr", column_name=str(_("IP address")))

    class Meta:
        model = ModelChange
        fields = ["at", "actor_name", "action_name", "object_type", "object_key", "object_label",
                  "change_text", "address"]

    def dehydrate_at(self, entry):
        return timezone.localtime(entry.timestamp).strftime("%Y-%m-%d %H:%M:%S")

    def dehydrate_actor_name(self, entry):
        return entry.actor.get_username() if entry.actor else str(_("platform"))

    def dehydrate_action_name(self, entry):
        return model_changes.action_label(entry.action)

    def dehydrate_object_type(self, entry):
        model = entry.content_type.model_class()
        return str(model._meta.verbose_name) if model else entry.content_type.model

    def dehydrate_change_text(self, entry):
        return model_changes.summary(entry)


class ChangedModelFilter(admin.SimpleListFilter):
    title = _("object type")
    parameter_name = "model"

    def lookups(self, request, model_admin):
        from django.contrib.contenttypes.models import ContentType

        ids = model_admin.get_queryset(request).order_by().values_list("content_type", flat=True).distinct()
        out = []
        for content_type in ContentType.objects.filter(pk__in=ids):
            model = content_type.model_class()
            out.append((str(content_type.pk), model._meta.verbose_name if model else content_type.model))
        return sorted(out, key=lambda pair: str(pair[1]))

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(content_type_id=value) if value and value.isdigit() else queryset


@admin.register(ModelChange)
class ModelChangeAdmin(ReadOnlyAdminMixin, AuditLinksMixin, ScopedExportMixin, admin.ModelAdmin):
    """模型变更记录: what staff added, changed and deleted in the audited models, with before
    and after (django-auditlog; ``operations.model_changes`` reads it). Read-only; a station
    owner sees only the changes of their own stations and what hangs off them."""

    resource_classes = [ModelChangeResource]
    formats = [XLSX, CSV]
    list_display = ["when", "actor_label", "action_label", "object_type", "object_label", "change_summary"]
    list_filter = [ChangedModelFilter]
    search_fields = ["object_repr", "actor__username"]
    date_hierarchy = "timestamp"
    list_select_related = ["actor", "content_type"]
    fields = ["when", "actor_label", "address", "action_label", "object_type", "object_label",
              "object_key", "change_table"]
    readonly_fields = fields

    def get_queryset(self, request):
        return model_changes.visible(request.user, super().get_queryset(request))

    @admin.display(description=_("time"), ordering="timestamp")
    def when(self, obj):
        return local_seconds(obj.timestamp)

    @admin.display(description=_("staff"), ordering="actor__username")
    def actor_label(self, obj):
        return obj.actor.get_username() if obj.actor else _("platform")

    @admin.display(description=_("IP address"))
    def address(self, obj):
        return obj.remote_addr or "-"

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, obj):
        return model_changes.action_label(obj.action)

    @admin.display(description=_("object type"))
    def object_type(self, obj):
        model = obj.content_type.model_class()
        return model._meta.verbose_name if model else obj.content_type.model

    @admin.display(description=_("object"), ordering="object_repr")
    def object_label(self, obj):
        return obj.object_repr

    @admin.display(description=_("object id"))
    def object_key(self, obj):
        return obj.object_pk

    @admin.display(description=_("changes"))
    def change_summary(self, obj):
        """The changes on one line, cut to fit the list (whole on hover and on the
        entry's page)."""
        text = model_changes.summary(obj)
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(60))

    @admin.display(description=_("changes"))
    def change_table(self, obj):
        return html_table([_("field"), _("before"), _("after")], model_changes.rows(obj))


@admin.register(FeedbackSettings)
class FeedbackSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "reply_template_id", "chat_template_id"]

    def has_add_permission(self, request):
        return not FeedbackSettings.objects.exists() and super().has_add_permission(request)


class FeedbackReplyInline(admin.TabularInline):
    model = FeedbackReply
    extra = 0
    can_delete = False
    fields = readonly_fields = ["at", "who", "text", "notified_at"]

    @admin.display(description=_("from"))
    def who(self, obj):
        return _("driver") if obj.from_member else (obj.staff.get_username() if obj.staff else "-")

    def has_add_permission(self, request, obj=None):
        return False


class ReplyForm(forms.Form):
    text = forms.CharField(label=_("reply"), widget=forms.Textarea(attrs={"rows": 4}), max_length=1000)
    close = forms.BooleanField(label=_("close after replying"), required=False)


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["__str__", "category", "status", "member", "short_text", "assigned_to",
                    "created_at", "replied_at"]
    list_filter = ["status", "category"]
    search_fields = ["text", "member__nickname", "order__number"]
    list_select_related = ["member", "assigned_to"]
    readonly_fields = ["member", "category", "text", "photo_links", "order", "connector",
                       "status", "created_at", "replied_at"]
    fields = readonly_fields + ["assigned_to"]
    inlines = [FeedbackReplyInline]
    actions = ["assign_to_me"]
    change_form_template = "admin/operations/feedback/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("content"))
    def short_text(self, obj):
        return obj.text[:40]

    @admin.display(description=_("photos"))
    def photo_links(self, obj):
        if not obj.photos:
            return "-"
        return format_html_join(" ", '<a href="{}" target="_blank"><img src="{}" height="80"></a>',
                                ((u, u) for u in obj.photos))

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        for item in queryset:
            feedback.feedback_assign(feedback_id=item.pk, staff=request.user)
        self.message_user(request, _("%(n)d assigned to you.") % {"n": queryset.count()},
                          messages.SUCCESS)

    def get_urls(self):
        return [path("<int:feedback_id>/reply/", self.admin_site.admin_view(self.reply_view),
                     name="operations_feedback_reply")] + super().get_urls()

    def reply_view(self, request, feedback_id: int):
        item = self.get_object(request, str(feedback_id))
        if item is None:
            raise Http404(_("Not found."))
        if not self.has_change_permission(request, item):
            raise PermissionDenied
        form = ReplyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                feedback.feedback_reply(feedback_id=item.pk, staff=request.user,
                                        text=form.cleaned_data["text"],
                                        close=form.cleaned_data["close"])
                self.message_user(request, _("Replied; the driver is notified."), messages.SUCCESS)
            except feedback.FeedbackError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
            return redirect("admin:operations_feedback_change", item.pk)
        context = {**self.admin_site.each_context(request), "title": _("Reply to %(item)s") % {"item": item},
                   "item": item, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/operations/feedback_reply.html", context)


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    extra = 0
    can_delete = False
    fields = readonly_fields = ["at", "who", "text"]

    @admin.display(description=_("sender"))
    def who(self, obj):
        return _("driver") if obj.from_member else chat.staff_name(obj.staff) or "-"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """The conversations' history; the live page (``console/``) is where staff answer."""

    list_display = ["__str__", "member", "status", "assigned_to", "unread", "last_message_at",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["member__nickname", "member__phone", "messages__text"]
    list_select_related = ["member", "assigned_to"]
    readonly_fields = ["member", "status", "assigned_to", "created_at", "last_message_at",
                       "closed_at"]
    fields = readonly_fields
    inlines = [ChatMessageInline]
    actions = ["assign_to_me", "close"]
    change_list_template = "admin/operations/conversation/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("unread"))
    def unread(self, obj):
        return chat.unread_count(obj, for_staff=True)

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        for item in queryset:
            chat.chat_assign(conversation_id=item.pk, staff_id=request.user.pk, by=request.user)
        self.message_user(request, _("%(n)d assigned to you.") % {"n": queryset.count()},
                          messages.SUCCESS)

    @admin.action(description=_("End the conversation"), permissions=["change"])
    def close(self, request, queryset):
        for item in queryset:
            chat.chat_close(conversation_id=item.pk, by=request.user)
        self.message_user(request, _("%(n)d ended.") % {"n": queryset.count()}, messages.SUCCESS)

    def get_urls(self):
        return [path("console/", self.admin_site.admin_view(self.console_view),
                     name="operations_conversation_console")] + super().get_urls()

    def console_view(self, request):
        """The live chat page: open conversations with unread counts, the selected one's
        thread, reply, assign, end, and who is typing, over ``/ws/admin/chat/``."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": _("Customer-service chat"),
                   "opts": self.model._meta,
                   "may_write": self.has_change_permission(request)}
        return TemplateResponse(request, "admin/operations/chat_console.html", context)


class WorkOrderNoteInline(admin.TabularInline):
    model = WorkOrderNote
    extra = 0
    can_delete = False
    fields = readonly_fields = ["at", "author", "status", "text"]

    def has_add_permission(self, request, obj=None):
        return False


class ProgressForm(forms.Form):
    status = forms.ChoiceField(label=_("status"), choices=WorkOrder.Status.choices)
    assigned_to = forms.ModelChoiceField(label=_("assigned to"), required=False, queryset=None)
    note = forms.CharField(label=_("note"), widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        from django.contrib.auth import get_user_model

        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = get_user_model().objects.filter(is_staff=True, is_active=True)


@admin.register(WorkOrder)
class WorkOrderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "station", "pile", "status", "assigned_to", "due_at",
                    "is_overdue", "pile_maintenance"]
    list_filter = ["status", "kind"]
    search_fields = ["title", "pile__code", "station__name"]
    list_select_related = ["station", "pile", "assigned_to"]
    autocomplete_fields = []
    inlines = [WorkOrderNoteInline]
    change_form_template = "admin/operations/workorder/change_form.html"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["kind", "title", "description", "station", "pile", "assigned_to", "due_at",
                    "pile_maintenance", "photos"]
        return ["kind", "title", "description", "station", "pile", "fault", "alarm", "feedback",
                "status", "assigned_to", "due_at", "pile_maintenance", "photos", "created_by",
                "created_at", "closed_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["station", "pile", "fault", "alarm", "feedback", "status", "assigned_to",
                "pile_maintenance", "created_by", "created_at", "closed_at"]

    def get_queryset(self, request):
        return _scoped(request, super().get_queryset(request), "station__owners")

    @admin.display(description=_("overdue"), boolean=True)
    def is_overdue(self, obj):
        from django.utils import timezone

        return bool(obj.due_at and obj.due_at < timezone.now()
                    and obj.status not in (WorkOrder.Status.DONE, WorkOrder.Status.CLOSED))

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        made = workorders.work_order_create(
            user=request.user, title=obj.title, station=obj.station, pile=obj.pile, kind=obj.kind,
            description=obj.description, due_at=obj.due_at, pile_maintenance=obj.pile_maintenance,
            assigned_to=obj.assigned_to)
        obj.pk = made.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("<int:wo_id>/progress/", self.admin_site.admin_view(self.progress_view),
                     name="operations_workorder_progress")] + super().get_urls()

    def progress_view(self, request, wo_id: int):
        item = self.get_object(request, str(wo_id))
        if item is None:
            raise Http404(_("Not found."))
        if not self.has_change_permission(request, item):
            raise PermissionDenied
        form = ProgressForm(request.POST or None, initial={"status": item.status,
                                                           "assigned_to": item.assigned_to})
        if request.method == "POST" and form.is_valid():
            try:
                workorders.work_order_move(work_order_id=item.pk, user=request.user,
                                           status=form.cleaned_data["status"],
                                           note=form.cleaned_data["note"],
                                           assigned_to=form.cleaned_data["assigned_to"])
                self.message_user(request, _("Work order updated."), messages.SUCCESS)
            except workorders.WorkOrderError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
            return redirect("admin:operations_workorder_change", item.pk)
        context = {**self.admin_site.each_context(request), "title": _("Progress of %(wo)s") % {"wo": item},
                   "item": item, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/operations/workorder_progress.html", context)
