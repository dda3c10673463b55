"""Shared test fixtures: one database, two operators, made once per test session.

Operators ``tenant-a`` (the default for tests) and ``tenant-b`` (for isolation tests)
are provisioned by the same service as in production, cloning the template schema.
Tests run inside ``tenant-a``'s schema unless they say otherwise; each test's data is
rolled back.
"""

from __future__ import annotations

import pytest
from django.db import connection
from hypothesis import HealthCheck, settings

# These machines are shared and their speed varies tenfold: property tests check what is
# computed, never how fast (speed lives in benchmarks/), so no deadline or slowness check.
settings.register_profile(
    "shared-machine", deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("shared-machine")


def _channel_layer_per_thread() -> None:
    """Tests run several ASGI servers in threads of one process, each with its own event
    loop (a deployment runs one loop per process). A channels_redis layer keeps receive
    state for one loop at a time, so each thread gets a layer of its own; they all meet in
    the same Redis, as separate processes would."""
    import threading

    import channels.layers

    class PerThreadLayers(channels.layers.ChannelLayerManager):
        _local = threading.local()

        @property
        def backends(self):
            if not hasattr(self._local, "backends"):
                self._local.backends = {}
            return self._local.backends

        @backends.setter
        def backends(self, value):
            self._local.backends = value

    channels.layers.channel_layers = PerThreadLayers()


_channel_layer_per_thread()


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language (zh-hans), whatever an earlier one left."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _operator_routes_forgotten():
    """The driver API's per-process operator cache starts empty in every test: a test's
    rolled-back changes to an operator (its status) must not reach the next one."""
    from tenants.selectors import operator_routes_forget

    operator_routes_forget()
    yield
    operator_routes_forget()


@pytest.fixture(scope="session")
def operators(django_db_setup, django_db_blocker):
    from tenants.models import MiniProgram
    from tenants.services import operator_create, platform_ensure, template_schema_ensure

    with django_db_blocker.unblock():
        platform_ensure(host="testserver")
        template_schema_ensure()
        made = {}
        for slug, appid in (("tenant-a", "wxtenanta0000001"), ("tenant-b", "wxtenantb0000001")):
            result = operator_create(
                slug=slug,
                name=f"测试运营商 {slug[-1].upper()}",
                domain=f"{slug}.testserver",
                admin_username="admin",
                admin_password="admin-pass-123",
            )
            MiniProgram.objects.create(
                operator=result.operator, appid=appid, app_secret=f"secret-{slug}"
            )
            made[slug] = result.operator
        connection.set_schema_to_public()
    return made


@pytest.fixture
def tenant(operators, db):
    """The operator tests run in (``tenant-a``), with its schema active."""
    operator = operators["tenant-a"]
    connection.set_tenant(operator)
    yield operator
    connection.set_schema_to_public()


@pytest.fixture
def other_tenant(operators, db):
    return operators["tenant-b"]


@pytest.fixture
def api(tenant):
    """A DRF client that speaks to ``tenant-a``'s driver API (X-Tenant header)."""
    from rest_framework.test import APIClient

    client = APIClient(HTTP_X_TENANT=tenant.slug)
    return client


@pytest.fixture
def member(tenant):
    from accounts.models import Member

    return Member.objects.create(openid="openid-test-member", nickname="测试车主")


@pytest.fixture
def member_api(api, member):
    """The driver API as ``member`` (bearer token, no tenant header)."""
    from rest_framework.test import APIClient

    from accounts.services import tokens_for

    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(member).access}")
    client.member = member
    return client


@pytest.fixture(scope="session")
def fake_wechat(operators):
    """The fake WeChat API server (real HTTP), with the test operators' apps registered."""
    from django.conf import settings

    from fakes.wechat_api import start_in_thread

    server = start_in_thread(permissive=False)
    server.register_app("wxtenanta0000001", "secret-tenant-a")
    server.register_app("wxtenantb0000001", "secret-tenant-b")
    previous = settings.WECHAT_API_BASE_URL
    settings.WECHAT_API_BASE_URL = server.url + "/"
    yield server
    settings.WECHAT_API_BASE_URL = previous
    server.shutdown()


@pytest.fixture(autouse=True)
def _split_rule_cache_clear():
    """Split rules are cached per process; each test's rows are rolled back under it, so
    every test starts with an empty rule cache."""
    from settlement.splits import rule_cache_clear

    rule_cache_clear()
    yield


# The fake WeChat Pay server (session fixtures ``pay_fake``, ``live_app`` and ``fake``): one
# registration for the whole suite, so billing's and charging's tests share one server.
from fakes.pytest_wechatpay import fake, live_app, partner, pay_fake  # noqa: E402, F401
