"""``/ws/bigscreen/`` on an operator's host: the big screen's state, pushed.

The operator comes from the Host header (its domain), the user from the admin session
cookie; a user who may not use the admin is closed with 4403, an unknown host with 4404.
On connect the whole state is sent; afterwards the server rebuilds it every
``BIGSCREEN_TICK_MS`` milliseconds (default 1000) from the aggregates and the live state in Redis and
sends it only when it changed, so a connector changing state reaches the screen within about
a second. The browser never polls.
"""

from __future__ import annotations

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

TICK_S = settings.BIGSCREEN_TICK_MS / 1000


def _host(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1").split(":")[0].lower()
    return ""


class BigScreenConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.schema, self.user = await self._authorise()
        if self.user is None:
            await self.close(code=self.schema)
            return
        await self.accept()
        self.last = None
        self.loop = asyncio.ensure_future(self._push())

    async def disconnect(self, code):
        if getattr(self, "loop", None):
            self.loop.cancel()

    async def receive_json(self, content, **kwargs):
        pass  # the screen only listens

    async def _push(self):
        while True:
            state = await self._state()
            text = json.dumps(state, sort_keys=True, default=str)
            if text != self.last:
                self.last = text
                await self.send(text_data=text)
            await asyncio.sleep(TICK_S)

    @database_sync_to_async
    def _authorise(self):
        from django.contrib.auth import (
            BACKEND_SESSION_KEY,
            HASH_SESSION_KEY,
            SESSION_KEY,
            load_backend,
        )
        from django.contrib.sessions.backends.db import SessionStore
        from django.utils.crypto import constant_time_compare
        from django_tenants.utils import schema_context

        from tenants.models import Domain

        domain = Domain.objects.select_related("tenant").filter(domain=_host(self.scope)).first()
        if domain is None or domain.tenant.schema_name == "public" or not domain.tenant.is_active:
            return 4404, None
        cookies = self.scope.get("cookies") or {}
        if not cookies:
            for name, value in self.scope.get("headers", ()):
                if name == b"cookie":
                    for part in value.decode("latin-1").split(";"):
                        k, _, v = part.strip().partition("=")
                        cookies[k] = v
        key = cookies.get(settings.SESSION_COOKIE_NAME, "")
        with schema_context(domain.tenant.schema_name):
            session = SessionStore(session_key=key)
            user_id = session.get(SESSION_KEY)
            backend_path = session.get(BACKEND_SESSION_KEY)
            if not user_id or backend_path not in settings.AUTHENTICATION_BACKENDS:
                return 4403, None
            user = load_backend(backend_path).get_user(user_id)
            if user is None or not (user.is_active and user.is_staff):
                return 4403, None
            if not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
                return 4403, None
        self.tenant = domain.tenant
        return domain.tenant.schema_name, user

    @database_sync_to_async
    def _state(self):
        from django.db import connection
        from django.utils import translation

        from . import dashboard

        connection.set_tenant(self.tenant)
        try:
            with translation.override(settings.LANGUAGE_CODE):
                return dashboard.screen(self.user)
        finally:
            connection.set_schema_to_public()
