from rest_framework import serializers

from operations.models import Feedback, FeedbackReply


class FeedbackIn(serializers.Serializer):
    category = serializers.ChoiceField(choices=Feedback.Category.choices)
    text = serializers.CharField(max_length=1000, allow_blank=False, trim_whitespace=True)
    photos = serializers.ListField(child=serializers.URLField(max_length=500), max_length=9,
                                   required=False, default=list)
    order_id = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                        max_value=2**62)
    connector_id = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                            max_value=2**62)


class FollowUpIn(serializers.Serializer):
    text = serializers.CharField(max_length=1000, allow_blank=False, trim_whitespace=True)


class ReplyOut(serializers.ModelSerializer):
    from_staff = serializers.SerializerMethodField()

    class Meta:
        model = FeedbackReply
        fields = ["id", "text", "at", "from_staff"]

    def get_from_staff(self, obj) -> bool:
        return not obj.from_member


class FeedbackOut(serializers.ModelSerializer):
    order_number = serializers.SerializerMethodField()
    replies = ReplyOut(many=True, read_only=True)

    class Meta:
        model = Feedback
        fields = ["id", "category", "text", "photos", "order_number", "status", "created_at",
                  "replied_at", "replies"]

    def get_order_number(self, obj) -> str | None:
        return obj.order.number if obj.order_id else None
