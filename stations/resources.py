"""Import/export of stations, piles and connectors (django-import-export; XLSX and CSV),
used by the admin and by ``manage.py import_assets``.

Columns are the model fields; rows are matched by their natural keys: a station by
``code``, a pile by ``code`` (its station by ``station_code``), a connector by
``pile_code`` + ``number``. Piles are saved through ``services.pile_save``, so an import
keeps the public registry in step and a code held by another operator is a row error.

Headers: exports are titled in the reader's language (the field's label, e.g. 站点编号);
imports accept a column titled by its Chinese label, its English label or its field name,
so a template downloaded in either language, or an older export, imports as it is.
:func:`template_xlsx` builds the downloadable template with the code lists explained.
"""

from __future__ import annotations

from io import BytesIO

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, resources, widgets

from . import services
from .models import Connector, Pile, Station


class CodeWidget(widgets.ForeignKeyWidget):
    """A related object by its code; an unknown code is a row error, not a crash."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except self.model.DoesNotExist:
            raise ValueError(
                _("No %(model)s with code %(code)s.")
                % {"model": self.model._meta.verbose_name, "code": value}
            ) from None


STATION_FIELDS = (
    "code", "name", "address", "province", "city", "district", "area_code", "latitude",
    "longitude", "station_type", "status", "opening_hours", "phone", "parking_fee_note",
    "time_zone",
)
PILE_FIELDS = (
    "code", "station_code", "name", "protocol", "vendor", "model", "current_type",
    "rated_power_kw", "connector_count", "firmware_version", "iccid", "network",
    "heartbeat_interval_s", "enabled",
)
CONNECTOR_FIELDS = (
    "pile_code", "number", "connector_type", "rated_power_kw", "rated_voltage_v",
    "rated_current_a", "qr_code",
)


EXTRA_LABELS = {  # columns that are not model fields, or whose field label reads wrong alone
    "station_code": gettext_lazy("station code"),
    "pile_code": gettext_lazy("pile code"),
    "current_type": gettext_lazy("current type (AC or DC)"),
    "connector_count": gettext_lazy("number of connectors"),
}
RELATED = {"station_code": "station", "pile_code": "pile"}


class NumberWidget(widgets.DecimalWidget):
    """A decimal cell; text that is not a number is the cell's error, in words."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except (ArithmeticError, ValueError):
            raise ValueError(_("Enter a number, not “%(value)s”.") % {"value": value}) from None


class WholeNumberWidget(widgets.IntegerWidget):
    """An integer cell; text that is not a whole number is the cell's error, in words."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except (ArithmeticError, ValueError, TypeError):
            raise ValueError(_("Enter a whole number, not “%(value)s”.") % {"value": value}) from None


class TitledResource(resources.ModelResource):
    """Headers by label for people, by label or field name on the way in (see module doc);
    a cell that is not a number is that cell's error in words."""

    WIDGETS_MAP = {
        **resources.ModelResource.WIDGETS_MAP,
        "DecimalField": NumberWidget,
        **{kind: WholeNumberWidget for kind, widget in resources.ModelResource.WIDGETS_MAP.items()
           if widget is widgets.IntegerWidget},
    }

    def column_label(self, name: str) -> str:
        if name in EXTRA_LABELS:
            return str(EXTRA_LABELS[name])
        return str(self._meta.model._meta.get_field(name).verbose_name)

    def column_names(self) -> list[str]:
        return list(self._meta.export_order)

    def get_export_headers(self, selected_fields=None):
        return [self.column_label(name) for name in self.column_names()]

    def get_diff_headers(self):
        return [self.column_label(field.column_name) for field in self.get_import_fields()]

    def column_titles(self) -> dict[str, str]:
        """Column and attribute names (``station`` as well as ``station_code``) -> label."""
        titles = {name: self.column_label(name) for name in self.column_names()}
        titles.update({RELATED[name]: titles[name] for name in titles if name in RELATED})
        return titles

    def header_aliases(self) -> dict[str, str]:
        """Every accepted title (case-folded) -> the column's field name."""
        aliases = {}
        for name in self.column_names():
            aliases[name.casefold()] = name
            for language in ("zh-hans", "en"):
                with translation.override(language):
                    aliases[self.column_label(name).strip().casefold()] = name
        return aliases

    def before_import(self, dataset, **kwargs):
        aliases = self.header_aliases()
        if dataset.headers:
            dataset.headers = [aliases.get(str(h or "").strip().casefold(), h) for h in dataset.headers]
        super().before_import(dataset, **kwargs)


class StationResource(TitledResource):
    class Meta:
        model = Station
        fields = STATION_FIELDS
        export_order = STATION_FIELDS
        import_id_fields = ("code",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class PileResource(TitledResource):
    station_code = fields.Field(
        attribute="station",
        column_name="station_code",
        widget=CodeWidget(Station, field="code"),
    )

    class Meta:
        model = Pile
        fields = PILE_FIELDS
        export_order = PILE_FIELDS
        import_id_fields = ("code",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def do_instance_save(self, instance, is_create):
        services.pile_save(pile=instance)

    def delete_instance(self, instance, row, **kwargs):
        services.pile_delete(pile=instance)


class ConnectorResource(TitledResource):
    pile_code = fields.Field(
        attribute="pile",
        column_name="pile_code",
        widget=CodeWidget(Pile, field="code"),
    )

    class Meta:
        model = Connector
        fields = CONNECTOR_FIELDS
        export_order = CONNECTOR_FIELDS
        import_id_fields = ("pile_code", "number")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


RESOURCES = {"stations": StationResource, "piles": PileResource, "connectors": ConnectorResource}


def resource_for_headers(headers: list[str]) -> str:
    """Which resource a sheet is for, by its header row (field names or labels, Chinese or
    English): ``stations``, ``piles`` or ``connectors``. Raises ValueError when it fits none."""
    # Labels repeat across sheets (a pile's code and a connector's pile code are both 桩编号),
    # so each sheet reads the headers with its own titles.
    keys = {"connectors": {"pile_code", "number"}, "piles": {"code", "station_code"},
            "stations": {"code", "name", "latitude", "longitude"}}
    for kind, needed in keys.items():
        aliases = RESOURCES[kind]().header_aliases()
        if needed <= {aliases.get(str(h).strip().casefold()) for h in headers if h}:
            return kind
    raise ValueError(_("The header row fits no known sheet (stations, piles, connectors)."))


def template_xlsx(kind: str) -> bytes:
    """The import template of ``kind`` (``stations``, ``piles``, ``connectors``) as .xlsx,
    in the active language: sheet 1 the header row and one example row; sheet 2 one row a
    column: its title, the field name (also accepted as a title), what it holds, whether it
    is required, and for coded columns every code with its meaning. Raises KeyError for an
    unknown kind."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    resource = RESOURCES[kind]()
    model = resource._meta.model
    names = resource.column_names()
    book = Workbook()
    sheet = book.active
    sheet.title = _("Data")
    sheet.append(resource.get_export_headers())
    sheet.append([EXAMPLES[kind].get(name, "") for name in names])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    notes = book.create_sheet(_("Columns"))
    notes.append([_("Column"), _("Field name"), _("Meaning"), _("Required"), _("Codes")])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for name in names:
        field = model._meta.get_field(RELATED.get(name, name))
        required = name in resource._meta.import_id_fields or not (field.blank or field.has_default() or field.null)
        codes = "; ".join(f"{value} = {label}" for value, label in field.choices or ())
        notes.append([resource.column_label(name), name, str(field.help_text or field.verbose_name),
                      _("Yes") if required else _("No"), codes])
    for ws in (sheet, notes):
        for column in ws.columns:
            ws.column_dimensions[column[0].column_letter].width = 18
    out = BytesIO()
    book.save(out)
    return out.getvalue()


EXAMPLES = {
    "stations": {
        "code": "GZ0001", "name": "天河体育中心充电站", "address": "广州市天河区体育西路 1 号",
        "province": "广东省", "city": "广州市", "district": "天河区", "area_code": "440106",
        "latitude": "23.137000", "longitude": "113.321000", "station_type": 1, "status": 50,
        "opening_hours": "00:00-24:00", "phone": "020-12345678", "parking_fee_note": "充电免停车费 2 小时",
        "time_zone": "Asia/Shanghai",
    },
    "piles": {
        "code": "44010600000001", "station_code": "GZ0001", "name": "1号桩", "protocol": "ykc",
        "vendor": "", "model": "", "current_type": 1, "rated_power_kw": "120.0", "connector_count": 2,
        "firmware_version": "", "iccid": "", "network": "", "heartbeat_interval_s": 10, "enabled": 1,
    },
    "connectors": {
        "pile_code": "44010600000001", "number": 1, "connector_type": 4, "rated_power_kw": "60.0",
        "rated_voltage_v": 750, "rated_current_a": 250, "qr_code": "",
    },
}
