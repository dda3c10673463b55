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
