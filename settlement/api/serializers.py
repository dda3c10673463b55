from decimal import Decimal

from rest_framework import serializers


class WalletOut(serializers.Serializer):
    cash = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="yuan, incl. held")
    bonus = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="yuan, incl. held")
    held = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="reserved by orders in progress")
    available = serializers.DecimalField(max_digits=14, decimal_places=2)
    arrears = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="owed by the member")


class LedgerLineOut(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    title = serializers.CharField(source="get_kind_display", help_text="what it was for")
    memo = serializers.CharField()
    ref = serializers.CharField()
    cash = serializers.DecimalField(source="cash_delta", max_digits=14, decimal_places=2)
    bonus = serializers.DecimalField(source="bonus_delta", max_digits=14, decimal_places=2)
    arrears = serializers.DecimalField(source="arrears_delta", max_digits=14, decimal_places=2)


class OwnerFiguresOut(serializers.Serializer):
    orders = serializers.IntegerField()
    energy_kwh = serializers.DecimalField(max_digits=14, decimal_places=4)
    earnings = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="yuan")


class OwnerOverviewOut(serializers.Serializer):
    today = OwnerFiguresOut()
    month = OwnerFiguresOut()
    payable = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="yuan owed to the owner")
    not_yet_on_a_statement = serializers.DecimalField(max_digits=14, decimal_places=2)
    available = serializers.DecimalField(
        max_digits=14, decimal_places=2,
        help_text="yuan the owner may withdraw now (payable less built statements and the refund window)",
    )


class OwnerWithdrawalIn(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
                                      help_text="yuan")


class OwnerWithdrawalOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    method = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")
    reason = serializers.CharField()
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class OwnerConnectorOut(serializers.Serializer):
    """A gun at the owner's station: by id, pile name and number, never by pile code."""

    id = serializers.IntegerField()
    pile = serializers.CharField(help_text="the pile's name (or 'Pile n', its place in the station)")
    number = serializers.IntegerField()
    status = serializers.CharField()
    power_kw = serializers.DecimalField(max_digits=8, decimal_places=1, allow_null=True)


class OwnerStationOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    connectors = OwnerConnectorOut(many=True)


class OwnerOrderOut(serializers.Serializer):
    order_ref = serializers.CharField()
    station = serializers.CharField(source="station.name")
    energy_kwh = serializers.DecimalField(max_digits=12, decimal_places=4)
    gross = serializers.DecimalField(max_digits=12, decimal_places=2)
    base = serializers.DecimalField(max_digits=12, decimal_places=2)
    my_share = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded = serializers.DecimalField(max_digits=12, decimal_places=2)
    settled_at = serializers.DateTimeField()


class OwnerStatementOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    status = serializers.CharField()
    orders = serializers.IntegerField()
    energy_kwh = serializers.DecimalField(max_digits=14, decimal_places=4)
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)
    discounts = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunds = serializers.DecimalField(max_digits=14, decimal_places=2)
    payment_fees = serializers.DecimalField(max_digits=14, decimal_places=2)
    commission = serializers.DecimalField(max_digits=14, decimal_places=2)
    share = serializers.DecimalField(max_digits=14, decimal_places=2)
    adjustments = serializers.DecimalField(max_digits=14, decimal_places=2)
    net = serializers.DecimalField(max_digits=14, decimal_places=2)


class OwnerFaultOut(serializers.Serializer):
    id = serializers.IntegerField()
    station = serializers.CharField(source="pile.station.name")
    pile = serializers.SerializerMethodField(help_text="the pile's name, never its code")
    connector_no = serializers.IntegerField(source="connector.number", allow_null=True)
    code = serializers.CharField(help_text="the pile's fault code")
    description = serializers.CharField()
    started_at = serializers.DateTimeField()

    def get_pile(self, fault) -> str:
        return fault.pile.name or fault.pile.station.name
