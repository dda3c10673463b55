"""Operator admin: interconnection partners (secrets shown masked only, never echoed) and
the CEC push log with its dead letters and a "send again" action; regulators get a
"push settled orders now" action (a date range, or the last day) and a "push our stations
now" one."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from evplatform.crypto import mask

from . import convert, pushes
from .models import Partner, Push

SECRET_FIELDS = (
    "in_operator_secret", "in_data_secret", "in_data_iv", "in_sig_secret",
    "out_operator_secret", "out_data_secret", "out_data_iv", "out_sig_secret",
)


class PartnerForm(forms.ModelForm):
    """Secrets as password inputs showing a mask; an empty submission keeps the stored one."""

    class Meta:
        model = Partner
        fields = [
            "name", "operator_id", "our_operator_id", "enabled", "is_customer_operator",
            "is_infrastructure", "is_regulator", *SECRET_FIELDS, "token_ttl_s", "base_url",
            "path_prefix", "all_stations", "stations", "field_renames", "status_interval_s",
            "credit_yuan", "charge_while_owing",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in SECRET_FIELDS:
            self.fields[field].widget = forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password"}
            )
            current = getattr(self.instance, field, "") if self.instance.pk else ""
            if current:
                self.fields[field].required = False
                self.fields[field].help_text = _("Set: %(mask)s. Leave empty to keep.") % {
                    "mask": mask(current)
                }

    def clean(self):
        cleaned = super().clean()
        for field in SECRET_FIELDS:
            if not cleaned.get(field) and self.instance.pk:
                cleaned[field] = getattr(self.instance, field)
                self.errors.pop(field, None)
        return cleaned


class PushRangeForm(forms.Form):
    start = forms.DateField(label=_("Settled from (date)"))
    end = forms.DateField(label=_("Settled until (date, inclusive)"))


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    form = PartnerForm
    list_display = ["name", "operator_id", "roles", "base_url", "enabled", "pending", "dead"]
    list_filter = ["enabled", "is_customer_operator", "is_infrastructure", "is_regulator"]
    search_fields = ["name", "operator_id"]
    filter_horizontal = ["stations"]
    actions = ["push_orders", "push_stations"]
    fieldsets = [
        (None, {"fields": ["name", "operator_id", "our_operator_id", "enabled"]}),
        (_("Roles"), {"fields": ["is_customer_operator", "is_infrastructure", "is_regulator"]}),
        (_("Secrets we issued (the partner's calls to us)"), {"fields": [
            "in_operator_secret", "in_data_secret", "in_data_iv", "in_sig_secret", "token_ttl_s",
        ]}),
        (_("The partner's address and the secrets it issued (our calls to it)"), {"fields": [
            "base_url", "path_prefix", "out_operator_secret", "out_data_secret", "out_data_iv",
            "out_sig_secret",
        ]}),
        (_("What it sees and how it is served"), {"fields": [
            "all_stations", "stations", "field_renames", "status_interval_s", "credit_yuan",
            "charge_while_owing",
        ]}),
    ]

    @admin.display(description=_("roles"))
    def roles(self, obj: Partner) -> str:
        names = [str(label) for flag, label in (
            (obj.is_customer_operator, _("customer-owning")),
            (obj.is_infrastructure, _("infrastructure")),
            (obj.is_regulator, _("regulator")),
        ) if flag]
        return ", ".join(names)

    @admin.display(description=_("waiting pushes"))
    def pending(self, obj: Partner) -> int:
        return obj.pushes.filter(state=Push.State.PENDING).count()

    @admin.display(description=_("dead pushes"))
    def dead(self, obj: Partner):
        count = obj.pushes.filter(state=Push.State.DEAD).count()
        if not count:
            return 0
        return format_html('<a href="../push/?state__exact=dead&partner__id__exact={}">{}</a>',
                           obj.pk, count)

    @admin.action(description=_("Push settled orders in a date range now (regulators)"), permissions=["change"])
    def push_orders(self, request, queryset):
        form = PushRangeForm(request.POST if "start" in request.POST else None)
        if not form.is_valid():
            return render(request, "admin/cec/push_orders.html", {
                "form": form, "partners": queryset, "title": _("Push settled orders"),
                "opts": self.model._meta, "action": "push_orders",
            })
        start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=convert.CHINA)
        end = datetime.combine(form.cleaned_data["end"], time.min, tzinfo=convert.CHINA) + timedelta(days=1)
        total = 0
        for partner in queryset.filter(is_regulator=True, enabled=True):
            total += pushes.orders_push(regulator=partner, settled_from=start, settled_to=end)
        self.message_user(request, _("%(n)d order pushes queued.") % {"n": total}, messages.SUCCESS)
        return None

    @admin.action(description=_("Push our stations now (regulators)"), permissions=["change"])
    def push_stations(self, request, queryset):
        regulators = queryset.filter(is_regulator=True, enabled=True).exclude(base_url="")
        total = len(pushes.stations_to_regulators(regulators=regulators, resend=True))
        self.message_user(request, _("%(n)d station pushes queued.") % {"n": total}, messages.SUCCESS)


@admin.register(Push)
class PushAdmin(admin.ModelAdmin):
    list_display = ["created_at", "partner", "interface", "key", "state", "attempts", "last_ret",
                    "last_error", "next_attempt_at"]
    list_filter = ["state", "interface", "partner"]
    search_fields = ["key"]
    actions = ["retry"]
    readonly_fields = [f.name for f in Push._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send again now"), permissions=["review"])
    def retry(self, request, queryset):
        count = 0
        for push in queryset.exclude(state=Push.State.DONE):
            pushes.push_retry(push_id=push.pk)
            count += 1
        self.message_user(request, _("%(n)d pushes queued again.") % {"n": count}, messages.SUCCESS)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("partner")

    def has_review_permission(self, request):
        """The actions change state: the model's change permission (the admin itself is
        read-only, so Django's has_change_permission is always False here)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")
