"""Driver API shapes for marketing (amounts: yuan strings with 2 places; points: integers)."""

from rest_framework import serializers

from billing.payments.api.serializers import PayParamsOut
from marketing.models import (
    Coupon,
    CouponTemplate,
    MallItem,
    MallRedemption,
    PointsEntry,
    ScratchCard,
    SvipPlan,
    SvipPurchase,
)


class TemplateOut(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display")
    base_label = serializers.CharField(source="get_base_display")
    current_label = serializers.CharField(source="get_current_display")
    station_ids = serializers.SerializerMethodField()

    class Meta:
        model = CouponTemplate
        fields = ["id", "name", "kind", "kind_label", "amount", "threshold", "percent", "base", "base_label",
                  "cap", "valid_from", "valid_until", "valid_days", "current", "current_label", "hour_from",
                  "hour_to", "stacks_with_svip", "station_ids", "price"]

    def get_station_ids(self, template) -> list[int]:
        return [s.pk for s in template.stations.all()]


class CouponOut(serializers.ModelSerializer):
    template = TemplateOut()
    status_label = serializers.CharField(source="get_status_display")

    class Meta:
        model = Coupon
        fields = ["id", "template", "status", "status_label", "source", "valid_from", "valid_until",
                  "order_ref", "used_amount", "used_at", "granted_at"]


class ClaimIn(serializers.Serializer):
    template_id = serializers.IntegerField(min_value=1)


class ChooseIn(serializers.Serializer):
    order_number = serializers.CharField(max_length=32, help_text="an order of yours in progress")


class PlanOut(serializers.ModelSerializer):
    monthly_coupon = TemplateOut(allow_null=True)

    class Meta:
        model = SvipPlan
        fields = ["id", "name", "months", "price", "service_discount_percent", "monthly_coupon",
                  "monthly_coupon_count", "priority_reservation", "refund_days"]


class PurchaseOut(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.name")

    class Meta:
        model = SvipPurchase
        fields = ["id", "plan", "amount", "status", "paid_with", "starts_at", "ends_at", "discount_total",
                  "created_at"]


class SvipPayOut(serializers.Serializer):
    purchase = PurchaseOut(help_text="pending until WeChat Pay confirms; poll svip/purchases")
    pay_params = PayParamsOut(help_text="pass to wx.requestPayment")


class SvipOut(serializers.Serializer):
    active = serializers.BooleanField()
    plan = serializers.CharField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    service_discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    plans = PlanOut(many=True)


class BuyIn(serializers.Serializer):
    plan_id = serializers.IntegerField(min_value=1)


class PointsOut(serializers.Serializer):
    balance = serializers.IntegerField()
    expiring_30_days = serializers.IntegerField(help_text="points that expire within 30 days")
    per_yuan = serializers.DecimalField(max_digits=6, decimal_places=2)
    per_kwh = serializers.DecimalField(max_digits=6, decimal_places=2)
    bonus_weekdays = serializers.CharField()
    bonus_multiplier = serializers.DecimalField(max_digits=4, decimal_places=2)


class PointsEntryOut(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display")

    class Meta:
        model = PointsEntry
        fields = ["id", "kind", "kind_label", "points", "balance_after", "ref", "expires_at", "created_at"]


class MallItemOut(serializers.ModelSerializer):
    coupon = TemplateOut(allow_null=True)

    class Meta:
        model = MallItem
        fields = ["id", "name", "kind", "points", "stock", "coupon", "bonus"]


class RedeemIn(serializers.Serializer):
    item_id = serializers.IntegerField(min_value=1)
    recipient = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
    phone = serializers.CharField(max_length=20, required=False, default="", allow_blank=True)
    address = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class RedemptionOut(serializers.ModelSerializer):
    item = serializers.CharField(source="item.name")
    status_label = serializers.CharField(source="get_status_display")

    class Meta:
        model = MallRedemption
        fields = ["id", "item", "points", "status", "status_label", "recipient", "phone", "address",
                  "tracking_no", "created_at"]


class ScratchCardOut(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.name")
    scratched = serializers.SerializerMethodField()
    prize = serializers.SerializerMethodField()
    prize_kind = serializers.SerializerMethodField()

    class Meta:
        model = ScratchCard
        fields = ["id", "campaign", "source_ref", "scratched", "prize", "prize_kind", "scratched_at", "created_at"]

    def get_scratched(self, card) -> bool:
        return card.scratched_at is not None

    def get_prize(self, card) -> str | None:
        """The prize's name; null before the scratch or when nothing was won."""
        return card.prize.name if card.prize_id else None

    def get_prize_kind(self, card) -> str | None:
        if card.scratched_at is None:
            return None
        return card.prize.kind if card.prize_id else "nothing"


class CardRedeemIn(serializers.Serializer):
    number = serializers.CharField(max_length=20)
    pin = serializers.CharField(max_length=20)


class CardRedeemOut(serializers.Serializer):
    number = serializers.CharField()
    amount = serializers.DecimalField(max_digits=8, decimal_places=2)
    credited_as = serializers.CharField(help_text="cash or bonus")


class SmsConsentIO(serializers.Serializer):
    consented = serializers.BooleanField(help_text="agreed to marketing SMS (false: opted out)")


class ReferralOut(serializers.Serializer):
    code = serializers.CharField(help_text="the member's invite code")
    path = serializers.CharField(help_text="mini-program page to share (the invite link)")
    active = serializers.BooleanField(help_text="whether the operator's invite program runs now")
    invited = serializers.IntegerField(help_text="members who accepted the code")
    rewarded = serializers.IntegerField(help_text="of them, rewarded after their first charge")
    invited_by = serializers.CharField(allow_null=True, help_text="the inviter's nickname, if this member was invited")
    min_first_order = serializers.DecimalField(max_digits=8, decimal_places=2, help_text="yuan")
    inviter_coupon = serializers.CharField(allow_null=True)
    inviter_points = serializers.IntegerField()
    invitee_coupon = serializers.CharField(allow_null=True)


class ReferralBindIn(serializers.Serializer):
    code = serializers.CharField(max_length=12)


class CouponBuyIn(serializers.Serializer):
    template_id = serializers.IntegerField(min_value=1)


class CouponPurchaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    template_id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, help_text="yuan")
    status = serializers.CharField(help_text="pending | paid | closed | credited (sold out: money to the wallet)")
    coupon_id = serializers.IntegerField(allow_null=True)


class CouponPayOut(serializers.Serializer):
    purchase = CouponPurchaseOut()
    pay_params = PayParamsOut(help_text="pass to wx.requestPayment")
