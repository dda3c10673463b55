"""Operator admin for stations, piles, connectors and faults.

Station owners (站长) see and edit only the stations they own (``Station.owners``) and
what hangs off them: every queryset here (lists, detail pages, exports, actions, choices
of related objects) is narrowed to them, and another station's object by direct URL is a
404. Operator admins (superusers of the tenant, or the 平台管理员 group) see everything;
only they import. Pile writes go through ``stations.services`` (public registry).
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import URLValidator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportMixin
from import_export.formats.base_formats import CSV, XLSX

from evplatform.admin_display import html_table, period_name
from evplatform.admin_export import ScopedExportMixin

from . import selectors, services
from .labels import LabelError, labels_pdf
from .models import (
    Connector,
    Fault,
    OperatorSettings,
    PartnerConnector,
    PartnerStation,
    Pile,
    Station,
)
from .resources import RESOURCES, ConnectorResource, PileResource, StationResource, template_xlsx


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


class OwnerScopedAdmin(OwnerScopeMixin, ImportMixin, ScopedExportMixin, admin.ModelAdmin):
    """Owner scoping plus import (operator admins only) and export (XLSX, CSV; the export
    permission, the owner's own rows). The import page offers the sheet's template
    (``import-template/``: Chinese headers, the code lists explained) and states every row
    error in words, never a traceback."""

    formats = [XLSX, CSV]
    import_export_change_list_template = "admin/import_export/change_list_import_export.html"
    import_template_name = "admin/stations/import.html"
    import_error_display = ("message",)

    def get_urls(self):
        from django.urls import path

        info = self.opts.app_label, self.opts.model_name
        return [
            path("import-template/", self.admin_site.admin_view(self.import_template_view),
                 name=f"{info[0]}_{info[1]}_import_template"),
            *super().get_urls(),
        ]

    def import_kind(self) -> str:
        return next(kind for kind, resource in RESOURCES.items() if resource in self.resource_classes)

    def import_template_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        kind = self.import_kind()
        response = HttpResponse(
            template_xlsx(kind),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{kind}-template.xlsx"'
        return response

    def get_import_context_data(self, **kwargs):
        context = super().get_import_context_data(**kwargs)
        context["template_url"] = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import_template")
        resource = RESOURCES[self.import_kind()]()
        context["import_columns"] = [(resource.column_label(n), n) for n in resource.column_names()]
        context["column_titles"] = resource.column_titles()
        return context

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


class VisibleStationFilter(admin.SimpleListFilter):
    """By station, offering only the stations the user may see (a station owner's own):
    Django's related-field filter would list every station of the operator."""

    title = _("station")
    parameter_name = "station"
    station_path = "station"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in
                selectors.stations_visible_to(request.user).order_by("name").values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{f"{self.station_path}__pk": int(value)})
        return queryset


class VisibleCityFilter(admin.SimpleListFilter):
    """By city, offering only the cities of the stations the user may see."""

    title = _("city")
    parameter_name = "city"
    city_path = "station__city"

    def lookups(self, request, model_admin):
        cities = (selectors.stations_visible_to(request.user).exclude(city="")
                  .order_by("city").values_list("city", flat=True).distinct())
        return [(c, c) for c in cities]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.city_path: self.value()}) if self.value() else queryset


class PileCityFilter(VisibleCityFilter):
    city_path = "pile__station__city"


class StationCityFilter(VisibleCityFilter):
    city_path = "city"


class ConnectorCityFilter(VisibleCityFilter):
    city_path = "pile__station__city"


@admin.action(description=_("Print QR labels (PDF)"), permissions=["view"])
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


class LinesField(forms.CharField):
    """A list of labels or URLs edited one per line (stored as a JSON list)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def __init__(self, *args, item_validator=None, **kwargs):
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        self.item_validator = item_validator
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        return "\n".join(str(v) for v in value) if isinstance(value, list) else value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return [line.strip() for line in (value or "").replace("、", "\n").splitlines() if line.strip()]

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        for item in value:
            if self.item_validator:
                self.item_validator(item)

    def has_changed(self, initial, data):
        return (initial or []) != self.to_python(data)


AMAP_PICKER = "https://lbs.amap.com/tools/picker"


class StationForm(forms.ModelForm):
    facilities = LinesField(label=_("service facilities"), required=False,
                            help_text=_("One per line, e.g. 卫生间, 便利店, 休息室."))
    photos = LinesField(label=_("photos"), required=False, item_validator=URLValidator(),
                        help_text=_("Image addresses (https://…), one per line."))

    class Meta:
        model = Station
        fields = [
            "name", "code", "status", "station_type", "owners", "address", "province", "city",
            "district", "area_code", "latitude", "longitude", "time_zone", "opening_hours",
            "phone", "parking_fee_note", "facilities", "photos", "pile_networks",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "latitude" in self.fields:  # the coordinates picker: Amap's, in a new tab
            self.fields["latitude"].help_text = format_html(
                '{} <a href="{}" target="_blank" rel="noopener">{}</a>',
                _("GCJ-02, as WeChat and Amap show it."), AMAP_PICKER, _("Pick on the Amap map"),
            )


class PileInline(admin.TabularInline):
    """The station's piles and their connectors at a glance; a pile is edited on its own
    page (its code goes through the platform's pile registry)."""

    model = Pile
    extra = 0
    fields = ["pile_link", "name", "current_type", "rated_power_kw", "power_cap_kw", "online",
              "connectors_now"]
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("connectors")

    @admin.display(description=_("pile code"))
    def pile_link(self, obj):
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:stations_pile_change", args=[obj.pk]), obj.code)

    @admin.display(description=_("connectors"))
    def connectors_now(self, obj):
        return format_html_join(
            "；", "{}",
            ((_("Connector %(n)s: %(status)s") % {"n": c.number, "status": c.get_status_display()},)
             for c in sorted(obj.connectors.all(), key=lambda c: c.number)),
        ) or "-"


@admin.register(Station)
class StationAdmin(OwnerScopedAdmin):
    owner_path = "owners"
    form = StationForm
    resource_classes = [StationResource]
    list_display = ["name", "code", "city", "status", "connectors_free", "updated_at"]
    list_filter = ["status", "station_type", StationCityFilter]
    search_fields = ["name", "code", "address", "city"]
    filter_horizontal = ["owners"]
    actions = [print_qr_labels]
    inlines = [PileInline]
    readonly_fields = ["prices_today", "map_link", "power_caps_now", "power_plan_latest",
                       "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "code", "status", "station_type", "owners"]}),
        (_("Where"), {"fields": ["address", "province", "city", "district", "area_code",
                                 "latitude", "longitude", "map_link", "time_zone"]}),
        (_("For drivers"), {"fields": ["opening_hours", "phone", "parking_fee_note",
                                       "facilities", "photos"]}),
        (_("Today's prices"), {"fields": ["prices_today"]}),
        (_("Load management"), {"fields": ["max_power_kw", "power_sharing", "power_caps_now",
                                           "power_plan_latest"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            # The status, or a pile enabled inline, may have changed what partners see; the
            # push task sends only the connectors whose status they saw differs.
            services.station_availability_changed(form.instance.pk)

    @staticmethod
    def _latest_plan(obj):
        """The station's latest ``charging.PowerPlan`` (read once per page: both load
        fields show it), or None."""
        if obj is None or obj.pk is None:
            return None
        if not hasattr(obj, "_latest_plan"):
            obj._latest_plan = obj.power_plans.first()
        return obj._latest_plan

    @admin.display(description=_("power caps now"))
    def power_caps_now(self, obj):
        """Each pile's acknowledged cap; the sum against the limit counts the piles the
        latest plan shared the limit among (those charging), not idle piles, whose last cap
        only stands until their next start re-plans the station (the plans themselves:
        Charging › Power plans)."""
        if obj is None or obj.pk is None or obj.max_power_kw is None:
            return _("No limit: piles run at their rating.")
        piles = [p for p in obj.piles.order_by("code") if p.power_cap_kw is not None]
        if not piles:
            return _("No cap sent yet.")
        plan = self._latest_plan(obj)
        running = {row.get("pile") for row in plan.caps} if plan is not None else set()
        sharing = [p for p in piles if p.code in running]
        idle = [p for p in piles if p.code not in running]
        total = sum((p.power_cap_kw for p in sharing), Decimal("0"))
        parts = [format_html_join("；", "{} {} kW", ((p.code, p.power_cap_kw) for p in sharing)),
                 _("Σ %(total)s kW of %(limit)s kW") % {"total": total,
                                                         "limit": obj.max_power_kw}]
        if idle:
            parts.append(format_html(
                "{}{}", _("Idle, last cap until their next start: "),
                format_html_join("；", "{} {} kW", ((p.code, p.power_cap_kw) for p in idle))))
        return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts))

    @admin.display(description=_("latest power plan"))
    def power_plan_latest(self, obj):
        """The station's latest re-plan (``charging.PowerPlan``, read through the reverse
        relation ``power_plans``): when and why, each pile's cap asked and held, its weight
        and priority, and the piles left waiting for power."""
        plan = self._latest_plan(obj)
        if plan is None:
            return _("No plan yet.")
        reasons = {"svip": _("SVIP"), "fleet": _("fleet"), "departure": _("leaving soon")}
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((row.get("pile"), row.get("cap_kw") or "—", row.get("believed_kw") or "—",
              row.get("weight") or "1",
              "、".join(str(reasons.get(r, r)) for r in row.get("priority") or []) or "—",
              _("not taken") if row.get("ok") is False else _("held"))
             for row in plan.caps),
        )
        return format_html(
            '<div class="power-plan">{}<table><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>{}</div>",
            _("%(at)s · %(reason)s · Σ %(total)s kW of %(limit)s kW") % {
                "at": timezone.localtime(plan.at).strftime("%Y-%m-%d %H:%M:%S"),
                "reason": plan.reason or "—", "total": plan.total_kw, "limit": plan.limit_kw},
            _("pile"), _("cap asked (kW)"), _("cap held (kW)"), _("weight"), _("priority"),
            _("state"), rows,
            format_html("<p>{} {}</p>", _("Waiting for power:"), "、".join(plan.unserved))
            if plan.unserved else "",
        )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "owners":  # only staff in the station-owner role
            from accounts.roles import STATION_OWNER, role_group

            kwargs["queryset"] = role_group(STATION_OWNER).user_set.order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("map"))
    def map_link(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        url = (f"https://uri.amap.com/marker?position={obj.longitude},{obj.latitude}"
               f"&name={obj.name}&coordinate=gaode")
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url,
                           _("Show on the Amap map"))

    @admin.display(description=_("today's prices"))
    def prices_today(self, obj):
        today = obj.price_today if obj else None
        if not today or not today.get("periods"):
            return _("No tariff in effect.")
        rows = []
        for p in today["periods"]:
            electricity, service = p.get("electricity", "0"), p.get("service", "0")
            total = f"{float(electricity) + float(service):.5f}" if electricity and service else "-"
            rows.append([f"{p.get('start')}–{p.get('end')}", period_name(p.get("period", "")),
                         electricity, service, total])
        return format_html("<p>{}</p>{}", today.get("date", ""), html_table(
            [_("time"), _("period"), _("electricity price (yuan/kWh)"),
             _("service price (yuan/kWh)"), _("total (yuan/kWh)")], rows))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not selectors.sees_all_stations(request.user):
            # An owner cannot hand stations around nor open them to other addresses.
            fields += ["owners", "code", "pile_networks", "power_sharing"]
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
    fields = ["severity", "source", "connector", "description", "protocol_code", "started_at",
              "last_seen_at", "cleared_at"]
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(cleared_at__isnull=True)

    def has_add_permission(self, request, obj=None):
        return False


class PileAdminForm(forms.ModelForm):
    """The pile form: the OCPP password is typed in clear and stored hashed (never shown)."""

    new_ocpp_password = forms.CharField(
        label=_("new OCPP password"), required=False, strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("OCPP security profile 1: set or replace the pile's HTTP Basic password "
                    "(stored hashed). Leave empty to keep the current one."))
    clear_ocpp_password = forms.BooleanField(label=_("ask no OCPP password"), required=False)

    class Meta:
        model = Pile
        exclude = ["ocpp_password"]  # noqa: DJ006 (every field, as before, but the hash)


@admin.register(Pile)
class PileAdmin(OwnerScopedAdmin):
    owner_path = "station__owners"
    form = PileAdminForm
    resource_classes = [PileResource]
    list_display = ["code", "station", "current_type", "rated_power_kw", "online", "last_frame", "open_faults", "enabled"]
    list_filter = ["online", "enabled", "protocol", "current_type", VisibleStationFilter, VisibleCityFilter]
    search_fields = ["code", "name", "station__name", "vendor", "iccid"]
    list_select_related = ["station"]
    inlines = [ConnectorInline, FaultInline]
    readonly_fields = ["online", "last_seen_at", "frames", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not selectors.sees_all_stations(request.user):
            # The SIM binding is the pile's credential: operator admins approve a change.
            fields.append("iccid")
        return fields

    @admin.display(description=_("frame log"))
    def frames(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        try:
            url = reverse("admin:protocols_framelog_changelist")
        except NoReverseMatch:
            return "-"
        return format_html('<a class="button" href="{}?pile_code={}">{}</a>', url, obj.code,
                           _("Frames of this pile"))

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
        if form.cleaned_data.get("clear_ocpp_password"):
            obj.ocpp_password_set("")
        elif form.cleaned_data.get("new_ocpp_password"):
            obj.ocpp_password_set(form.cleaned_data["new_ocpp_password"])
        services.pile_save(pile=obj)

    def delete_model(self, request, obj):
        services.pile_delete(pile=obj)

    def delete_queryset(self, request, queryset):
        services.piles_delete(piles=list(queryset))


@admin.register(Connector)
class ConnectorAdmin(OwnerScopedAdmin):
    owner_path = "pile__station__owners"
    resource_classes = [ConnectorResource]
    list_display = ["__str__", "station_name", "connector_type", "live_status", "live_power", "live_va", "live_soc", "live_updated"]
    list_filter = ["status", "connector_type", ConnectorCityFilter]
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

    @admin.display(description=_("voltage / current"))
    def live_va(self, obj):
        volts, amps = self._live_value(obj, "voltage_v"), self._live_value(obj, "current_a")
        return "-" if volts == "-" and amps == "-" else f"{volts} V / {amps} A"

    @admin.display(description=_("SOC (%)"))
    def live_soc(self, obj):
        return self._live_value(obj, "soc_percent")

    @admin.display(description=_("updated"))
    def live_updated(self, obj):
        return self._live_value(obj, "updated")


@admin.register(Fault)
class FaultAdmin(OwnerScopeMixin, admin.ModelAdmin):
    owner_path = "pile__station__owners"
    list_display = ["pile", "connector", "severity", "source", "description", "protocol_code",
                    "started_at", "last_seen_at", "cleared_at"]
    list_filter = ["severity", "source", ("cleared_at", admin.EmptyFieldListFilter), PileCityFilter]
    search_fields = ["pile__code", "code", "description", "pile__station__name"]
    list_select_related = ["pile", "connector__pile"]
    date_hierarchy = "started_at"


@admin.register(OperatorSettings)
class OperatorSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "qr_link_template", "use_wxacode", "wxacode_page"]

    def has_add_permission(self, request):
        return not OperatorSettings.objects.exists() and super().has_add_permission(request)


class PartnerConnectorInline(admin.TabularInline):
    model = PartnerConnector
    fields = ["connector_id", "equipment_id", "connector_type", "power_kw", "status", "status_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PartnerStation)
class PartnerStationAdmin(admin.ModelAdmin):
    """Interconnection partners' stations as last pulled (read-only: the partner's data)."""

    list_display = ["name", "partner_name", "address", "status", "price_note", "pulled_at"]
    list_filter = ["partner_name"]
    search_fields = ["name", "address", "station_id"]
    readonly_fields = ["partner", "partner_name", "our_operator_id", "station_id", "name", "address",
                       "latitude", "longitude", "status", "price_note", "opening_hours", "phone",
                       "pulled_at"]
    inlines = [PartnerConnectorInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
