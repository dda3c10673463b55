"""Admin for invoicing: the seller and provider settings (secrets masked), the invoice list
with filters and export, review, retry, reject and asking the provider."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.utils.translation import gettext_lazy as _

from evplatform.admin_export import ScopedExportMixin
from evplatform.crypto import mask

from . import services
from .models import Invoice, InvoiceLine, InvoiceOrder, InvoiceSettings

__all__ = ["InvoiceSettingsAdmin", "InvoiceAdmin"]

SECRET_FIELDS = ("app_secret",)


class SettingsForm(forms.ModelForm):
    class Meta:
        model = InvoiceSettings
        fields = [
            "enabled", "auto_issue", "seller_name", "seller_tax_number", "seller_address",
            "seller_phone", "seller_bank_account", "clerk", "invoice_line",
            "electricity_goods_name", "electricity_goods_code", "electricity_tax_rate",
            "service_goods_name", "service_goods_code", "service_tax_rate", "provider", "api_url",
            "token_url", "app_key", "app_secret", "callback_base_url",
        ]
        widgets = {"app_secret": forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in SECRET_FIELDS:
            self.fields[field].required = False
            current = getattr(self.instance, field, "") if self.instance.pk else ""
            if current:
                self.fields[field].help_text = _("Set: %(mask)s. Leave empty to keep.") % {"mask": mask(current)}

    def clean(self):
        cleaned = super().clean()
        for field in SECRET_FIELDS:
            if not cleaned.get(field) and self.instance.pk:
                cleaned[field] = getattr(self.instance, field)
        return cleaned


@admin.register(InvoiceSettings)
class InvoiceSettingsAdmin(admin.ModelAdmin):
    form = SettingsForm
    list_display = ["__str__", "enabled", "auto_issue", "seller_tax_number", "provider", "updated_at"]
    fieldsets = [
        (None, {"fields": ["enabled", "auto_issue"]}),
        (_("Seller"), {"fields": ["seller_name", "seller_tax_number", "seller_address", "seller_phone",
                                  "seller_bank_account", "clerk", "invoice_line"]}),
        (_("Lines"), {"fields": ["electricity_goods_name", "electricity_goods_code", "electricity_tax_rate",
                                 "service_goods_name", "service_goods_code", "service_tax_rate"]}),
        (_("Provider"), {"fields": ["provider", "api_url", "token_url", "app_key", "app_secret",
                                    "callback_base_url"]}),
    ]

    def has_add_permission(self, request):
        return not InvoiceSettings.objects.exists()


class LineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ["goods_name", "goods_code", "tax_rate", "amount", "amount_ex_tax", "tax"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


class OrderInline(admin.TabularInline):
    model = InvoiceOrder
    extra = 0
    can_delete = False
    readonly_fields = ["order_number", "amount", "active"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


class NoteForm(ActionForm):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)


@admin.register(Invoice)
class InvoiceAdmin(ScopedExportMixin, admin.ModelAdmin):
    list_display = ["number", "kind", "status", "title_name", "total", "tax", "invoice_no",
                    "member", "created_at", "issued_at", "needs_reversal"]
    list_filter = ["status", "kind", "title_kind", "needs_reversal", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["number", "invoice_no", "title_name", "tax_number", "orders__order_number",
                     "member__openid", "member__phone"]
    date_hierarchy = "created_at"
    list_select_related = ["member"]
    inlines = [LineInline, OrderInline]
    action_form = NoteForm
    actions = ["approve", "reject", "retry", "ask_provider"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]

    def _each(self, request, queryset, fn, done_message):
        done = 0
        for invoice in queryset:
            try:
                fn(invoice)
                done += 1
            except services.InvoiceError as exc:
                self.message_user(request, f"{invoice}: {exc.detail}", messages.WARNING)
        self.message_user(request, done_message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Approve selected for issue"), permissions=["change"])
    def approve(self, request, queryset):
        self._each(request, queryset, lambda i: services.invoice_review(
            invoice=i, approve=True, reviewer=request.user, note=request.POST.get("reason", "")
        ), _("%(n)d approved."))

    @admin.action(description=_("Reject selected (reason required)"), permissions=["change"])
    def reject(self, request, queryset):
        reason = request.POST.get("reason", "")
        if not reason:
            self.message_user(request, _("Give a reason to reject."), messages.ERROR)
            return
        self._each(request, queryset, lambda i: services.invoice_reject(
            invoice=i, user=request.user, note=reason
        ), _("%(n)d rejected."))

    @admin.action(description=_("Retry selected failed requests"), permissions=["change"])
    def retry(self, request, queryset):
        self._each(request, queryset, lambda i: services.invoice_retry(invoice=i, user=request.user),
                   _("%(n)d queued again."))

    @admin.action(description=_("Ask the provider for the state now"), permissions=["change"])
    def ask_provider(self, request, queryset):
        self._each(request, queryset, lambda i: services.invoice_sync(invoice_id=i.pk), _("%(n)d asked."))
