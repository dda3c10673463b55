"""The super admin's platform ledger: commission statements per operator and month, with
the totals of the rows shown; build last month's (or rebuild drafts) and confirm."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from evplatform.admin_sites import platform_admin_site
from settlement.splits import SettlementError

from . import services
from .models import CommissionStatement


@admin.register(CommissionStatement, site=platform_admin_site)
class CommissionStatementAdmin(admin.ModelAdmin):
    list_display = ["operator", "month", "commission_percent", "orders", "base", "accrued",
                    "reversed", "net", "collected", "status", "confirmed_at"]
    list_filter = ["status", "month", "operator"]
    list_select_related = ["operator"]
    actions = ["build_last_month", "rebuild", "confirm"]
    readonly_fields = [f.name for f in CommissionStatement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            totals = cl.queryset.aggregate(accrued=Sum("accrued"), reversed=Sum("reversed"), net=Sum("net"))
            response.context_data["subtitle"] = _(
                "Platform ledger: commission taken %(accrued)s, reversed %(reversed)s, net %(net)s yuan"
            ) % {k: v or 0 for k, v in totals.items()}
        return response

    @admin.action(description=_("Build last month's statements for every operator"), permissions=["review"])
    def build_last_month(self, request, queryset):
        month = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
        built = services.commission_statements_build(month=month)
        self.message_user(request, _("%(n)s commission statement(s) built.") % {"n": len(built)},
                          messages.SUCCESS)

    @admin.action(description=_("Rebuild the selected drafts"), permissions=["review"])
    def rebuild(self, request, queryset):
        for statement in queryset:
            services.commission_statement_build(operator=statement.operator, month=statement.month)
        self.message_user(request, _("Rebuilt."), messages.SUCCESS)

    @admin.action(description=_("Confirm the selected statements"), permissions=["review"])
    def confirm(self, request, queryset):
        for statement in queryset:
            try:
                services.commission_statement_confirm(statement_id=statement.pk, user=request.user)
            except SettlementError as exc:
                self.message_user(request, f"{statement}: {exc.detail}", messages.ERROR)

    def has_review_permission(self, request):
        """The actions change state: the model's change permission (the admin itself is
        read-only, so Django's has_change_permission is always False here)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")
