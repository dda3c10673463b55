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


class PhotoOut(serializers.Serializer):
    url = serializers.URLField(help_text="The photo's address, to send in feedback's photos.")


class ChatMessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    conversation = serializers.IntegerField()
    from_staff = serializers.BooleanField()
    staff_name = serializers.CharField(help_text="The staff member's name; empty for the driver's.")
    text = serializers.CharField()
    at = serializers.DateTimeField()
    client_id = serializers.CharField(help_text="The sender's own id for the message, if given.")


class ConversationOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["open", "closed"])
    assigned_to = serializers.CharField(help_text="The staff member answering; empty if nobody yet.")
    unread = serializers.IntegerField(help_text="Staff messages the driver has not read.")
    last_message_at = serializers.DateTimeField(allow_null=True)
    member_read_upto = serializers.IntegerField()
    staff_read_upto = serializers.IntegerField(help_text="Staff have read the driver's messages up to this id.")


class ChatOut(serializers.Serializer):
    conversation = ConversationOut(allow_null=True)
    messages = ChatMessageOut(many=True)
    unread = serializers.IntegerField(help_text="All unread staff messages of the member.")


class ChatMessageIn(serializers.Serializer):
    text = serializers.CharField(max_length=1000, allow_blank=False, trim_whitespace=True)
    client_id = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)


class ChatReadIn(serializers.Serializer):
    upto = serializers.IntegerField(min_value=0, max_value=2**62,
                                    help_text="The id of the last message read.")


class ChatQuery(serializers.Serializer):
    before = serializers.IntegerField(required=False, min_value=1, max_value=2**62,
                                      help_text="Older messages: the 50 before this message id.")
