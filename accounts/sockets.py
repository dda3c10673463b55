"""What the drivers' WebSockets share (the order socket in ``charging.consumers``, the
support chat in ``operations.consumers``): the sign-in check and tolerant JSON.

A driver socket signs in with the handshake's ``Authorization: Bearer <access>`` or a first
message ``{"type": "auth", "token": "<access>"}`` within ``AUTH_TIMEOUT_S`` seconds; close
codes 4401 (no, bad or ended sign-in), 4403 (forbidden), 4404 (not found).
"""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import schema_context

from tenants.selectors import operator_get_by_schema

from .services import LoginRefused, member_authenticate
from .tokens import TokenClaims

AUTH_TIMEOUT_S = 10
UNAUTHORIZED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404


def member_sign_in_refusal(claims: TokenClaims) -> str | None:
    """Why the sign-in ``claims`` stand for no longer holds (``"tenant_inactive"`` or
    :class:`LoginRefused`'s code: member disabled, signed out…), None while it does.
    Synchronous (database): call through ``database_sync_to_async``."""
    operator = operator_get_by_schema(claims.schema_name)
    if operator is None or not operator.is_active:
        return "tenant_inactive"
    with schema_context(claims.schema_name):
        try:
            member_authenticate(claims)
        except LoginRefused as exc:
            return exc.code
    return None


class TolerantJsonConsumer(AsyncJsonWebsocketConsumer):
    """A JSON consumer for which binary, non-JSON or over-nested text is ``None`` content
    (for ``receive_json`` to refuse), never an exception in the consumer."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data) if text_data else None
        except (ValueError, RecursionError):
            content = None
        await self.receive_json(content)
