"""Admin for tariffs: edit as time ranges, 24-hour bar, sample bill, publish, assign.

Writes go through ``billing.tariffs.services``; a locked version is read-only here and in the
services. Station owners (``billing.view_tariff``) see the tariffs of their own stations.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import pricing
from . import services as tariff_services
from .forms import PERIOD_LABELS, AssignStationsForm, TariffForm, TariffVersionForm
from .models import PileTariff, StationTariff, Tariff, TariffVersion
from .selectors import tariff_list_visible, tariff_version_effective

__all__ = [
    "PileTariffAdmin",
    "StationTariffAdmin",
    "TariffAdmin",
    "TariffVersionAdmin",
]

PERIOD_COLOURS = {
    pricing.Period.SHARP: "#c0392b",
    pricing.Period.PEAK: "#e67e22",
    pricing.Period.FLAT: "#2e86c1",
    pricing.Period.VALLEY: "#27ae60",
}
_PREVIEW_KW = Decimal(60)
_PREVIEW_MINUTES = 60


def day_bar(slots) -> SafeString:
    """A 24-hour bar of 48 half-hour cells coloured by period, with hour ticks."""
    cells = format_html_join(
        "",
        '<span title="{} {}" style="flex:1;height:22px;background:{}"></span>',
        (
            (f"{i // 2:02d}:{i % 2 * 30:02d}", PERIOD_LABELS[p], PERIOD_COLOURS[p])
            for i, p in enumerate(slots)
        ),
    )
    ticks = format_html_join(
        "",
        '<span style="flex:1;font-size:10px">{}</span>',
        ((f"{h:02d}",) for h in range(0, 24, 3)),
    )
    return format_html(
        '<div class="tariff-bar" style="width:480px">'
        '<div style="display:flex;border:1px solid #999">{}</div>'
        '<div style="display:flex">{}</div></div>',
        cells,
        ticks,
    )


def snapshot_bars(snapshot: pricing.TariffSnapshot) -> SafeString:
    """The default map, each season and each special date as bars, plus a legend of prices."""
    rows = [(_("Default"), day_bar(snapshot.slots))]
    for season in snapshot.seasons:
        label = _("Months %(start)d–%(end)d %(name)s") % {
            "start": season.start_month,
            "end": season.end_month,
            "name": season.name,
        }
        rows.append((label, day_bar(season.slots)))
    for special in snapshot.special_dates:
        rows.append((f"{special.date.isoformat()} {special.note}", day_bar(special.slots)))
    legend = format_html_join(
        " ",
        '<span style="display:inline-block;padding:0 6px;color:#fff;background:{}">{}: {} + {}'
        "</span>",
        (
            (PERIOD_COLOURS[p.period], PERIOD_LABELS[p.period], p.electricity, p.service)
            for p in sorted(snapshot.prices, key=lambda p: p.period.code)
        ),
    )
    table = format_html_join("", '<tr><td style="white-space:nowrap">{}</td><td>{}</td></tr>', rows)
    return format_html(
        '<table class="tariff-bars">{}</table><p>{} <small>{}</small></p>',
        table,
        legend,
        _("electricity + service, yuan/kWh"),
    )


def preview_table(snapshot: pricing.TariffSnapshot, start) -> SafeString:
    """A sample bill: 60 kW for 60 minutes from ``start``."""
    bill = pricing.preview(snapshot, start, _PREVIEW_KW, _PREVIEW_MINUTES)
    local = start.astimezone(snapshot.zone)
    lines = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{} + {}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                " / ".join(str(PERIOD_LABELS[p]) for p in line.periods),
                line.energy_kwh,
                line.electricity_price,
                line.service_price,
                line.electricity_yuan,
                line.service_yuan,
            )
            for line in bill.lines
        ),
    )
    return format_html(
        "<p>{}</p><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}"
        "</table><p><strong>{}</strong></p>",
        _("%(kw)s kW for %(minutes)d minutes from %(start)s:")
        % {
            "kw": _PREVIEW_KW,
            "minutes": _PREVIEW_MINUTES,
            "start": local.strftime("%Y-%m-%d %H:%M"),
        },
        _("period"),
        _("energy (kWh)"),
        _("price (yuan/kWh)"),
        _("electricity (yuan)"),
        _("service (yuan)"),
        lines,
        _("Total %(total)s yuan (minimum top-up %(topup)s)")
        % {"total": bill.total_yuan, "topup": bill.minimum_topup_yuan},
    )


def _draft_without_number(data: dict) -> dict:
    """A snapshot dict in canonical form (parsed and written again), without its YKC number,
    so the working copy and a version compare by content."""
    data = pricing.TariffSnapshot.from_dict(data).to_dict()
    return {k: v for k, v in data.items() if k != "model_number"}


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    form = TariffForm
    list_display = ["name", "kind", "version_in_force", "stations_count", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "description"]
    readonly_fields = ["bars", "sample_bill", "versions_table", "prices_summary"]
    actions = ["assign_to_stations"]

    edit_fieldsets = [
        (None, {"fields": ["name", "description", "kind"]}),
        (
            gettext_lazy("Time periods (尖峰平谷)"),
            {"fields": ["base_period", "ranges", "seasons", "special_dates", "bars"]},
        ),
        (
            gettext_lazy("Prices (yuan/kWh)"),
            {
                "fields": [
                    ("sharp_electricity", "sharp_service"),
                    ("peak_electricity", "peak_service"),
                    ("flat_electricity", "flat_service"),
                    ("valley_electricity", "valley_service"),
                ]
            },
        ),
        (
            gettext_lazy("Occupancy fee and minimum"),
            {
                "fields": [
                    ("occupancy_per_minute", "occupancy_grace_minutes", "occupancy_cap"),
                    "minimum_charge",
                ]
            },
        ),
        (gettext_lazy("Sample bill"), {"fields": ["sample_bill"]}),
        (gettext_lazy("Versions"), {"fields": ["versions_table", "publish_effective_from"]}),
    ]
    view_fieldsets = [
        (None, {"fields": ["name", "description", "prices_summary", "bars"]}),
        (gettext_lazy("Sample bill"), {"fields": ["sample_bill"]}),
        (gettext_lazy("Versions"), {"fields": ["versions_table"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tariff]:
        return tariff_list_visible(request.user)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return self.view_fieldsets
        return self.edit_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields

    @admin.display(description=gettext_lazy("version in force"))
    def version_in_force(self, obj: Tariff) -> str:
        version = tariff_version_effective(obj, timezone.now())
        return f"{version.model_number:04d}" if version else "—"

    @admin.display(description=gettext_lazy("stations"))
    def stations_count(self, obj: Tariff) -> int:
        return obj.station_assignments.count()

    def _draft(self, obj: Tariff | None) -> pricing.TariffSnapshot | None:
        if obj is None or not obj.pk or not obj.draft:
            return None
        return pricing.TariffSnapshot.from_dict(obj.draft)

    @admin.display(description=gettext_lazy("24 hours"))
    def bars(self, obj: Tariff | None) -> str:
        snapshot = self._draft(obj)
        return snapshot_bars(snapshot) if snapshot else _("Shown after saving.")

    @admin.display(description=gettext_lazy("prices"))
    def prices_summary(self, obj: Tariff | None) -> str:
        snapshot = self._draft(obj)
        if snapshot is None:
            return "—"
        parts = [
            _("%(period)s %(electricity)s + %(service)s yuan/kWh")
            % {
                "period": PERIOD_LABELS[p.period],
                "electricity": p.electricity,
                "service": p.service,
            }
            for p in sorted(snapshot.prices, key=lambda p: p.period.code)
        ]
        if snapshot.occupancy:
            parts.append(
                _("occupancy %(fee)s yuan/min after %(grace)d min, cap %(cap)s")
                % {
                    "fee": snapshot.occupancy.per_minute,
                    "grace": snapshot.occupancy.grace_minutes,
                    "cap": snapshot.occupancy.cap or "—",
                }
            )
        if snapshot.minimum_charge is not None:
            parts.append(_("minimum %(amount)s yuan") % {"amount": snapshot.minimum_charge})
        return "; ".join(parts)

    @admin.display(description=gettext_lazy("sample session"))
    def sample_bill(self, obj: Tariff | None) -> str:
        snapshot = self._draft(obj)
        return preview_table(snapshot, timezone.now()) if snapshot else _("Shown after saving.")

    @admin.display(description=gettext_lazy("published versions"))
    def versions_table(self, obj: Tariff | None) -> str:
        if obj is None or not obj.pk:
            return "—"
        now = timezone.now()
        current = tariff_version_effective(obj, now)
        rows = []
        for version in obj.versions.select_related("created_by").order_by("-effective_from"):
            if current is not None and version.pk == current.pk:
                state = _("in force")
            elif version.effective_from > now:
                state = _("scheduled")
            else:
                state = _("superseded")
            rows.append(
                (
                    f"{version.model_number:04d}",
                    timezone.localtime(version.effective_from).strftime("%Y-%m-%d %H:%M"),
                    state,
                    _("locked") if version.locked else "",
                    version.created_by or "",
                )
            )
        table = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        note = self._working_copy_note(obj, current, now)
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th></th><th>{}</th></tr>{}</table>"
            "<p>{}</p>",
            _("YKC model"),
            _("effective from"),
            _("state"),
            _("created by"),
            table,
            note,
        )

    @staticmethod
    def _working_copy_note(obj: Tariff, current, now) -> str:
        """How the working copy stands against the versions: in force, scheduled at a time,
        or different from both (publish to apply)."""
        draft = _draft_without_number(obj.draft)
        if current is not None and _draft_without_number(current.snapshot) == draft:
            return _("The working copy is the version in force.")
        scheduled = obj.versions.filter(effective_from__gt=now).order_by("-effective_from").first()
        if scheduled is not None and _draft_without_number(scheduled.snapshot) == draft:
            return _("The working copy is published and takes effect at %(when)s.") % {
                "when": timezone.localtime(scheduled.effective_from).strftime("%Y-%m-%d %H:%M")
            }
        return _("The working copy differs from the version in force: publish to apply it.")

    def save_model(self, request, obj: Tariff, form: TariffForm, change: bool) -> None:
        if change:
            tariff_services.tariff_update(
                tariff=obj, draft=form.snapshot, name=obj.name, description=obj.description
            )
        else:
            created = tariff_services.tariff_create(
                name=obj.name, draft=form.snapshot, description=obj.description
            )
            obj.pk, obj.draft, obj.kind = created.pk, created.draft, created.kind
            obj.created_at, obj.updated_at = created.created_at, created.updated_at
            obj._state.adding, obj._state.db = False, created._state.db
        when = form.cleaned_data.get("publish_effective_from")
        if when is not None:
            try:
                version = tariff_services.tariff_version_publish(
                    tariff=obj, effective_from=when, created_by=request.user
                )
            except tariff_services.TariffServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("Published version %(number)04d, in force from %(when)s.")
                    % {
                        "number": version.model_number,
                        "when": timezone.localtime(when).strftime("%Y-%m-%d %H:%M"),
                    },
                    messages.SUCCESS,
                )

    def has_delete_permission(self, request, obj=None) -> bool:
        # A tariff with versions is history (orders point at its versions): never deleted.
        if obj is not None and obj.versions.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(
        description=gettext_lazy("Assign to stations as their default tariff…"),
        permissions=["change"],
    )
    def assign_to_stations(self, request, queryset: QuerySet[Tariff]):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one tariff to assign."), messages.ERROR)
            return None
        tariff = queryset.get()
        if "apply" in request.POST:
            form = AssignStationsForm(request.POST)
            if form.is_valid():
                stations = list(form.cleaned_data["stations"])
                tariff_services.station_tariff_assign(stations=stations, tariff=tariff)
                self.message_user(
                    request,
                    _("%(tariff)s is now the default tariff of %(count)d stations.")
                    % {"tariff": tariff, "count": len(stations)},
                    messages.SUCCESS,
                )
                return None
        else:
            form = AssignStationsForm()
        return TemplateResponse(
            request,
            "admin/billing/tariff/assign_stations.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Assign %(tariff)s to stations") % {"tariff": tariff},
                "tariff": tariff,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(TariffVersion)
class TariffVersionAdmin(admin.ModelAdmin):
    form = TariffVersionForm
    list_display = [
        "__str__",
        "tariff",
        "model_number",
        "effective_from",
        "is_locked",
        "created_by",
    ]
    list_filter = ["tariff"]
    fields = [
        "tariff",
        "model_number",
        "effective_from",
        "created_by",
        "created_at",
        "locked_at",
        "bars",
    ]
    base_readonly = ["tariff", "model_number", "created_by", "created_at", "locked_at", "bars"]

    def get_queryset(self, request):
        visible = tariff_list_visible(request.user)
        return super().get_queryset(request).filter(tariff__in=visible).select_related("tariff")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.locked:
            return [*self.base_readonly, "effective_from"]
        return self.base_readonly

    @admin.display(description=gettext_lazy("locked"), boolean=True)
    def is_locked(self, obj: TariffVersion) -> bool:
        return obj.locked

    @admin.display(description=gettext_lazy("24 hours"))
    def bars(self, obj: TariffVersion) -> str:
        return snapshot_bars(pricing.TariffSnapshot.from_dict(obj.snapshot))

    def has_add_permission(self, request) -> bool:
        return False  # versions are published from the tariff

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.locked:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj: TariffVersion, form, change: bool) -> None:
        try:
            tariff_services.tariff_version_reschedule(
                version=obj, effective_from=obj.effective_from
            )
        except tariff_services.TariffServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def delete_model(self, request, obj: TariffVersion) -> None:
        tariff_services.tariff_version_delete(version=obj)

    def delete_queryset(self, request, queryset) -> None:
        for version in queryset:
            try:
                tariff_services.tariff_version_delete(version=version)
            except tariff_services.TariffVersionLocked as exc:
                self.message_user(request, exc.message, messages.ERROR)


@admin.register(StationTariff)
class StationTariffAdmin(admin.ModelAdmin):
    list_display = ["station", "tariff", "assigned_at"]
    list_filter = ["tariff"]
    search_fields = ["station__name", "station__code"]
    autocomplete_fields = []
    fields = ["station", "tariff"]

    def get_readonly_fields(self, request, obj=None):
        return ["station"] if obj is not None else []

    def save_model(self, request, obj: StationTariff, form, change: bool) -> None:
        tariff_services.station_tariff_assign(stations=[obj.station], tariff=obj.tariff)

    def delete_model(self, request, obj: StationTariff) -> None:
        tariff_services.station_tariff_assign(stations=[obj.station], tariff=None)

    def delete_queryset(self, request, queryset) -> None:
        tariff_services.station_tariff_assign(
            stations=[a.station for a in queryset.select_related("station")], tariff=None
        )


@admin.register(PileTariff)
class PileTariffAdmin(admin.ModelAdmin):
    list_display = ["pile", "tariff", "assigned_at"]
    list_filter = ["tariff"]
    search_fields = ["pile__code", "pile__name"]
    fields = ["pile", "tariff"]

    def get_readonly_fields(self, request, obj=None):
        return ["pile"] if obj is not None else []

    def save_model(self, request, obj: PileTariff, form, change: bool) -> None:
        tariff_services.pile_tariff_assign(pile=obj.pile, tariff=obj.tariff)

    def delete_model(self, request, obj: PileTariff) -> None:
        tariff_services.pile_tariff_assign(pile=obj.pile, tariff=None)

    def delete_queryset(self, request, queryset) -> None:
        for assignment in queryset.select_related("pile"):
            tariff_services.pile_tariff_assign(pile=assignment.pile, tariff=None)
