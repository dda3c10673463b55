from datetime import datetime
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from charging.models import ChargingOrder, PaymentMode, QueueEntry, Reservation, RoamingOrder


class OrderStartIn(serializers.Serializer):
    connector_code = serializers.CharField(max_length=64, required=False)
    connector_id = serializers.IntegerField(min_value=1, required=False)
    mode = serializers.ChoiceField(choices=[PaymentMode.WALLET, PaymentMode.PREPAY], default=PaymentMode.WALLET)
    prepay_ref = serializers.CharField(
        max_length=64, required=False, help_text="The paid prepayment's reference (pay per order)."
    )
    coupon_id = serializers.IntegerField(
        min_value=1, required=False,
        help_text="A coupon of the member's to use on this order (GET /coupons/applicable); default: the best one at settlement.",
    )

    def validate(self, attrs):
        if not attrs.get("connector_code") and not attrs.get("connector_id"):
            raise serializers.ValidationError({"connector_code": "connector_code or connector_id is required."})
        if attrs["mode"] == PaymentMode.PREPAY and not attrs.get("prepay_ref"):
            raise serializers.ValidationError({"prepay_ref": "Required for pay-per-order."})
        return attrs


class DiscountLineOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["svip", "coupon"])
    name = serializers.CharField(help_text="the SVIP plan's or the coupon's name")
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="yuan taken off")


class OrderOut(serializers.ModelSerializer):
    station = serializers.CharField(source="station.name")
    connector_no = serializers.IntegerField(source="connector.number", help_text="The gun's number on its pile (1号枪).")
    bill_lines = serializers.SerializerMethodField()
    discount_lines = serializers.SerializerMethodField()
    occupancy = serializers.SerializerMethodField(
        help_text="The occupancy fee after charging (占位费), or null while not priced: "
        "``{state, unplugged_at, minutes, grace_minutes, per_minute, cap, yuan, basis}``. "
        "``state`` is \"\" while the car may still be on the connector, then charged / "
        "free / unreported / waived; ``basis`` is unplugged (the pile reported the car "
        "gone) or pile_offline (counted to the moment the pile went offline).",
    )
    under_review = serializers.SerializerMethodField(
        help_text="True while the pile's record is being checked by staff (state ``review``): "
        "the bill is priced but nothing is charged until the check ends.",
    )

    class Meta:
        model = ChargingOrder
        fields = [
            "id", "number", "state", "mode", "station", "connector_id", "connector_no",
            "created_at", "started_at", "stopped_at", "settled_at", "energy_kwh",
            "electricity_amount", "service_amount", "occupancy_amount", "discount_amount",
            "total_amount", "paid_amount", "refunded_amount", "stop_reason", "soc_start",
            "soc_end", "progress", "bill_lines", "discount_lines", "under_review",
            "unplugged_at", "occupancy", "departure_at",
        ]

    def get_occupancy(self, order) -> dict | None:
        priced = (order.bill or {}).get("occupancy") or {}
        if not priced and not order.occupancy_state and order.unplugged_at is None:
            return None
        return {
            "state": order.occupancy_state, "unplugged_at": order.unplugged_at,
            "minutes": priced.get("minutes"), "grace_minutes": priced.get("grace_minutes"),
            "per_minute": priced.get("per_minute"), "cap": priced.get("cap"),
            "yuan": priced.get("yuan"), "basis": priced.get("basis") or order.unplug_basis,
        }

    def get_under_review(self, order) -> bool:
        return order.state == "review"

    def get_bill_lines(self, order) -> list[dict]:
        if not order.bill:
            return []
        return [
            {
                "periods": line.get("periods"),
                "energy_kwh": line.get("energy_kwh"),
                "electricity_price": line.get("electricity_price"),
                "service_price": line.get("service_price"),
                "electricity_yuan": line.get("electricity_yuan"),
                "service_yuan": line.get("service_yuan"),
            }
            for line in order.bill.get("lines", [])
        ]


    @extend_schema_field(DiscountLineOut(many=True))
    def get_discount_lines(self, order) -> list[dict]:
        """The bill's discounts, each its own line: ``svip`` (the plan's service-fee
        discount) and ``coupon``; ``discount_amount`` is their sum."""
        return [
            {"kind": d["kind"], "name": d["name"], "amount": d["amount"]}
            for d in (order.bill or {}).get("discounts", [])
        ]


class DepartureIn(serializers.Serializer):
    departure_at = serializers.DateTimeField(
        allow_null=True, help_text="When the driver must leave (ISO 8601 with offset); null clears it.")


class ReservationIn(serializers.Serializer):
    connector_code = serializers.CharField(max_length=64, required=False)
    connector_id = serializers.IntegerField(min_value=1, required=False)

    def validate(self, attrs):
        if not attrs.get("connector_code") and not attrs.get("connector_id"):
            raise serializers.ValidationError({"connector_code": "connector_code or connector_id is required."})
        return attrs


class ReservationOut(serializers.ModelSerializer):
    """A reservation as its member sees it: the gun by id and number, never by pile code."""

    connector_no = serializers.IntegerField(source="connector.number", help_text="The gun's number on its pile (1号枪).")
    station = serializers.CharField(source="connector.pile.station.name")

    class Meta:
        model = Reservation
        fields = ["id", "state", "connector_id", "connector_no", "station", "fee", "created_at", "expires_at"]


ZERO = Decimal("0")


class PrepayIn(ReservationIn):
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=Decimal("0.01"))


class PrepayOut(serializers.Serializer):
    prepay_ref = serializers.CharField(help_text="Start the order with this after paying.")
    pay_params = serializers.DictField(help_text="Arguments for wx.requestPayment.")


class QueueJoinIn(serializers.Serializer):
    station_id = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(choices=QueueEntry.Kind.choices, required=False, default="",
                                   allow_blank=True, help_text="ac, dc, or empty for any connector.")


class QueueOut(serializers.Serializer):
    """The driver's place in a station's queue: ``position`` 1 = next (0 while a connector
    is offered), ``wait_min`` estimated minutes (null: unknown), ``offer`` the connector held
    for them with ``expires_in_s`` seconds left to start on it."""

    id = serializers.IntegerField(source="entry.pk")
    state = serializers.CharField(source="entry.state")
    station_id = serializers.IntegerField(source="entry.station_id")
    station = serializers.CharField(source="entry.station.name")
    kind = serializers.ChoiceField(source="entry.kind", choices=QueueEntry.Kind.choices)
    joined_at = serializers.DateTimeField(source="entry.joined_at")
    position = serializers.IntegerField(allow_null=True)
    wait_min = serializers.IntegerField(allow_null=True)
    offer = ReservationOut(allow_null=True)
    expires_in_s = serializers.IntegerField(allow_null=True)
    end_reason = serializers.CharField(source="entry.end_reason")


class RoamingStartIn(serializers.Serializer):
    connector_id = serializers.IntegerField(
        min_value=1, help_text="A partner connector's id (GET stations/partners/{id})."
    )


class RoamingBillLineOut(serializers.Serializer):
    """One line of the partner's bill (its ChargeDetails), figures as the partner sent them."""

    start = serializers.DateTimeField(allow_null=True, help_text="the line's start (null if the partner sent none)")
    end = serializers.DateTimeField(allow_null=True, help_text="the line's end (null if the partner sent none)")
    energy_kwh = serializers.CharField(help_text="kWh, decimal text")
    electricity_price = serializers.CharField(help_text="yuan/kWh, decimal text")
    service_price = serializers.CharField(help_text="yuan/kWh, decimal text")
    electricity_yuan = serializers.DecimalField(max_digits=10, decimal_places=2)
    service_yuan = serializers.DecimalField(max_digits=10, decimal_places=2)

    def to_representation(self, instance):
        # Stored as ISO 8601 UTC text: shown in the operator's zone like every other time.
        line = dict(instance)
        for name in ("start", "end"):
            line[name] = datetime.fromisoformat(line[name]) if line.get(name) else None
        return super().to_representation(line)


class RoamingOrderOut(serializers.ModelSerializer):
    """An order on a partner's pile: money yuan (2 dp), energy kWh; the figures are the
    partner's (running while charging, final once ``settled``); ``hold_amount`` what is
    reserved of the wallet until the partner's bill arrives; ``bill_lines`` the partner's
    bill by time span once ``settled`` (empty before, or if the partner sent none)."""

    bill_lines = RoamingBillLineOut(many=True, read_only=True)

    class Meta:
        model = RoamingOrder
        fields = ["id", "number", "partner_name", "station_name", "connector_code", "state",
                  "hold_amount", "energy_kwh", "electricity_amount", "service_amount",
                  "total_amount", "paid_amount", "soc_percent", "fail_reason", "created_at",
                  "started_at", "stopped_at", "settled_at", "bill_lines"]
        read_only_fields = fields
