from django import forms
from django.contrib import admin, messages
from django.db import connection
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_public_schema_name

from evplatform.admin_sites import platform_admin_site

from .crypto import mask
from .models import Domain, MiniProgram, Operator, RefusedPileLogin
from .services import operator_set_status


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class SecretInput(forms.PasswordInput):
    """Shows a masked hint, never the secret; an empty submission keeps the old value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, render_value=False, **kwargs)


class MiniProgramForm(forms.ModelForm):
    class Meta:
        model = MiniProgram
        fields = [
            "operator", "appid", "app_secret", "mchid", "apiv3_key", "merchant_cert_serial",
            "merchant_private_key", "wechatpay_public_key", "wechatpay_public_key_id",
            "notify_base_url",
        ]
        widgets = {
            field: SecretInput(attrs={"autocomplete": "new-password"})
            for field in MiniProgram.SECRET_FIELDS
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in MiniProgram.SECRET_FIELDS:
            current = getattr(self.instance, field, "") if self.instance.pk else ""
            self.fields[field].required = False
            if current:
                self.fields[field].help_text = _("Set: %(mask)s. Leave empty to keep.") % {
                    "mask": mask(current)
                }

    def clean(self):
        cleaned = super().clean()
        for field in MiniProgram.SECRET_FIELDS:
            if not cleaned.get(field) and self.instance.pk:
                cleaned[field] = getattr(self.instance, field)
        return cleaned


@admin.register(Operator, site=platform_admin_site)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "time_zone", "commission_percent", "contact_name",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "contact_name", "contact_phone"]
    readonly_fields = ["schema_name", "created_at"]
    inlines = [DomainInline]
    actions = ["suspend", "resume"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name=get_public_schema_name())

    def get_readonly_fields(self, request, obj=None):
        # A new operator is provisioned with `create_operator`, which clones the schema.
        return self.readonly_fields + (["slug"] if obj else [])

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Suspend selected operators"))
    def suspend(self, request, queryset):
        for operator in queryset:
            operator_set_status(operator=operator, status=Operator.Status.SUSPENDED)
        self.message_user(request, _("Suspended."), messages.SUCCESS)

    @admin.action(description=_("Resume selected operators"))
    def resume(self, request, queryset):
        for operator in queryset:
            operator_set_status(operator=operator, status=Operator.Status.ACTIVE)
        self.message_user(request, _("Resumed."), messages.SUCCESS)


@admin.register(MiniProgram, site=platform_admin_site)
class MiniProgramAdmin(admin.ModelAdmin):
    form = MiniProgramForm
    list_display = ["appid", "operator", "mchid", "pay_ready", "updated_at"]
    search_fields = ["appid", "mchid", "operator__name"]

    @admin.display(boolean=True, description=_("WeChat Pay ready"))
    def pay_ready(self, obj):
        return obj.pay_configured


@admin.register(RefusedPileLogin, site=platform_admin_site)
class RefusedPileLoginAdmin(admin.ModelAdmin):
    """Piles the YKC gateway turned away; register a listed code to its operator (pile
    registry) and the pile gets in at its next login."""

    list_display = ["pile_code", "reason", "operator", "peer", "firmware_version",
                    "first_seen_at", "last_seen_at", "count"]
    list_filter = ["reason", "operator"]
    search_fields = ["=pile_code", "peer"]
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False


@admin.register(RefusedPileLogin)
class OperatorRefusedPileLoginAdmin(admin.ModelAdmin):
    """In an operator's admin: refused logins of the operator's own piles (disabled, or
    registered but missing from its piles)."""

    list_display = ["pile_code", "reason", "peer", "firmware_version", "last_seen_at", "count"]
    list_filter = ["reason"]
    search_fields = ["=pile_code"]
    readonly_fields = list_display

    def get_queryset(self, request):
        return super().get_queryset(request).filter(operator__schema_name=connection.schema_name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
