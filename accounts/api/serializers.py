from rest_framework import serializers

from accounts.models import Member


class WeChatLoginIn(serializers.Serializer):
    code = serializers.CharField(max_length=128, help_text="The code from wx.login().")


class RefreshIn(serializers.Serializer):
    refresh = serializers.CharField(max_length=2048)


class PhoneIn(serializers.Serializer):
    code = serializers.CharField(max_length=128, help_text="The code from getPhoneNumber.")


class MemberOut(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = ["id", "nickname", "phone", "status", "created_at"]


class TokensOut(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="seconds")
    member = MemberOut()
