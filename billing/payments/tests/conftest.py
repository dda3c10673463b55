"""Fixtures: the fake WeChat Pay server (real HTTP, real crypto), the Django app served
over real HTTP for notifications, tenant-a's merchant configured for the fake, a ledger
check after every test; and for the tariff tests a station with two YKC piles, tariffs,
fixed instants."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from billing import pricing
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
    from billing.wechatpay import configure_for_fake
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


def notify(note: dict, kind: str = "payment", slug: str = "tenant-a"):
    """Post a notification built by the fake into the app (test client, same transaction)."""
    return Client().post(
        f"/api/pay/notify/{slug}/{kind}",
        data=note["body"].encode(),
        content_type="application/json",
        headers={k: v for k, v in note["headers"].items() if k.lower() != "content-type"},
    )


@pytest.fixture(autouse=True)
def ledger_clean(request):
    """After each test that touched the database: the tenant's ledger balances."""
    if "db" not in request.fixturenames or "live_operator" in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    yield
    from django_tenants.utils import tenant_context

    from settlement.selectors import ledger_check

    with tenant_context(request.getfixturevalue("operators")["tenant-a"]):
        report = ledger_check()
    assert report.ok, report

# 2026-03-10 10:15 Asia/Shanghai (UTC+8): a weekday in the default (non-summer) season.
SPRING_MORNING = datetime(2026, 3, 10, 2, 15, tzinfo=UTC)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def station(tenant):
    from stations.models import Station

    return Station.objects.create(
        name="天河站",
        code="ST0001",
        address="广州市天河区",
        area_code="440106",
        latitude=Decimal("23.125000"),
        longitude=Decimal("113.320000"),
    )


def make_pile(station, code: str, protocol: str = "ykc"):
    from stations.models import Connector, Pile

    pile = Pile.objects.create(
        station=station, code=code, protocol=protocol, rated_power_kw=Decimal("60.0")
    )
    Connector.objects.create(
        pile=pile, number=1, rated_power_kw=Decimal("60.0"), qr_code=f"qr-{code}-1"
    )
    return pile


@pytest.fixture
def pile(station):
    return make_pile(station, "44010600000001")


@pytest.fixture
def other_pile(station):
    return make_pile(station, "44010600000002")


@pytest.fixture
def gd_tariff(tenant):
    """Guangdong TOU (flat 0.6 + 0.4), one version in force since 2020."""
    from billing.tariff_services import tariff_create, tariff_version_publish

    tariff = tariff_create(
        name="广东分时", draft=pricing.guangdong_tou_tariff(Decimal("0.6"), Decimal("0.4"))
    )
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    return tariff


@pytest.fixture
def flat_tariff(tenant):
    """Flat 1.0 + 0.5, one version in force since 2020."""
    from billing.tariff_services import tariff_create, tariff_version_publish

    tariff = tariff_create(name="统一价", draft=pricing.flat_tariff(Decimal("1.0"), Decimal("0.5")))
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    return tariff


@pytest.fixture
def admin_web(tenant):
    """A browser logged in to tenant-a's admin as its operator admin (superuser)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


@pytest.fixture
def owner_web(tenant, station):
    """A browser logged in as a station owner (站长) of ``station``."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.roles import STATION_OWNER, role_group, roles_sync

    roles_sync()
    user = get_user_model().objects.create_user(username="owner", password="x", is_staff=True)
    user.groups.add(role_group(STATION_OWNER))
    station.owners.add(user)
    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(user)
    return client
