"""Pytest fixtures for the fake WeChat Pay server (real HTTP, real crypto), with the Django app
served over real HTTP for its notifications and tenant-a's merchant configured for it.

Registered once, in the root ``conftest.py``, so every app's tests share one fake per session
(a second registration in another conftest would start a second server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.conf import settings
from django.db import connections

from fakes import wechatpay

TENANT_A_MCHID = "1900000101"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # dozens of notifications arrive at once in the concurrency tests


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@dataclass
class LiveApp:
    url: str
    server: WSGIServer


@pytest.fixture(scope="session")
def live_app() -> Iterator[LiveApp]:
    """Django behind a threaded WSGI server on a free port (its own DB connections, so
    it sees committed data only)."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()

    def app(environ, start_response):
        try:
            return list(handler(environ, start_response))
        finally:
            connections.close_all()  # this request thread's connections

    server = make_server("127.0.0.1", 0, app, _ThreadingWSGIServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield LiveApp(f"http://127.0.0.1:{server.server_port}", server)
    server.shutdown()


@dataclass
class PayFake:
    server: wechatpay.WeChatPayServer
    live: LiveApp

    def paid_notification(self, out_trade_no: str, **opts) -> dict:
        """Mark the order paid at the fake; return the (undelivered) notification."""
        return self.server.mark_paid(out_trade_no, deliver=False, **opts)["notification"]


@pytest.fixture(scope="session")
def pay_fake(operators, live_app, django_db_blocker) -> Iterator[PayFake]:
    """The fake WeChat Pay server, with tenant-a's merchant registered and configured."""
    from demo.wechatpay import configure_for_fake
    from tenants.models import MiniProgram

    server = wechatpay.start_in_thread()
    previous = settings.WECHATPAY_API_BASE_URL
    settings.WECHATPAY_API_BASE_URL = server.url
    with django_db_blocker.unblock():
        mp = MiniProgram.objects.get(operator=operators["tenant-a"])
        configure_for_fake(mp, fake_url=server.url, mchid=TENANT_A_MCHID, notify_base_url=live_app.url)
    yield PayFake(server, live_app)
    settings.WECHATPAY_API_BASE_URL = previous
    server.shutdown()


@pytest.fixture
def fake(pay_fake, tenant) -> Iterator[PayFake]:
    yield pay_fake
    pay_fake.server.failures.clear()


SP_MCHID, SUB_MCHID = "1900009001", "1900009101"


@pytest.fixture
def partner(fake, tenant) -> Iterator[object]:
    """tenant-a in service-provider mode: the platform's provider account registered at the
    fake (its own key, its own APIv3 key) and tenant-a its sub-merchant ``SUB_MCHID``. The
    database rows roll back with the test; the session's operator object is restored."""
    from demo.wechatpay import configure_service_provider_for_fake

    sp = configure_service_provider_for_fake(
        fake_url=fake.server.url, sp_mchid=SP_MCHID, operator=tenant, sub_mchid=SUB_MCHID)
    yield sp
    tenant.wechatpay_partner_mode, tenant.wechatpay_sub_mchid = False, ""
