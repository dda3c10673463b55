"""Pile impersonation on OCPP (issue #21): the same takeover rule as YKC. While a pile's
connection is alive, a connection for its code from another address is refused at the
handshake (HTTP 409, before any OCPP message), counted in the refused logins and raised
as an alarm; the same address (the pile reconnecting) or a stale session (nothing heard
for ``YKC_IDLE_HEARTBEATS`` heartbeat intervals) may replace it. The rule holds across
gateway processes: the bus route in Redis names the gateway that holds the pile, its
address and when the pile was last heard."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context
from websockets.exceptions import ConnectionClosed, InvalidStatus

from stations import live
from stations.models import Fault
from tenants.models import RefusedPileLogin

from .conftest import SCHEMA
from .helpers import wait_for
from .ocpp_helpers import OcppGatewayThread, RawClient


@pytest.fixture
def gateways(unblocked, make_pile):
    # After make_pile: the gateway stops (its offline marks written) before the piles go.
    made: list[OcppGatewayThread] = []

    def make() -> OcppGatewayThread:
        gw = OcppGatewayThread()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()


def _refused(code: str) -> RefusedPileLogin | None:
    with schema_context(get_public_schema_name()):
        return RefusedPileLogin.objects.filter(pile_code=code).first()


def _alarm(code: str) -> Fault | None:
    with schema_context(SCHEMA):
        return Fault.objects.filter(pile__code=code, code="takeover_refused",
                                    cleared_at__isnull=True).first()


def _holder_host(gw: OcppGatewayThread, code: str) -> str | None:
    async def read():
        session = gw.gateway.sessions.get(code)
        return session.peer.rsplit(":", 1)[0] if session is not None else None
    return gw.call(read())


def _refused_at_handshake(gw: OcppGatewayThread, code: str, source: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        RawClient(gw.url, code, source=source)
    return refused.value.response.status_code


def _online(gw: OcppGatewayThread, code: str, source: str = "127.0.0.1") -> RawClient:
    client = RawClient(gw.url, code, source=source)
    assert client.boot()[0] == 3
    assert client.call("hb", "Heartbeat", {})[0] == 3
    gw.flush()  # last heard → Redis, as every 50 ms
    return client


def _closed(client: RawClient) -> bool:
    try:
        client.call("after", "Heartbeat", {}, timeout=5)
    except (ConnectionClosed, TimeoutError):
        return True
    return False


def test_a_competing_connection_from_another_address_is_refused_and_the_pile_kept(
        gateways, make_pile):
    gw = gateways()
    code = make_pile(protocol="ocpp")
    pile = _online(gw, code)

    assert _refused_at_handshake(gw, code, "127.0.0.2") == 409
    # The real pile's session is untouched and still served.
    assert pile.call("hb-2", "Heartbeat", {})[0] == 3
    assert _holder_host(gw, code) == "127.0.0.1"
    refused = wait_for(lambda: _refused(code))
    assert refused.reason == RefusedPileLogin.Reason.TAKEOVER
    assert refused.peer.startswith("127.0.0.2:")
    alarm = wait_for(lambda: _alarm(code))
    assert "127.0.0.2" in alarm.description and "127.0.0.1" in alarm.description
    assert gw.gateway.metrics.errors.get("login_takeover") == 1

    assert _refused_at_handshake(gw, code, "127.0.0.3") == 409
    wait_for(lambda: _refused(code).count == 2)
    with schema_context(SCHEMA):  # one open alarm, refreshed
        assert Fault.objects.filter(pile__code=code, code="takeover_refused").count() == 1
    pile.close()


def test_the_same_address_reconnecting_replaces_the_old_connection(gateways, make_pile):
    gw = gateways()
    code = make_pile(protocol="ocpp")
    old = _online(gw, code)
    new = _online(gw, code)  # the pile again, its old socket not yet seen closed
    assert _closed(old)
    assert new.call("hb-2", "Heartbeat", {})[0] == 3
    assert _refused(code) is None
    new.close()


def test_a_stale_session_may_be_replaced_from_another_address(gateways, make_pile):
    gw = gateways()
    code = make_pile(protocol="ocpp", heartbeat_s=10)
    old = _online(gw, code)

    async def silence():  # nothing heard for longer than the idle limit
        session = gw.gateway.sessions[code]
        session.ws.evp_last_rx = time.time() - settings.YKC_IDLE_HEARTBEATS * 10 - 1
    gw.call(silence())

    new = _online(gw, code, source="127.0.0.2")
    assert _closed(old)
    assert _holder_host(gw, code) == "127.0.0.2"
    assert _refused(code) is None
    new.close()


def test_a_pile_held_by_another_gateway_obeys_the_same_rule(gateways, make_pile):
    a, b = gateways(), gateways()
    code = make_pile(protocol="ocpp", heartbeat_s=10)
    pile = _online(a, code)

    # At gateway B, from another address, while A's session is alive: refused.
    assert _refused_at_handshake(b, code, "127.0.0.2") == 409
    assert pile.call("hb-2", "Heartbeat", {})[0] == 3
    assert _holder_host(a, code) == "127.0.0.1"
    assert wait_for(lambda: _refused(code)).reason == RefusedPileLogin.Reason.TAKEOVER
    alarm = wait_for(lambda: _alarm(code))
    assert "127.0.0.2" in alarm.description and "127.0.0.1" in alarm.description
    assert b.gateway.metrics.errors.get("login_takeover") == 1

    # From the pile's own address, at B: B takes the pile and A lets go of it.
    moved = _online(b, code)
    assert _closed(pile)
    assert wait_for(lambda: _holder_host(a, code) is None)
    assert _holder_host(b, code) == "127.0.0.1"

    # Held by B and silent past the idle limit: another address may take it at A.
    async def silence():
        session = b.gateway.sessions[code]
        session.ws.evp_last_rx = time.time() - settings.YKC_IDLE_HEARTBEATS * 10 - 1
    b.call(silence())
    live.pile_seen(SCHEMA, code, None)
    stale = time.time() - settings.YKC_IDLE_HEARTBEATS * 10 - 1
    live.client().zadd(live.seen_key(SCHEMA), {code: stale})
    newcomer = _online(a, code, source="127.0.0.2")
    assert _closed(moved)
    assert wait_for(lambda: _holder_host(b, code) is None)
    assert _holder_host(a, code) == "127.0.0.2"
    newcomer.close()
