"""Driver tokens: JWT (HS256, SECRET_KEY) naming the member and the operator's schema.

Access tokens live MEMBER_ACCESS_TOKEN_TTL seconds, refresh tokens
MEMBER_REFRESH_TOKEN_TTL. Claims: ``sub`` member id, ``ten`` schema name, ``sid`` the
sign-in session (``accounts.MemberSession``: revoking it ends both tokens), ``typ``
access|refresh, ``iat``, ``exp``, ``jti``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

ALGORITHM = "HS256"


class TokenError(Exception):
    """A token that is malformed, expired, of the wrong type or badly signed."""


@dataclass(frozen=True)
class TokenClaims:
    member_id: int
    schema_name: str
    session_id: str
    type: str
    expires_at: int
    jti: str


def token_issue(
    *, member_id: int, schema_name: str, session_id: str, type: str = "access", jti: str | None = None
) -> str:
    ttl = settings.MEMBER_ACCESS_TOKEN_TTL if type == "access" else settings.MEMBER_REFRESH_TOKEN_TTL
    now = int(time.time())
    payload = {
        "sub": str(member_id),
        "ten": schema_name,
        "sid": session_id,
        "typ": type,
        "iat": now,
        "exp": now + ttl,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=ALGORITHM)


def token_decode(token: str, *, type: str = "access") -> TokenClaims:
    """Verify and read a token; raises TokenError."""
    try:
        payload = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "ten", "sid", "typ", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token_expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("token_invalid") from exc
    if payload["typ"] != type:
        raise TokenError("token_invalid")
    try:
        member_id = int(payload["sub"])
    except (TypeError, ValueError) as exc:
        raise TokenError("token_invalid") from exc
    return TokenClaims(
        member_id=member_id,
        schema_name=str(payload["ten"]),
        session_id=str(payload["sid"]),
        type=payload["typ"],
        expires_at=int(payload["exp"]),
        jti=str(payload["jti"]),
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
