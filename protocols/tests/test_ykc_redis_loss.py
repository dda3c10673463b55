"""Redis loses everything (flushed, restarted empty) while piles stay connected: their
command routes and liveness come back from their next frame, and the offline check does
not mark them offline meanwhile."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings
from django_tenants.utils import schema_context

from charging import bus, port
from protocols.ykc import messages as m
from stations import live

from .conftest import SCHEMA
from .helpers import committed, login, wait_for


def _flush_ours() -> None:
    """What FLUSHDB does to this run's keys (other runs share the server)."""
    r = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*", count=1000))
    if keys:
        r.delete(*keys)


def test_routes_and_liveness_come_back_from_the_next_frame(gateway, make_pile, pile_client, recorder):
    from stations.models import Pile
    from stations.services import piles_mark_offline

    code = make_pile()
    client = pile_client()
    login(client, code)
    wait_for(lambda: live.client().get(bus.route_key(SCHEMA, code)))
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code=code, online=True).exists())

    _flush_ours()
    assert bus.send(SCHEMA, port.ReadRealtime(pile_code=code, connector_no=1), 1) == \
        port.CommandResult(ok=False, error="pile_offline")

    client.send(m.Heartbeat(code, 1, False))
    client.recv(0x04)
    wait_for(lambda: live.client().get(bus.route_key(SCHEMA, code)), timeout=3)
    wait_for(lambda: live.client().exists(bus.alive_key(gateway.gateway.gateway_id)), timeout=3)
    assert live.pile_last_seen(SCHEMA, code) is not None

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(bus.send, SCHEMA, port.ReadRealtime(pile_code=code, connector_no=1), 5)
        client.recv(0x12)
        from .helpers import realtime

        client.send(realtime(code, status=2, plugged=True))
        assert pending.result(6).ok is True

    # The offline check, a heartbeat window later, finds the pile by its new score.
    def check():
        with schema_context(SCHEMA):
            return piles_mark_offline()

    assert code not in committed(check)


def test_a_pile_marked_offline_while_connected_comes_back_with_its_frames(
    gateway, make_pile, pile_client, recorder
):
    from stations.models import Pile
    from stations.services import _piles_mark_offline

    code = make_pile()
    client = pile_client()
    login(client, code)
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code=code, online=True).exists())

    def mark_offline():
        with schema_context(SCHEMA):
            return _piles_mark_offline([(code, None, live.datetime.now(live.UTC), None)])

    assert committed(mark_offline)
    _flush_ours()  # as after a flush: the gateway notices and re-reports its piles
    time.sleep(0.2)
    client.send(m.Heartbeat(code, 1, False))
    client.recv(0x04)
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code=code, online=True).exists(), timeout=5)


def test_a_route_not_registered_at_login_is_written_from_the_next_frame(gateway, make_pile,
                                                                       pile_client):
    code = make_pile()
    real = gateway.gateway.bus.register_many
    failed = []

    async def busy(schema, routes):
        if len(failed) < 2:  # the login batch's pipeline, then the pile's route alone
            failed.extend(routes)
            raise redis.exceptions.ConnectionError("No connection available.")
        return await real(schema, routes)

    gateway.gateway.bus.register_many = busy
    client = pile_client()
    try:
        client.send(m.Login(code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
        assert client.recv(0x02).message.success  # logged in all the same
        # The route is written just after the reply: wait for its failure to be counted.
        wait_for(lambda: gateway.gateway.metrics.errors.get("route_not_registered") == 1)
        assert failed == [code, code]
        assert gateway.gateway.metrics.errors.get("route_batch_failed") == 1
        assert not bus._redis().get(bus.route_key(SCHEMA, code))
        client.send(m.Heartbeat(code, 1, False))
        client.recv(0x04)
        wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, code)))
    finally:
        gateway.gateway.bus.register_many = real


@pytest.fixture
def quick_keep_alive(monkeypatch):
    monkeypatch.setattr(bus, "ALIVE_REFRESH_S", 0.2)


def test_an_expired_alive_key_is_set_again_without_a_loss(quick_keep_alive, gateway, make_pile,
                                                          pile_client):
    # The alive key expires when the gateway's loop held up past its TTL (a storm): Redis
    # lost nothing, so no route is rewritten and no pile is marked online again.
    code = make_pile()
    client = pile_client()
    login(client, code)
    alive = bus.alive_key(gateway.gateway.gateway_id)

    live.client().delete(alive)

    wait_for(lambda: live.client().exists(alive), timeout=3)
    client.send(m.Heartbeat(code, 1, False))
    client.recv(0x04)
    time.sleep(0.5)  # a keep-alive and live-state flushes later
    assert gateway.gateway.metrics.errors.get("redis_lost") == 0
    assert live.client().exists(bus.keys_key(gateway.gateway.gateway_id))
