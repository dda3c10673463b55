"""The YKC gateway at its open-files limit: it holds at most ``max_piles`` connections
(the limit less a reserve for its own database, Redis and metrics connections), closes any
further one on arrival, counts it in the metrics, and keeps serving the piles it holds."""

from __future__ import annotations

import urllib.request

import pytest

from protocols import limits
from protocols.ykc import messages as m
from protocols.ykc.gateway import YkcGateway
from protocols.ykc.gateway.server import REDIS_CONNECTIONS

from .conftest import PileClient
from .helpers import login, wait_for


def _scrape(gateway) -> str:
    url = f"http://127.0.0.1:{gateway.gateway.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_capacity_is_the_open_files_limit_less_the_gateways_own():
    assert limits.pile_capacity(own_connections=76, limit=20_000) == \
        20_000 - 76 - limits.LISTEN_BACKLOG - limits.OWN_RESERVE
    assert limits.pile_capacity(own_connections=76, limit=500) == 0
    gateway = YkcGateway(db_threads=8)
    try:
        assert gateway.max_piles == limits.pile_capacity(
            own_connections=8 + 4 + REDIS_CONNECTIONS)
        assert 0 < gateway.max_piles < limits.open_files_limit()
    finally:
        gateway.executor.shutdown()
        gateway.background.shutdown()
    # Asked for more than the descriptors allow: capped at what they allow.
    gateway = YkcGateway(db_threads=8, max_piles=10**9)
    try:
        assert gateway.max_piles == limits.pile_capacity(
            own_connections=8 + 4 + REDIS_CONNECTIONS)
    finally:
        gateway.executor.shutdown()
        gateway.background.shutdown()


def test_piles_past_the_limit_are_refused_and_the_held_ones_served(gateway, make_pile):
    gateway.gateway.max_piles = 2
    held = []
    for _ in range(2):
        code = make_pile()
        client = PileClient(gateway.port)
        assert login(client, code).message.success
        held.append((client, code))
    extra_code = make_pile()
    refused = []
    try:
        for _ in range(3):
            extra = PileClient(gateway.port)
            refused.append(extra)
            with pytest.raises(ConnectionError):
                extra.send(m.Login(extra_code, 0, 1, 0x10, "T1.0.0", 0, "0" * 20, 4))
                extra.recv(0x02)
        assert gateway.gateway.metrics.refused.get("pile_limit") == 3
        text = _scrape(gateway)
        assert 'ykc_connections_refused_total{reason="pile_limit"} 3' in text
        assert "ykc_connections_max 2" in text
        assert len(gateway.gateway.connections) == 2
        # The piles held go on: heartbeats answered.
        for client, code in held:
            client.send(m.Heartbeat(code, 1, False))
            assert client.recv(0x04).message.pile_code == code
        # A held pile leaves: the next one is admitted.
        held[0][0].close()
        wait_for(lambda: len(gateway.gateway.connections) == 1, timeout=10)
        late = PileClient(gateway.port)
        refused.append(late)
        assert login(late, extra_code).message.success
        assert gateway.gateway.metrics.refused.get("pile_limit") == 3
    finally:
        for client in refused + [c for c, _ in held[1:]]:
            client.close()
