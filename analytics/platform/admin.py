"""The super admin's cross-operator rollups (platform admin site, public host)."""

from django.contrib import admin
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from evplatform.admin_sites import platform_admin_site

from .models import OperatorDay


@admin.register(OperatorDay, site=platform_admin_site)
class OperatorDayAdmin(admin.ModelAdmin):
    list_display = ["day", "operator", "orders", "energy_kwh", "gmv_yuan", "refund_yuan", "piles_online", "piles"]
    list_filter = ["operator"]
    date_hierarchy = "day"
    ordering = ["-day", "operator"]
    list_select_related = ["operator"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        try:
            rows = response.context_data["cl"].queryset
        except (AttributeError, KeyError):
            return response
        totals = rows.aggregate(orders=Sum("orders"), energy=Sum("energy_kwh"), gmv=Sum("gmv_yuan"))
        response.context_data["subtitle"] = _(
            "Total of the rows shown: %(orders)s orders, %(energy)s kWh, GMV %(gmv)s yuan"
        ) % {k: v or 0 for k, v in totals.items()}
        return response
