"""Operator admin for stations, piles, connectors and faults.

Station owners (站长) see and edit only the stations they own (``Station.owners``) and
what hangs off them: every queryset here (lists, detail pages, exports, actions, choices
of related objects) is narrowed to them, and another station's object by direct URL is a
404. Operator admins (superusers of the tenant, or the 平台管理员 group) see everything;
only they import. Pile writes go through ``stations.services`` (public registry).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from . import selectors, services
from .labels import LabelError, labels_pdf
from .models import Connector, Fault, OperatorSettings, Pile, Station
from .resources import ConnectorResource, PileResource, StationResource


class OwnerScopeMixin:
    """Narrows a ModelAdmin to the stations the user may see (``owner_path`` leads from
    the model to ``Station.owners``); another station's object is a 404."""

    owner_path = ""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if selectors.sees_all_stations(request.user):
            return qs
        return qs.filter(**{self.owner_path: request.user})

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:  # missing or someone else's: the same answer, so nothing leaks
            raise Http404(_("Not found."))
        return obj


class OwnerScopedAdmin(OwnerScopeMixin, ImportExportModelAdmin):
    """Owner scoping plus import (operator admins only) and export (XLSX, CSV)."""

    formats = [XLSX, CSV]

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)

    def has_import_permission(self, request):
        return selectors.sees_all_stations(request.user) and super().has_import_permission(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not selectors.sees_all_stations(request.user):
            if db_field.related_model is Station:
                kwargs["queryset"] = selectors.stations_visible_to(request.user)
            elif db_field.related_model is Pile:
                kwargs["queryset"] = Pile.objects.filter(station__owners=request.user)
            elif db_field.related_model is Connector:
                kwargs["queryset"] = Connector.objects.filter(pile__station__owners=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.action(description=_("Print QR labels (PDF)"))
def print_qr_labels(modeladmin, request, queryset):
    """A PDF with one label per connector of the selected stations or connectors."""
    model = queryset.model
    connectors = Connector.objects.select_related("pile__station").order_by(
        "pile__station__name", "pile__code", "number"
    )
    if model is Station:
        connectors = connectors.filter(pile__station__in=queryset)
    else:
        connectors = connectors.filter(pk__in=queryset.values("pk"))
    try:
        pdf = labels_pdf(connectors)
    except LabelError as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
        return None
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="qr-labels.pdf"'
    return response


@admin.register(Station)
class StationAdmin(OwnerScopedAdmin):
    owner_path = "owners"
    resource_classes = [StationResource]
    list_display = ["name", "code", "city", "status", "connectors_free", "updated_at"]
    list_filter = ["status", "station_type", "city"]
    search_fields = ["name", "code", "address", "city"]
    filter_horizontal = ["owners"]
    actions = [print_qr_labels]
    readonly_fields = ["price_today", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not selectors.sees_all_stations(request.user):
            fields += ["owners", "code"]  # an owner cannot hand stations around
        return fields

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        # Free/total connectors of the whole page in one query.
        ids = [s.pk for s in cl.result_list]
        free = Q(piles__connectors__status__in=selectors.FREE_STATUSES, piles__online=True)
        counts = {
            row["pk"]: row
            for row in Station.objects.filter(pk__in=ids)
            .annotate(total=Count("piles__connectors"), free=Count("piles__connectors", filter=free))
            .values("pk", "total", "free")
        }
        for s in cl.result_list:
            s._counts = counts.get(s.pk, {"free": 0, "total": 0})
        return cl

    @admin.display(description=_("free / total connectors"))
    def connectors_free(self, obj):
        counts = getattr(obj, "_counts", None)
        return f"{counts['free']} / {counts['total']}" if counts else "-"


class ConnectorInline(admin.TabularInline):
    model = Connector
    extra = 0
    fields = ["number", "connector_type", "rated_power_kw", "rated_voltage_v", "rated_current_a", "qr_code", "status"]
    readonly_fields = ["status"]


class FaultInline(admin.TabularInline):
    model = Fault
    extra = 0
    fields = ["source", "code", "connector", "description", "started_at", "cleared_at"]
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(cleared_at__isnull=True)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Pile)
class PileAdmin(OwnerScopedAdmin):
    owner_path = "station__owners"
    resource_classes = [PileResource]
    list_display = ["code", "name", "station", "protocol", "current_type", "rated_power_kw", "online", "last_frame", "open_faults", "enabled"]
    list_filter = ["online", "enabled", "protocol", "current_type", "station__city"]
    search_fields = ["code", "name", "station__name", "vendor", "iccid"]
    list_select_related = ["station"]
    inlines = [ConnectorInline, FaultInline]
    readonly_fields = ["online", "last_seen_at", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            open_fault_count=Count("faults", filter=Q(faults__cleared_at__isnull=True))
        )

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        seen = selectors.piles_last_seen([p.code for p in cl.result_list])  # one round trip
        for p in cl.result_list:
            p._last_frame = seen.get(p.code)
        return cl

    @admin.display(description=_("last frame (live)"))
    def last_frame(self, obj):
        return getattr(obj, "_last_frame", None) or obj.last_seen_at or "-"

    @admin.display(description=_("open faults"), ordering="open_fault_count")
    def open_faults(self, obj):
        return obj.open_fault_count

    def save_model(self, request, obj, form, change):
        services.pile_save(pile=obj)

    def delete_model(self, request, obj):
        services.pile_delete(pile=obj)

    def delete_queryset(self, request, queryset):
        services.piles_delete(piles=list(queryset))


@admin.register(Connector)
class ConnectorAdmin(OwnerScopedAdmin):
    owner_path = "pile__station__owners"
    resource_classes = [ConnectorResource]
    list_display = ["__str__", "station_name", "connector_type", "rated_power_kw", "live_status", "live_power", "live_voltage", "live_current", "live_soc", "live_updated"]
    list_filter = ["status", "connector_type", "pile__station__city"]
    search_fields = ["pile__code", "qr_code", "pile__station__name"]
    list_select_related = ["pile__station"]
    actions = [print_qr_labels]
    readonly_fields = ["status", "status_changed_at"]

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        states = selectors.connectors_live(list(cl.result_list))  # one Redis round trip
        for c in cl.result_list:
            c._live = states.get(c.pk, {})
        return cl

    def _live_value(self, obj, field):
        value = getattr(obj, "_live", {}).get(field)
        return "-" if value is None else value

    @admin.display(description=_("station"), ordering="pile__station__name")
    def station_name(self, obj):
        return obj.pile.station.name

    @admin.display(description=_("live status"))
    def live_status(self, obj):
        status = self._live_value(obj, "status")
        return Connector.Status(status).label if status in Connector.Status.values else status

    @admin.display(description=_("power (kW)"))
    def live_power(self, obj):
        return self._live_value(obj, "power_kw")

    @admin.display(description=_("voltage (V)"))
    def live_voltage(self, obj):
        return self._live_value(obj, "voltage_v")

    @admin.display(description=_("current (A)"))
    def live_current(self, obj):
        return self._live_value(obj, "current_a")

    @admin.display(description=_("SOC (%)"))
    def live_soc(self, obj):
        return self._live_value(obj, "soc_percent")

    @admin.display(description=_("updated"))
    def live_updated(self, obj):
        return self._live_value(obj, "updated")


@admin.register(Fault)
class FaultAdmin(OwnerScopeMixin, admin.ModelAdmin):
    owner_path = "pile__station__owners"
    list_display = ["pile", "connector", "source", "code", "description", "started_at", "cleared_at"]
    list_filter = ["source", ("cleared_at", admin.EmptyFieldListFilter), "pile__station__city"]
    search_fields = ["pile__code", "code", "description", "pile__station__name"]
    list_select_related = ["pile", "connector__pile"]
    date_hierarchy = "started_at"


@admin.register(OperatorSettings)
class OperatorSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "qr_link_template", "use_wxacode", "wxacode_page"]

    def has_add_permission(self, request):
        return not OperatorSettings.objects.exists() and super().has_add_permission(request)
