"""DRF authentication of members by bearer token, bound to the request's tenant."""

from __future__ import annotations

from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import authentication, exceptions, permissions

from .models import Member
from .services import LoginRefused, member_authenticate
from .tokens import TokenError, bearer_token, token_decode


class TenantMismatch(exceptions.AuthenticationFailed):
    default_code = "token_tenant_mismatch"
    default_detail = gettext_lazy("This token was issued by another operator.")


class MemberTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <access token>``; the token must name this tenant.

    Raises 401 ``token_invalid`` / ``token_expired`` / ``token_tenant_mismatch`` /
    ``token_revoked`` (logged out, or the session ended) / ``member_disabled``.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        try:
            claims = token_decode(token)
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(
                _("Invalid or expired token."), code=str(exc)
            ) from exc
        if claims.schema_name != connection.schema_name:
            raise TenantMismatch()
        try:
            member = member_authenticate(claims)
        except LoginRefused as exc:
            raise exceptions.AuthenticationFailed(exc.detail, code=exc.code) from exc
        return member, claims

    def authenticate_header(self, request):
        return self.keyword


class IsMember(permissions.BasePermission):
    """Allows authenticated members only (a view opts out with AllowAny)."""

    def has_permission(self, request, view):
        return isinstance(request.user, Member)
