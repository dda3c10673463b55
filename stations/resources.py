"""Import/export of stations, piles and connectors (django-import-export; XLSX and CSV),
used by the admin and by ``manage.py import_assets``.

Columns are the model fields; rows are matched by their natural keys: a station by
``code``, a pile by ``code`` (its station by ``station_code``), a connector by
``pile_code`` + ``number``. Piles are saved through ``services.pile_save``, so an import
keeps the public registry in step and a code held by another operator is a row error.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
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


class StationResource(resources.ModelResource):
    class Meta:
        model = Station
        fields = STATION_FIELDS
        export_order = STATION_FIELDS
        import_id_fields = ("code",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class PileResource(resources.ModelResource):
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


class ConnectorResource(resources.ModelResource):
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
    """Which resource a sheet is for, by its header row: ``stations``, ``piles`` or
    ``connectors``. Raises ValueError when it fits none."""
    cols = {h.strip() for h in headers if h}
    if {"pile_code", "number"} <= cols:
        return "connectors"
    if {"code", "station_code"} <= cols:
        return "piles"
    if {"code", "name", "latitude", "longitude"} <= cols:
        return "stations"
    raise ValueError("the header row fits no known sheet (stations, piles, connectors)")
