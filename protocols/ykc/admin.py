"""Admin of the YKC piles' billing-model sync (read-only: the gateway writes it)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy

from .models import PileBillingModel

__all__ = ["PileBillingModelAdmin"]


@admin.register(PileBillingModel)
class PileBillingModelAdmin(admin.ModelAdmin):
    list_display = [
        "pile",
        "model_number_due",
        "model_number_acked",
        "in_sync",
        "last_result",
        "sent_at",
        "acked_at",
    ]
    list_filter = ["last_result"]
    search_fields = ["pile__code"]

    @admin.display(description=gettext_lazy("in sync"), boolean=True)
    def in_sync(self, obj: PileBillingModel) -> bool:
        return (obj.model_number_due, obj.slots_due) == (obj.model_number_acked, obj.slots_acked)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
