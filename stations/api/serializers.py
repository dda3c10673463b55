"""Input and output shapes of the station API (coordinates GCJ-02 degrees, distances
metres, prices yuan/kWh as strings)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from stations.selectors import MAX_RADIUS_M, SORTS

KINDS = ("ac", "dc")


class LocationIn(serializers.Serializer):
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lng = serializers.FloatField(required=False, min_value=-180, max_value=180)

    def validate(self, attrs):
        if ("lat" in attrs) != ("lng" in attrs):
            missing = "lng" if "lat" in attrs else "lat"
            raise serializers.ValidationError(
                {missing: _("Give both lat and lng, or neither.")}, code="location_incomplete"
            )
        return attrs


class StationSearchIn(LocationIn):
    radius = serializers.IntegerField(required=False, min_value=1, max_value=MAX_RADIUS_M)
    sort = serializers.ChoiceField(choices=SORTS, required=False)
    type = serializers.ChoiceField(choices=KINDS, required=False)
    available = serializers.BooleanField(required=False, default=False)
    city = serializers.CharField(required=False, max_length=30, default="")
    q = serializers.CharField(required=False, max_length=100, default="")


class RecommendIn(LocationIn):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    type = serializers.ChoiceField(choices=KINDS, required=False)


class StationRowOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    city = serializers.CharField()
    lat = serializers.FloatField(source="latitude")
    lng = serializers.FloatField(source="longitude")
    distance = serializers.SerializerMethodField(help_text="metres; null without a location")
    price_now = serializers.DecimalField(
        max_digits=10, decimal_places=5, allow_null=True, help_text="yuan/kWh"
    )
    connectors = serializers.SerializerMethodField()
    status = serializers.IntegerField(help_text="CEC StationStatus: 50 operating")

    def get_distance(self, obj) -> int | None:
        d = getattr(obj, "distance", None)
        return round(d) if d is not None else None

    def get_connectors(self, obj) -> dict:
        return {
            "ac": {"free": obj.ac_free, "total": obj.ac_total},
            "dc": {"free": obj.dc_free, "total": obj.dc_total},
        }


class LiveOut(serializers.Serializer):
    status = serializers.CharField()
    power_kw = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    voltage_v = serializers.DecimalField(max_digits=10, decimal_places=1, allow_null=True)
    current_a = serializers.DecimalField(max_digits=10, decimal_places=1, allow_null=True)
    soc_percent = serializers.IntegerField(allow_null=True)
    updated = serializers.DateTimeField(allow_null=True)


# Pile codes (and connector codes, which contain them) are never shown: a pile logs in with
# its code alone (YKC has no other credential). Drivers start by connector ``id`` or by the
# QR value they scanned.
def connector_out(c, live: dict) -> dict:
    return {
        "id": c.pk,
        "number": c.number,
        "type": c.current_kind,
        "connector_type": c.connector_type,
        "rated_power_kw": str(c.rated_power_kw),
        "live": LiveOut(live).data,
    }


def pile_out(p) -> dict:
    return {
        "id": p.pk,
        "name": p.name,
        "current_type": p.current_type,
        "rated_power_kw": str(p.rated_power_kw),
        "online": p.online,
    }


def station_brief_out(s) -> dict:
    return {
        "id": s.pk,
        "name": s.name,
        "address": s.address,
        "lat": float(s.latitude),
        "lng": float(s.longitude),
        "status": s.status,
        "opening_hours": s.opening_hours,
        "parking_fee_note": s.parking_fee_note,
    }


# Output shapes of the dict-building views, for the OpenAPI document (and Schemathesis).
class PileOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    current_type = serializers.IntegerField()
    rated_power_kw = serializers.DecimalField(max_digits=7, decimal_places=1, help_text="kW")
    online = serializers.BooleanField()


class ConnectorOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="start charging with it (connector_id)")
    number = serializers.IntegerField()
    type = serializers.ChoiceField(choices=KINDS)
    connector_type = serializers.IntegerField()
    rated_power_kw = serializers.DecimalField(max_digits=7, decimal_places=1, help_text="kW")
    live = LiveOut()


class PileWithConnectorsOut(PileOut):
    connectors = ConnectorOut(many=True)


class StationBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    status = serializers.IntegerField(help_text="CEC StationStatus: 50 operating")
    opening_hours = serializers.CharField(allow_blank=True)
    parking_fee_note = serializers.CharField(allow_blank=True)


class StationDetailOut(StationBriefOut):
    code = serializers.CharField()
    city = serializers.CharField(allow_blank=True)
    district = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)
    photos = serializers.ListField(child=serializers.CharField())
    facilities = serializers.ListField(child=serializers.CharField())
    time_zone = serializers.CharField()
    price_now = serializers.DecimalField(
        max_digits=10, decimal_places=5, allow_null=True, help_text="yuan/kWh"
    )
    price_periods = serializers.ListField(child=serializers.DictField())
    piles = PileWithConnectorsOut(many=True)


class ConnectorByCodeOut(serializers.Serializer):
    connector = ConnectorOut()
    pile = PileOut()
    station = StationBriefOut()
    price_now = serializers.DecimalField(
        max_digits=10, decimal_places=5, allow_null=True, help_text="yuan/kWh"
    )


class RecommendationOut(ConnectorByCodeOut):
    distance = serializers.IntegerField(help_text="metres")


class RecommendOut(serializers.Serializer):
    results = RecommendationOut(many=True)


class MapPinOut(serializers.Serializer):
    id = serializers.IntegerField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    free = serializers.IntegerField()
    total = serializers.IntegerField()
    status = serializers.IntegerField()
    partner = serializers.BooleanField(
        required=False, help_text="true: an interconnection partner's station (its id is a "
                                  "partner station's: GET stations/partners/{id})")


class PartnerStationRowOut(serializers.Serializer):
    """A partner's station in search: ``partner`` always true; distance metres (null
    without a point); ``prices`` the partner's own price text; free/total connectors."""

    id = serializers.IntegerField()
    partner = serializers.BooleanField()
    partner_name = serializers.CharField()
    name = serializers.CharField()
    address = serializers.CharField()
    lat = serializers.FloatField(allow_null=True)
    lng = serializers.FloatField(allow_null=True)
    distance = serializers.IntegerField(allow_null=True)
    status = serializers.IntegerField()
    prices = serializers.CharField()
    free = serializers.IntegerField()
    total = serializers.IntegerField()


class PartnerStationsOut(serializers.Serializer):
    count = serializers.IntegerField()
    results = PartnerStationRowOut(many=True)


class PartnerConnectorOut(serializers.Serializer):
    """``status`` in the platform's words (idle, charging, offline, fault...); start with
    POST orders/roaming {"connector_id": id}."""

    id = serializers.IntegerField()
    connector_id = serializers.CharField(help_text="the partner's ConnectorID")
    connector_type = serializers.IntegerField()
    power_kw = serializers.DecimalField(max_digits=7, decimal_places=1)
    status = serializers.CharField()


class PartnerStationDetailOut(PartnerStationRowOut):
    opening_hours = serializers.CharField()
    phone = serializers.CharField()
    connectors = PartnerConnectorOut(many=True)


class MapOut(serializers.Serializer):
    count = serializers.IntegerField()
    truncated = serializers.BooleanField()
    results = MapPinOut(many=True)
