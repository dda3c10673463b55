"""Calling a partner's T/CEC endpoints: envelope with our OperatorID, the partner's
secrets, its token (fetched with ``query_token``, cached on the partner until a minute
before it expires, fetched again once on ``Ret`` 4002).

:func:`call` returns a :class:`Reply`; transport failures (timeout, refused, HTTP ≥ 400,
a body that is not a signed CEC answer) raise :class:`CallFailed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from . import codec, convert
from .models import Partner


class CallFailed(Exception):
    """The partner could not be reached or answered something that is not CEC."""

    def __init__(self, message: str, request: str = "", response: str = "") -> None:
        super().__init__(message)
        self.request = request
        self.response = response


@dataclass(frozen=True)
class Reply:
    ret: int
    msg: str
    data: Any
    request: str
    response: str


_seq = 0


def _next_seq() -> str:
    global _seq
    _seq = _seq % 9999 + 1
    return f"{_seq:04d}"


def _post(partner: Partner, interface: str, data: Any, token: str = "") -> Reply:
    envelope = codec.request_build(
        partner.our_operator_id, partner.rename_out(data), partner.outbound,
        at=timezone.now().astimezone(convert.CHINA), seq=_next_seq(),
    )
    request_text = json.dumps(envelope, ensure_ascii=False)
    headers = {"Content-Type": "application/json;charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.post(partner.url(interface), content=request_text.encode(),
                              headers=headers, timeout=settings.CEC_HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise CallFailed(f"{type(exc).__name__}: {exc}", request_text) from exc
    body = response.text
    if response.status_code >= 400:
        raise CallFailed(f"HTTP {response.status_code}", request_text, body)
    try:
        ret, msg, answer = codec.response_parse(body, partner.outbound)
    except codec.CecError as err:
        raise CallFailed(f"bad answer (Ret {err.ret}): {err.msg}", request_text, body) from err
    if isinstance(answer, dict):
        answer = partner.rename_in(answer)
    return Reply(ret, msg, answer, request_text, body)


def token(partner: Partner, *, renew: bool = False) -> str:
    """Our access token at ``partner`` (cached; ``renew`` fetches a new one). Raises
    CallFailed when the partner refuses it."""
    now = timezone.now()
    if not renew and partner.out_token and partner.out_token_expires_at and (
        partner.out_token_expires_at > now + timedelta(seconds=60)
    ):
        return partner.out_token
    reply = _post(partner, "query_token", {"OperatorID": partner.our_operator_id,
                                           "OperatorSecret": partner.out_operator_secret})
    data = reply.data or {}
    if reply.ret != codec.RET_OK or data.get("SuccStat") != 0 or not data.get("AccessToken"):
        raise CallFailed(f"query_token refused: Ret {reply.ret} {reply.msg} "
                         f"FailReason {data.get('FailReason')}", reply.request, reply.response)
    partner.out_token = data["AccessToken"]
    partner.out_token_expires_at = now + timedelta(seconds=int(data.get("TokenAvailableTime") or 0))
    partner.save(update_fields=["out_token", "out_token_expires_at"])
    return partner.out_token


def call(partner: Partner, interface: str, data: Any) -> Reply:
    """POST ``data`` to the partner's ``interface`` with our token; on Ret 4002 the token is
    fetched again and the call made once more."""
    reply = _post(partner, interface, data, token(partner))
    if reply.ret == codec.RET_TOKEN:
        reply = _post(partner, interface, data, token(partner, renew=True))
    return reply
