"""Member sign-in and profile writes."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.errors import DomainError
from tenants.models import MiniProgram

from . import wechat
from .models import Member
from .tokens import TokenError, token_decode, token_issue


class LoginRefused(DomainError):
    """Raised with ``code`` (``member_disabled`` 403, ``wechat_error`` 502,
    ``mini_program_missing`` 409; any other, e.g. a bad token, 401)."""

    STATUS = {"member_disabled": 403, "wechat_error": 502, "mini_program_missing": 409}

    def __init__(self, code: str, detail: str):
        super().__init__(code, detail, self.STATUS.get(code, 401))


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    member: Member


def _mini_program() -> MiniProgram:
    mp = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    if mp is None:
        raise LoginRefused("mini_program_missing", _("This operator has no mini-program configured."))
    return mp


def tokens_for(member: Member) -> TokenPair:
    schema = connection.schema_name
    return TokenPair(
        access=token_issue(member_id=member.pk, schema_name=schema, type="access"),
        refresh=token_issue(member_id=member.pk, schema_name=schema, type="refresh"),
        member=member,
    )


def member_login_wechat(*, code: str) -> TokenPair:
    """Sign a driver in with a ``wx.login`` code: creates the member on first login.

    Raises LoginRefused.
    """
    try:
        session = wechat.code_to_session(_mini_program(), code)
    except wechat.WeChatError as exc:
        raise LoginRefused("wechat_error", str(exc)) from exc
    with transaction.atomic():
        member, _created = Member.objects.select_for_update().get_or_create(
            openid=session.openid, defaults={"unionid": session.unionid}
        )
        if not member.is_active:
            raise LoginRefused("member_disabled", _("This account is disabled."))
        member.last_login_at = timezone.now()
        fields = ["last_login_at"]
        if session.unionid and member.unionid != session.unionid:
            member.unionid = session.unionid
            fields.append("unionid")
        member.save(update_fields=fields)
    return tokens_for(member)


def member_refresh(*, refresh: str) -> TokenPair:
    """New tokens from a refresh token of this tenant. Raises LoginRefused."""
    try:
        claims = token_decode(refresh, type="refresh")
    except TokenError as exc:
        raise LoginRefused(str(exc), _("Invalid or expired refresh token.")) from exc
    if claims.schema_name != connection.schema_name:
        raise LoginRefused("token_tenant_mismatch", _("This token was issued by another operator."))
    member = Member.objects.filter(pk=claims.member_id).first()
    if member is None:
        raise LoginRefused("token_invalid", _("Unknown member."))
    if not member.is_active:
        raise LoginRefused("member_disabled", _("This account is disabled."))
    return tokens_for(member)


def member_bind_phone(*, member: Member, code: str) -> Member:
    """Bind the phone number behind a ``getPhoneNumber`` code. Raises LoginRefused."""
    try:
        phone = wechat.phone_number(_mini_program(), code)
    except wechat.WeChatError as exc:
        raise LoginRefused("wechat_error", str(exc)) from exc
    member.phone = phone
    member.save(update_fields=["phone"])
    return member
