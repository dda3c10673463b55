from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_public_schema_name

from evplatform.admin_sites import platform_admin_site
from evplatform.crypto import mask

from . import open_platform
from .models import (
    CodeTemplate,
    Domain,
    MiniProgram,
    OpenPlatform,
    Operator,
    RefusedPileLogin,
    ServiceProvider,
)
from .services import operator_create, operator_set_status, registry_assign


def operators_only():
    """Operators, never the platform's own (public) row."""
    return Operator.objects.exclude(schema_name=get_public_schema_name())


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ["domain", "is_primary"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        labels = {"domain": _("host name"), "is_primary": _("primary host")}
        if field is not None and db_field.name in labels:
            field.label = labels[db_field.name]
        return field


class OperatorCreateForm(forms.Form):
    """What ``manage.py create_operator`` asks for."""

    name = forms.CharField(label=_("name"), max_length=100)
    slug = forms.SlugField(label=_("slug"), max_length=41,
                           help_text=_("Lower-case letters, digits and hyphens; also the schema's name."))
    domain = forms.CharField(label=_("host name"), max_length=253,
                             help_text=_("Where its admin is served, e.g. lvyuan.example.com."))
    time_zone = forms.CharField(label=_("time zone"), initial="Asia/Shanghai", max_length=64)
    admin_username = forms.CharField(label=_("operator admin's user name"), max_length=150)
    admin_password = forms.CharField(
        label=_("operator admin's password"), required=False, widget=forms.PasswordInput,
        help_text=_("Leave empty to generate one; it is shown once."))
    contact_name = forms.CharField(label=_("contact name"), max_length=50, required=False)
    contact_phone = forms.CharField(label=_("contact phone"), max_length=30, required=False)


class StatusChangeForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200,
                             help_text=_("Kept in the operator's history."))


class SecretInput(forms.PasswordInput):
    """Shows a masked hint, never the secret; an empty submission keeps the old value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, render_value=False, **kwargs)


class MiniProgramForm(forms.ModelForm):
    class Meta:
        model = MiniProgram
        fields = [
            "operator", "appid", "name", "app_secret", "mchid", "apiv3_key",
            "merchant_cert_serial", "merchant_private_key", "wechatpay_public_key",
            "wechatpay_public_key_id", "notify_base_url",
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
    list_display = ["name", "slug", "status", "time_zone", "commission_percent", "wechatpay_partner_mode",
                    "contact_name",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "contact_name", "contact_phone"]
    # The schema is the operator's data: shown, never edited; status changes through the
    # suspend/resume actions (with a reason).
    fields = ["name", "slug", "status", "schema", "time_zone", "contact_name", "contact_phone",
              "contact_email", "wechatpay_partner_mode", "wechatpay_sub_mchid", "created_at"]
    readonly_fields = ["schema", "created_at"]
    inlines = [DomainInline]
    actions = ["suspend", "resume"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name=get_public_schema_name())

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["slug", "status"] if obj else [])

    @admin.display(description=_("schema name"))
    def schema(self, obj):
        return obj.schema_name

    def has_delete_permission(self, request, obj=None):
        # Deleting an operator drops its schema: never a click in the admin.
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self):
        return [
            path("add/", self.admin_site.admin_view(self.create_view), name="tenants_operator_add"),
        ] + super().get_urls()

    def create_view(self, request):
        """A new operator through the provisioning service (schema cloned from the
        template), as ``manage.py create_operator`` does; says how long it took."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = OperatorCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = operator_create(**form.cleaned_data | {
                    "admin_password": form.cleaned_data["admin_password"] or None})
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.log_addition(request, result.operator, [{"added": {}}])
                text = gettext("Operator %(name)s is ready at %(domain)s (provisioned in %(s).1f s).") % {
                    "name": result.operator.name, "domain": form.cleaned_data["domain"],
                    "s": result.seconds}
                if result.admin_password:
                    text += " " + gettext("Operator admin's password: %(p)s — shown once.") % {
                        "p": result.admin_password}
                self.message_user(request, text, messages.SUCCESS)
                return redirect("platform_admin:tenants_operator_change", result.operator.pk)
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": _("New operator"),
                   "explain": _("Creates the operator's schema from the template, its host and "
                                "its operator admin, in a few seconds.")}
        return TemplateResponse(request, "admin/tenants/operator/form_page.html", context)

    def has_add_permission(self, request):
        return self.has_view_or_change_permission(request)

    def _status_change(self, request, queryset, status, title, done):
        """Suspend or resume after a confirmation page with a reason."""
        form = StatusChangeForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            for operator in queryset:
                operator_set_status(operator=operator, status=status)
                self.log_change(request, operator, gettext("%(title)s: %(reason)s") % {
                    "title": title, "reason": form.cleaned_data["reason"]})
            self.message_user(request, done, messages.SUCCESS)
            return None
        context = {**self.admin_site.each_context(request), "form": form, "title": title,
                   "opts": self.model._meta, "operators": queryset,
                   "action": request.POST.get("action"),
                   "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                   "explain": _("Their drivers' app answers “suspended” and their piles are "
                                "refused until they are resumed.")
                   if status == Operator.Status.SUSPENDED else ""}
        return TemplateResponse(request, "admin/tenants/operator/status_confirm.html", context)

    @admin.action(description=_("Suspend selected operators"), permissions=["change"])
    def suspend(self, request, queryset):
        return self._status_change(request, queryset, Operator.Status.SUSPENDED,
                                   _("Suspend operators"), _("Suspended."))

    @admin.action(description=_("Resume selected operators"), permissions=["change"])
    def resume(self, request, queryset):
        return self._status_change(request, queryset, Operator.Status.ACTIVE,
                                   _("Resume operators"), _("Resumed."))


class SecretsForm(forms.ModelForm):
    """Secrets as password inputs showing only a mask; empty keeps the stored value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self._meta.model.SECRET_FIELDS:
            if field not in self.fields:
                continue
            self.fields[field].widget = SecretInput(attrs={"autocomplete": "new-password"})
            current = getattr(self.instance, field, "") if self.instance.pk else ""
            if current:
                self.fields[field].required = False
                self.fields[field].help_text = _("Set: %(mask)s. Leave empty to keep.") % {
                    "mask": mask(current)
                }

    def clean(self):
        cleaned = super().clean()
        for field in self._meta.model.SECRET_FIELDS:
            if not cleaned.get(field) and self.instance.pk:
                cleaned[field] = getattr(self.instance, field)
        return cleaned


def _run(modeladmin, request, queryset, action, done: str) -> None:
    """Apply ``action(mini_program)`` to each selected one; report successes and failures."""
    ok, failed = 0, []
    for mp in queryset.select_related("operator"):
        try:
            action(mp)
            ok += 1
        except open_platform.OpenPlatformError as exc:
            failed.append(f"{mp.appid}: {exc}")
    if ok:
        modeladmin.message_user(request, done % {"count": ok}, messages.SUCCESS)
    for line in failed:
        modeladmin.message_user(request, line, messages.ERROR)


@admin.register(MiniProgram, site=platform_admin_site)
class MiniProgramAdmin(admin.ModelAdmin):
    """Every operator's mini-programs in one table: authorisation, the committed version,
    its audit and the released version (tenants.open_platform), with bulk actions."""

    form = MiniProgramForm
    list_display = [
        "appid", "display_name", "operator", "pay_ready", "authorization", "committed_version",
        "audit_status", "audit_reason_short", "released_version", "released_at", "last_error",
    ]
    list_filter = ["authorization", "audit_status", "operator"]
    search_fields = ["appid", "name", "mchid", "operator__name"]
    readonly_fields = [
        "authorization", "authorized_at", "authorizer_token_expires_at", "committed_template",
        "committed_version", "committed_at", "audit_id", "audit_status", "audit_version",
        "audit_reason", "audit_submitted_at", "audit_finished_at", "released_version",
        "released_at", "last_error",
    ]
    actions = ["commit_latest", "commit_and_submit_latest", "submit_audit", "refresh_audit",
               "release"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "operator":
            kwargs["queryset"] = operators_only()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(boolean=True, description=_("WeChat Pay ready"))
    def pay_ready(self, obj):
        return obj.pay_configured

    @admin.display(description=_("name"))
    def display_name(self, obj):
        return obj.display_name

    @admin.display(description=_("audit result reason"))
    def audit_reason_short(self, obj):
        return (obj.audit_reason or "")[:60]

    @staticmethod
    def _latest(request, modeladmin):
        template = CodeTemplate.objects.order_by("-template_id").first()
        if template is None:
            modeladmin.message_user(request, _("No code template yet: add one first."), messages.ERROR)
        return template

    @admin.action(description=_("Commit the latest code template"), permissions=["change"])
    def commit_latest(self, request, queryset):
        if template := self._latest(request, self):
            _run(self, request, queryset,
                 lambda mp: open_platform.code_commit(mini_program=mp, template=template),
                 _("Committed %(count)d mini-program(s)."))

    @admin.action(description=_("Commit the latest code template and submit for audit"), permissions=["change"])
    def commit_and_submit_latest(self, request, queryset):
        def both(mp):
            open_platform.code_commit(mini_program=mp, template=template)
            open_platform.code_submit_audit(mini_program=mp)

        if template := self._latest(request, self):
            _run(self, request, queryset, both, _("Committed and submitted %(count)d mini-program(s)."))

    @admin.action(description=_("Submit the committed version for audit"), permissions=["change"])
    def submit_audit(self, request, queryset):
        _run(self, request, queryset, lambda mp: open_platform.code_submit_audit(mini_program=mp),
             _("Submitted %(count)d mini-program(s) for audit."))

    @admin.action(description=_("Ask WeChat for the audit state"), permissions=["change"])
    def refresh_audit(self, request, queryset):
        _run(self, request, queryset, lambda mp: open_platform.code_audit_refresh(mini_program=mp),
             _("Audit state of %(count)d mini-program(s) refreshed."))

    @admin.action(description=_("Release the approved version"), permissions=["change"])
    def release(self, request, queryset):
        _run(self, request, queryset, lambda mp: open_platform.code_release(mini_program=mp),
             _("Released %(count)d mini-program(s)."))


class OpenPlatformForm(SecretsForm):
    class Meta:
        model = OpenPlatform
        fields = ["component_appid", "component_appsecret", "token", "encoding_aes_key",
                  "public_base_url", "api_base_url"]


@admin.register(OpenPlatform, site=platform_admin_site)
class OpenPlatformAdmin(admin.ModelAdmin):
    """The third-party platform's settings, the ticket WeChat last pushed, and the link an
    operator's administrator opens to authorise a mini-program."""

    form = OpenPlatformForm
    list_display = ["component_appid", "verify_ticket_at", "access_token_expires_at", "updated_at"]
    readonly_fields = ["verify_ticket_at", "access_token_expires_at", "authorization_link"]

    def has_add_permission(self, request):
        return not OpenPlatform.objects.exists()

    @admin.display(description=_("authorisation link for operators"))
    def authorization_link(self, obj):
        from django.urls import reverse
        from django.utils.html import format_html

        if not obj.pk or not obj.verify_ticket:
            return _("Available once WeChat has pushed a component_verify_ticket.")
        base = (obj.public_base_url or "").rstrip("/")
        try:
            url = open_platform.authorization_url(
                redirect_uri=f"{base}{reverse('component-authorized', urlconf='evplatform.urls_public')}"
            )
        except open_platform.OpenPlatformError as exc:
            return str(exc)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)


class ServiceProviderForm(SecretsForm):
    class Meta:
        model = ServiceProvider
        fields = ["sp_mchid", "sp_appid", "merchant_name", "apiv3_key", "merchant_cert_serial",
                  "merchant_private_key", "wechatpay_public_key", "wechatpay_public_key_id",
                  "commission_by_profit_sharing"]


@admin.register(ServiceProvider, site=platform_admin_site)
class ServiceProviderAdmin(admin.ModelAdmin):
    """The platform's WeChat Pay service-provider account (服务商): operators switched to
    service-provider mode take payments as its sub-merchants."""

    form = ServiceProviderForm
    list_display = ["sp_mchid", "sp_appid", "merchant_name", "commission_by_profit_sharing",
                    "partner_operators", "updated_at"]

    def has_add_permission(self, request):
        return not ServiceProvider.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("operators in service-provider mode"))
    def partner_operators(self, obj):
        return operators_only().filter(wechatpay_partner_mode=True).count()


@admin.register(CodeTemplate, site=platform_admin_site)
class CodeTemplateAdmin(admin.ModelAdmin):
    """Versions of the drivers' mini-program in the template library. Add one from a draft
    uploaded with WeChat's developer tools (the ``mp-weixin`` build of ``make miniprogram``)."""

    list_display = ["template_id", "user_version", "user_desc", "draft_id", "created_at"]
    readonly_fields = ["template_id", "user_version", "user_desc", "created_at"]
    fields = ["draft_id", *readonly_fields]

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        made = open_platform.template_add_from_draft(draft_id=form.cleaned_data["draft_id"])
        obj.pk = made.pk
        obj.template_id, obj.user_version, obj.user_desc = made.template_id, made.user_version, made.user_desc

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "draft_id" in form.base_fields:
            form.base_fields["draft_id"].required = True
        return form

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except open_platform.OpenPlatformError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.path)


class OperatorFilter(admin.SimpleListFilter):
    title = _("operator")
    parameter_name = "operator"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in operators_only().order_by("name").values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(operator__pk=int(value)) if value and value.isdigit() else queryset


class RegisterForm(forms.Form):
    operator = forms.ModelChoiceField(label=_("operator"), queryset=Operator.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = operators_only().order_by("name")


@admin.register(RefusedPileLogin, site=platform_admin_site)
class RefusedPileLoginAdmin(admin.ModelAdmin):
    """Piles the gateways turned away. "Register to an operator" puts a listed code in the
    pile registry under the chosen operator (never a code another operator holds); the
    operator's staff then add the pile to a station and it gets in at its next login."""

    list_display = ["pile_code", "reason", "operator", "peer", "firmware_version",
                    "first_seen_at", "last_seen_at", "count"]
    list_filter = ["reason", OperatorFilter]
    search_fields = ["=pile_code", "peer"]
    readonly_fields = list_display
    actions = ["register_to_operator"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Register the codes to an operator"), permissions=["change"])
    def register_to_operator(self, request, queryset):
        form = RegisterForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            operator = form.cleaned_data["operator"]
            done, held = registry_assign(codes=list(queryset.values_list("pile_code", flat=True)),
                                         operator=operator)
            queryset.filter(pile_code__in=done).update(
                operator=operator, reason=RefusedPileLogin.Reason.NOT_IN_ESTATE)
            if done:
                self.message_user(request, gettext("%(n)d codes registered to %(operator)s: %(codes)s.") % {
                    "n": len(done), "operator": operator.name, "codes": ", ".join(done)}, messages.SUCCESS)
            if held:
                self.message_user(request, gettext("Not registered, held by another operator: %(codes)s.") % {
                    "codes": ", ".join(held)}, messages.ERROR)
            return None
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "rows": list(queryset), "title": _("Register the codes to an operator")}
        return TemplateResponse(request, "admin/tenants/refusedpilelogin/register.html", context)


@admin.register(RefusedPileLogin)
class OperatorRefusedPileLoginAdmin(admin.ModelAdmin):
    """In an operator's admin: refused logins of the operator's own piles (disabled, or
    registered but missing from its piles)."""

    list_display = ["pile_code", "reason", "peer", "firmware_version", "last_seen_at", "count", "add_pile"]
    list_filter = ["reason"]
    search_fields = ["=pile_code"]
    readonly_fields = list_display

    @admin.display(description=_("pile"))
    def add_pile(self, obj: RefusedPileLogin) -> str:
        """A code registered to this operator but missing from its piles: a link to add it."""
        from django.urls import NoReverseMatch, reverse
        from django.utils.html import format_html

        if obj.reason != RefusedPileLogin.Reason.NOT_IN_ESTATE:
            return "—"
        try:
            url = reverse("admin:stations_pile_add")
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}?code={}">{}</a>', url, obj.pile_code, gettext("Add this pile"))

    def get_queryset(self, request):
        return super().get_queryset(request).filter(operator__schema_name=connection.schema_name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
