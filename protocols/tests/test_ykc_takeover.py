"""Pile impersonation: a pile code is public, so a YKC login must also come from the pile's
SIM (ICCID bound on first login), from its station's networks when listed, and may not
take a live pile away from another address. Every refusal is listed and raises an alarm."""

from __future__ import annotations

import socket
import time

from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context

from protocols.ykc import messages as m
from stations.models import Fault, Pile, Station
from tenants.models import RefusedPileLogin

from .conftest import SCHEMA, PileClient, committed
from .helpers import login, wait_for

SIM = "89860012345678901234"
OTHER_SIM = "89860099999999999999"


def _login_with_sim(client, code: str, sim: str):
    client.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, sim, 4))
    reply = client.recv(0x02)
    if reply.message.success:
        client.recv(0x56)
    return reply


class PileFrom(PileClient):
    """A pile client connecting from another loopback address (another host, as the
    gateway sees it)."""

    def __init__(self, port_: int, source: str, timeout: float = 5.0) -> None:
        super().__init__(port_, timeout)
        self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", port_), timeout=timeout,
                                             source_address=(source, 0))


def _refused(code: str) -> RefusedPileLogin | None:
    with schema_context(get_public_schema_name()):
        return RefusedPileLogin.objects.filter(pile_code=code).first()


def _alarm(code: str, alarm: str) -> Fault | None:
    with schema_context(SCHEMA):
        return Fault.objects.filter(pile__code=code, code=alarm, cleared_at__isnull=True).first()


def test_first_login_binds_the_sim_and_another_sim_is_refused_with_an_alarm(
        gateway, make_pile, pile_client):
    code = make_pile()
    first = pile_client()
    assert _login_with_sim(first, code, SIM).message.success
    with schema_context(SCHEMA):
        assert Pile.objects.get(code=code).iccid == SIM
    first.close()

    impostor = pile_client()
    assert _login_with_sim(impostor, code, OTHER_SIM).message == m.LoginReply(code, False)
    assert impostor.closed()
    assert _refused(code).reason == RefusedPileLogin.Reason.ICCID_MISMATCH
    alarm = _alarm(code, "iccid_mismatch")
    assert alarm is not None and OTHER_SIM in alarm.description and alarm.source == "platform"
    with schema_context(SCHEMA):
        assert Pile.objects.get(code=code).iccid == SIM  # the binding stands

    # An all-zero ICCID is "none": it cannot stand in for the bound SIM either.
    assert not _login_with_sim(pile_client(), code, "0" * 20).message.success
    # The real pile (its own SIM) still logs in.
    assert _login_with_sim(pile_client(), code, SIM).message.success


def test_staff_approve_a_new_sim_by_changing_the_piles_iccid(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    assert _login_with_sim(client, code, SIM).message.success
    client.close()

    def rebind():
        with schema_context(SCHEMA):
            Pile.objects.filter(code=code).update(iccid=OTHER_SIM)

    committed(rebind)
    assert _login_with_sim(pile_client(), code, OTHER_SIM).message.success


def test_a_station_allow_list_refuses_other_addresses(gateway, make_pile, pile_client):
    code = make_pile()

    def networks(text):
        with schema_context(SCHEMA):
            Station.objects.filter(piles__code=code).update(pile_networks=text)

    committed(networks, "10.8.0.0/16\n192.168.1.7")
    try:
        client = pile_client()
        assert login(client, code).message.success is False
        assert client.closed()
        assert _refused(code).reason == RefusedPileLogin.Reason.ADDRESS_NOT_ALLOWED

        committed(networks, "10.8.0.0/16, 127.0.0.0/8")
        assert login(pile_client(), code).message.success is True
    finally:
        committed(networks, "")


def test_a_competing_login_from_another_address_is_refused_and_the_pile_kept(
        gateway, make_pile, pile_client):
    code = make_pile()
    pile = pile_client()
    login(pile, code)

    impostor = PileFrom(gateway.port, "127.0.0.2")
    try:
        impostor.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
        assert impostor.recv(0x02).message == m.LoginReply(code, False)
        assert impostor.closed()
    finally:
        impostor.close()

    # The real pile's session is untouched and still served.
    pile.send(m.Heartbeat(code, 1, False))
    assert pile.recv(0x04).message == m.HeartbeatReply(code, 1, 0)
    assert gateway.sync(lambda: gateway.gateway.sessions[code].host) == "127.0.0.1"
    refused = wait_for(lambda: _refused(code))
    assert refused.reason == RefusedPileLogin.Reason.TAKEOVER
    assert refused.peer.startswith("127.0.0.2:")
    alarm = wait_for(lambda: _alarm(code, "takeover_refused"))
    assert "127.0.0.2" in alarm.description and "127.0.0.1" in alarm.description
    assert gateway.sync(lambda: gateway.gateway.metrics.errors.get("login_takeover")) == 1

    # Every refused takeover is counted (one open alarm, refreshed).
    again = PileFrom(gateway.port, "127.0.0.3")
    try:
        again.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
        assert again.recv(0x02).message.success is False
    finally:
        again.close()
    wait_for(lambda: _refused(code).count == 2)
    alarm = wait_for(lambda: _alarm(code, "takeover_refused")
                     if "127.0.0.3" in _alarm(code, "takeover_refused").description else None)
    with schema_context(SCHEMA):
        assert Fault.objects.filter(pile__code=code, code="takeover_refused").count() == 1


def test_a_stale_session_may_be_replaced_from_another_address(gateway, make_pile, pile_client):
    code = make_pile()
    pile = pile_client()
    login(pile, code)

    def silence():  # nothing heard for more than the idle limit (3 heartbeat intervals)
        conn = gateway.gateway.sessions[code]
        conn.last_rx = gateway.gateway.loop.time() - 3 * conn.heartbeat_interval - 1

    gateway.sync(silence)
    newcomer = PileFrom(gateway.port, "127.0.0.2")
    try:
        newcomer.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
        assert newcomer.recv(0x02).message.success is True
        assert pile.closed()
        assert gateway.sync(lambda: gateway.gateway.sessions[code].host) == "127.0.0.2"
    finally:
        newcomer.close()


def test_a_pile_held_by_another_gateway_process_obeys_the_same_rule(gateway, make_pile,
                                                                    pile_client):
    """Gateway A holds the pile; a login at gateway B is judged from the bus route (A's
    connection address) and the pile's last-seen time in Redis."""
    from stations import live

    from .helpers import GatewayThread

    other = GatewayThread()
    try:
        code = make_pile()
        pile = pile_client()
        login(pile, code)
        pile.send(m.Heartbeat(code, 1, False))
        pile.recv(0x04)
        gateway.flush()

        impostor = PileFrom(other.port, "127.0.0.2")
        try:
            impostor.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
            assert impostor.recv(0x02).message == m.LoginReply(code, False)
            assert impostor.closed()
        finally:
            impostor.close()
        pile.send(m.Heartbeat(code, 1, False))
        assert pile.recv(0x04).message == m.HeartbeatReply(code, 1, 0)
        assert wait_for(lambda: _refused(code)).reason == RefusedPileLogin.Reason.TAKEOVER
        alarm = wait_for(lambda: _alarm(code, "takeover_refused"))
        assert "127.0.0.2" in alarm.description and "127.0.0.1" in alarm.description
        assert other.sync(lambda: other.gateway.metrics.errors.get("login_takeover")) == 1

        # A stale session at A (nothing heard past the idle limit) may be taken at B. A's
        # last-seen writes are batched: flushed first, so none lands after the stale time.
        gateway.flush()
        stale = time.time() - settings.YKC_IDLE_HEARTBEATS * 10 - 1
        live.client().zadd(live.seen_key(SCHEMA), {code: stale})
        newcomer = PileFrom(other.port, "127.0.0.2")
        try:
            newcomer.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
            assert newcomer.recv(0x02).message.success is True
            assert pile.closed()  # A was told by the bus to let go
            assert wait_for(lambda: gateway.sync(lambda: code not in gateway.gateway.sessions))
        finally:
            newcomer.close()
    finally:
        other.stop()
