"""Member sign-in, sessions and profile writes.

A sign-in is a ``MemberSession``; its tokens name it (``sid``). Refreshing rotates the
refresh token (the old one is spent); presenting a spent one revokes the session, since
only a copy can still hold it. Logout and disabling a member revoke sessions; an access
token of a revoked session is refused at once (``member_authenticate``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.errors import DomainError
from tenants.models import MiniProgram

from . import wechat
from .models import Member, MemberSession
from .tokens import TokenClaims, TokenError, token_decode, token_issue

logger = logging.getLogger(__name__)

# WeChat's errcodes for a code the client sent that cannot be exchanged: 40029 invalid
# code, 40163 code already used, 41008 missing code. The client calls wx.login() again.
WECHAT_CODE_ERRORS = frozenset({40029, 40163, 41008})


class LoginRefused(DomainError):
    """Raised with ``code``: ``member_disabled`` 403, ``wechat_code_invalid`` 400 (the
    client's code cannot be exchanged), ``wechat_error`` 502 (WeChat failed or could not be
    reached), ``mini_program_missing`` 409; 401 for the rest: ``token_invalid``,
    ``token_expired``, ``token_tenant_mismatch``, ``token_revoked`` (the session was ended),
    ``token_reused`` (a spent refresh token: the session is now ended)."""

    STATUS = {
        "member_disabled": 403,
        "wechat_code_invalid": 400,
        "wechat_error": 502,
        "mini_program_missing": 409,
    }

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


def _wechat_refused(exc: wechat.WeChatError, what: str) -> LoginRefused:
    """Our own words for a WeChat failure; WeChat's text goes to the log, not the client."""
    if exc.code in WECHAT_CODE_ERRORS:
        return LoginRefused(
            "wechat_code_invalid",
            _("This WeChat code is invalid or has already been used; please try again."),
        )
    logger.warning("WeChat %s failed: %s (errcode %s)", what, exc, exc.code)
    return LoginRefused("wechat_error", _("WeChat is not answering; please try again later."))


def _pair(session: MemberSession) -> TokenPair:
    schema, sid = connection.schema_name, str(session.pk)
    member_id = session.member_id
    return TokenPair(
        access=token_issue(member_id=member_id, schema_name=schema, session_id=sid, type="access"),
        refresh=token_issue(
            member_id=member_id, schema_name=schema, session_id=sid, type="refresh",
            jti=session.refresh_jti,
        ),
        member=session.member,
    )


def tokens_for(member: Member) -> TokenPair:
    """A new session for ``member`` and its first pair of tokens."""
    session = MemberSession.objects.create(member=member, refresh_jti=uuid.uuid4().hex)
    return _pair(session)


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
    """New tokens from a refresh token of this tenant, which is spent. Raises LoginRefused
    (``token_reused`` revokes the session: committed before raising)."""
    try:
        claims = token_decode(refresh, type="refresh")
    except TokenError as exc:
        raise LoginRefused(str(exc), _("Invalid or expired refresh token.")) from exc
    if claims.schema_name != connection.schema_name:
        raise LoginRefused("token_tenant_mismatch", _("This token was issued by another operator."))
    with transaction.atomic():
        # Locked: of two refreshes racing with one token, exactly one wins.
        session = (
            MemberSession.objects.select_for_update()
            .select_related("member")
            .filter(pk=_uuid(claims.session_id), member_id=claims.member_id)
            .first()
        )
        refused = _session_refusal(session)
        if refused is None and session.refresh_jti != claims.jti:
            _revoke(session, MemberSession.Revoked.REUSED)
            logger.warning("member %s: spent refresh token presented; session %s revoked",
                           session.member_id, session.pk)
            refused = LoginRefused("token_reused", _("This sign-in has ended; please log in again."))
        if refused is None:
            session.refresh_jti = uuid.uuid4().hex
            session.refreshed_at = timezone.now()
            session.save(update_fields=["refresh_jti", "refreshed_at"])
            return _pair(session)
    raise refused


def member_authenticate(claims: TokenClaims) -> Member:
    """The member behind a verified access token of the current schema, if its session is
    live and the member active. Raises LoginRefused (``token_invalid``, ``token_revoked``,
    ``member_disabled``). One query."""
    session = (
        MemberSession.objects.select_related("member")
        .filter(pk=_uuid(claims.session_id), member_id=claims.member_id)
        .first()
    )
    refused = _session_refusal(session)
    if refused is not None:
        raise refused
    return session.member


def member_logout(*, session_id: str) -> None:
    """End one session (its refresh and access tokens). Idempotent."""
    MemberSession.objects.filter(pk=_uuid(session_id), revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=MemberSession.Revoked.LOGOUT
    )


def member_sessions_revoke(*, member: Member, reason: str) -> int:
    """End every live session of ``member`` (e.g. when disabled); returns how many."""
    return member.sessions.filter(revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return None


def _session_refusal(session: MemberSession | None) -> LoginRefused | None:
    if session is None:
        return LoginRefused("token_invalid", _("Unknown sign-in."))
    if session.revoked_at is not None:
        return LoginRefused("token_revoked", _("This sign-in has ended; please log in again."))
    if not session.member.is_active:
        return LoginRefused("member_disabled", _("This account is disabled."))
    return None


def _revoke(session: MemberSession, reason: str) -> None:
    session.revoked_at = timezone.now()
    session.revoked_reason = reason
    session.save(update_fields=["revoked_at", "revoked_reason"])


def member_bind_phone(*, member: Member, code: str) -> Member:
    """Bind the phone number behind a ``getPhoneNumber`` code. Raises LoginRefused."""
    try:
        phone = wechat.phone_number(_mini_program(), code)
    except wechat.WeChatError as exc:
        raise _wechat_refused(exc, "phone lookup") from exc
    member.phone = phone
    member.save(update_fields=["phone"])
    return member
