"""Member sign-in and profile writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.models import MiniProgram

from . import wechat
from .models import Member
from .tokens import TokenError, token_decode, token_issue

logger = logging.getLogger(__name__)

# WeChat's errcodes for a code the client sent that cannot be exchanged: 40029 invalid
# code, 40163 code already used, 41008 missing code. The client calls wx.login() again.
WECHAT_CODE_ERRORS = frozenset({40029, 40163, 41008})


class LoginRefused(Exception):
    """Raised with ``code``: ``member_disabled``, ``wechat_code_invalid`` (the client's code
    cannot be exchanged), ``wechat_error`` (WeChat failed or could not be reached),
    ``mini_program_missing``, ``token_invalid``, ``token_expired``, ``token_tenant_mismatch``."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


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


def _wechat_refused(exc: wechat.WeChatError, what: str) -> LoginRefused:
    """Our own words for a WeChat failure; WeChat's text goes to the log, not the client."""
    if exc.code in WECHAT_CODE_ERRORS:
        return LoginRefused(
            "wechat_code_invalid",
            _("This WeChat code is invalid or has already been used; please try again."),
        )
    logger.warning("WeChat %s failed: %s (errcode %s)", what, exc, exc.code)
    return LoginRefused("wechat_error", _("WeChat is not answering; please try again later."))


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
        raise _wechat_refused(exc, "login") from exc
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
        raise _wechat_refused(exc, "phone lookup") from exc
    member.phone = phone
    member.save(update_fields=["phone"])
    return member
