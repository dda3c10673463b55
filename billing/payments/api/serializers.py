from decimal import Decimal

from rest_framework import serializers

from billing.payments.models import Payment, PaymentRefund, TopUpOffer, WalletRefund, Withdrawal

AMOUNT = {"max_digits": 10, "decimal_places": 2, "min_value": Decimal("0.01")}


class AmountIn(serializers.Serializer):
    amount = serializers.DecimalField(**AMOUNT, help_text="yuan")


class RefundIn(serializers.Serializer):
    amount = serializers.DecimalField(**AMOUNT, required=False, help_text="yuan; default all")
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    accept_forfeit = serializers.BooleanField(
        default=False, help_text="the member accepted the bonus forfeiture shown by the preview"
    )


class OfferOut(serializers.ModelSerializer):
    class Meta:
        model = TopUpOffer
        fields = ["pay_amount", "bonus_amount"]


class TopUpOptionsOut(serializers.Serializer):
    min_amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    max_amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    offers = OfferOut(many=True)


class PaymentOut(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "out_trade_no", "purpose", "status", "amount", "bonus", "order_ref", "created_at",
            "paid_at", "expires_at",
        ]


class PayParamsOut(serializers.Serializer):
    appId = serializers.CharField()
    timeStamp = serializers.CharField()
    nonceStr = serializers.CharField()
    package = serializers.CharField()
    signType = serializers.CharField()
    paySign = serializers.CharField()


class PaymentStartOut(serializers.Serializer):
    payment = PaymentOut()
    pay_params = PayParamsOut(help_text="pass to wx.requestPayment")


class RefundPreviewOut(serializers.Serializer):
    refundable = serializers.DecimalField(max_digits=12, decimal_places=2)
    bonus_forfeited = serializers.DecimalField(max_digits=12, decimal_places=2)
    policy_text = serializers.CharField()
    mode = serializers.CharField(help_text="auto | review")


class RefundPartOut(serializers.ModelSerializer):
    out_trade_no = serializers.CharField(source="payment.out_trade_no")

    class Meta:
        model = PaymentRefund
        fields = ["out_refund_no", "out_trade_no", "amount", "status"]


class WalletRefundOut(serializers.ModelSerializer):
    parts = serializers.SerializerMethodField(help_text="one WeChat refund per original payment")
    status_label = serializers.CharField(source="get_status_display")

    class Meta:
        model = WalletRefund
        fields = [
            "id", "amount", "bonus_forfeited", "status", "status_label", "reason", "review_note",
            "created_at", "finished_at", "parts",
        ]

    def get_parts(self, obj) -> list[dict]:
        parts = sorted(obj.parts.all(), key=lambda part: part.pk)  # oldest payment first
        return RefundPartOut(parts, many=True).data


class WithdrawalOut(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display")
    confirm = serializers.SerializerMethodField(
        help_text="for wx.requestMerchantTransfer while waiting for the member's confirmation"
    )

    class Meta:
        model = Withdrawal
        fields = [
            "id", "amount", "status", "status_label", "out_bill_no", "fail_reason", "review_note",
            "created_at", "finished_at", "confirm",
        ]

    def get_confirm(self, obj) -> dict | None:
        if obj.status != Withdrawal.Status.WAIT_USER_CONFIRM or not obj.package_info:
            return None
        return self.context.get("confirm", {}) | {"package": obj.package_info, "openId": obj.member.openid}
