"""Operator admin: the pile frame log and session messages (read-only; meter samples are
``charging``'s).

A pile's frame log is ``admin:protocols_framelog_changelist`` with ``?pile_code=<code>``
(the pile admin links there by URL name; nothing imports this module).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import FrameLog, SessionMessage


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PileFilter(admin.SimpleListFilter):
    """By pile: the operator's piles (the URL may also carry ``?pile_code=``)."""

    title = _("pile")
    parameter_name = "pile_code"

    def lookups(self, request, model_admin):
        from stations.models import Pile

        return [(code, name or code) for code, name in
                Pile.objects.order_by("code").values_list("code", "name")[:500]]

    def queryset(self, request, queryset):
        return queryset.filter(pile_code=self.value()) if self.value() else queryset


def _pile_link(code: str):
    from stations.models import Pile

    pile = Pile.objects.filter(code=code).only("pk").first()
    if pile is None:
        return code
    try:
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:stations_pile_change", args=[pile.pk]), code)
    except NoReverseMatch:
        return code


@admin.register(FrameLog)
class FrameLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "pile", "direction", "frame_code", "name", "trade_no", "short_hex"]
    list_filter = [PileFilter, "direction", "name"]
    search_fields = ["=pile_code", "=trade_no"]
    date_hierarchy = "at"
    list_per_page = 100
    show_full_result_count = False  # counting a big log is slow

    @admin.display(description=_("pile"), ordering="pile_code")
    def pile(self, obj):
        return _pile_link(obj.pile_code)

    @admin.display(description=_("frame type"), ordering="frame_type")
    def frame_code(self, obj):
        return obj.frame_code

    @admin.display(description=_("frame (hex)"))
    def short_hex(self, obj):
        return obj.hex if len(obj.hex) <= 64 else obj.hex[:64] + "…"


@admin.register(SessionMessage)
class SessionMessageAdmin(ReadOnlyAdmin):
    list_display = ["trade_no", "at", "pile_code", "connector_no", "name", "data"]
    list_filter = [PileFilter, "name"]
    search_fields = ["=trade_no", "=pile_code"]
    show_full_result_count = False
