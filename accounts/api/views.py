"""Driver sign-in: WeChat login, token refresh (rotating), logout, phone binding, profile."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from accounts import services
from evplatform.api.schema import ERROR
from evplatform.net import client_ip

from .serializers import MemberOut, PhoneIn, RefreshIn, TokensOut, WeChatLoginIn


class ClientAddressThrottle(AnonRateThrottle):
    """Per client address, as evplatform.net.client_ip finds it behind trusted proxies."""

    def get_ident(self, request):
        return client_ip(request)


class LoginThrottle(ClientAddressThrottle):
    scope = "login"


class RefreshThrottle(ClientAddressThrottle):
    scope = "token_refresh"


def _tokens(pair: services.TokenPair) -> Response:
    body = {
        "access": pair.access,
        "refresh": pair.refresh,
        "token_type": "Bearer",
        "expires_in": settings.MEMBER_ACCESS_TOKEN_TTL,
        "member": MemberOut(pair.member).data,
    }
    return Response(body)


@extend_schema(request=WeChatLoginIn, responses={200: TokensOut, 502: ERROR}, auth=[])
@api_view(["POST"])
@permission_classes([AllowAny])
@throttle_classes([LoginThrottle])
def wechat_login(request):
    data = WeChatLoginIn(data=request.data)
    data.is_valid(raise_exception=True)
    return _tokens(services.member_login_wechat(code=data.validated_data["code"]))


@extend_schema(request=RefreshIn, responses=TokensOut, auth=[])
@api_view(["POST"])
@permission_classes([AllowAny])
@throttle_classes([RefreshThrottle])
def token_refresh(request):
    data = RefreshIn(data=request.data)
    data.is_valid(raise_exception=True)
    return _tokens(services.member_refresh(refresh=data.validated_data["refresh"]))


@extend_schema(request=None, responses={204: None})
@api_view(["POST"])
def logout(request):
    """End this sign-in: its refresh token and every access token of it stop working."""
    services.member_logout(session_id=request.auth.session_id)
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=PhoneIn, responses={200: MemberOut, 502: ERROR})
@api_view(["POST"])
def phone_bind(request):
    data = PhoneIn(data=request.data)
    data.is_valid(raise_exception=True)
    member = services.member_bind_phone(member=request.user, code=data.validated_data["code"])
    return Response(MemberOut(member).data)


@extend_schema(responses=MemberOut)
@api_view(["GET"])
def me(request):
    return Response(MemberOut(request.user).data)
