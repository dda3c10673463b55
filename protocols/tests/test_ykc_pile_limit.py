"""The YKC gateway at its open-files limit: it holds at most ``max_piles`` connections
(the limit less a reserve for its own database, Redis and metrics connections), closes any
further one on arrival, counts it in the metrics, and keeps serving the piles it holds."""

from __future__ import annotations

import errno
import socket
import threading
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
        # Its accept loop resets what it refuses at once: no reserve for a burst of accepts.
        assert gateway.max_piles == limits.pile_capacity(
            own_connections=8 + 4 + REDIS_CONNECTIONS, backlog=0)
        assert 0 < gateway.max_piles < limits.open_files_limit()
    finally:
        gateway.executor.shutdown()
        gateway.background.shutdown()
    # Asked for more than the descriptors allow: capped at what they allow.
    gateway = YkcGateway(db_threads=8, max_piles=10**9)
    try:
        assert gateway.max_piles == limits.pile_capacity(
            own_connections=8 + 4 + REDIS_CONNECTIONS, backlog=0)
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
            # Reset on arrival: seen by connect() itself when the reset comes before it
            # returns (loopback), else by the first send or read.
            with pytest.raises(ConnectionError):
                extra = PileClient(gateway.port)
                refused.append(extra)
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


def test_connections_waiting_together_are_accepted_in_one_wake_up(gateway):
    """A storm's burst: the kernel's queue is emptied at once, not one connection per loop
    turn (libuv's way under uvloop, which let the queue overflow and the piles' SYNs drop)."""
    gw = gateway.gateway
    wake_ups = []

    def counting():
        wake_ups.append(len(gw.connections))
        gw._accept_waiting()

    fd = gw.listener.fileno()
    gateway.sync(lambda: (gw.loop.remove_reader(fd), gw.loop.add_reader(fd, counting)))
    clients = []
    connected = threading.Event()
    try:
        # The loop busy (as in a storm) until all twenty wait in the kernel's queue.
        gateway.loop.call_soon_threadsafe(connected.wait, 30)
        clients = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(20)]
        connected.set()

        wait_for(lambda: len(gw.connections) == 20, timeout=10)
        assert wake_ups == [0]  # all twenty in the first wake-up after the busy turn
    finally:
        connected.set()
        for client in clients:
            client.close()


class _FailingListener:
    """The gateway's listening socket whose next accept() fails with ``error``."""

    def __init__(self, sock, error: OSError) -> None:
        self.sock, self.error = sock, error

    def accept(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.sock.accept()

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_accepting_resumes_after_descriptors_ran_out(gateway, make_pile):
    gw = gateway.gateway
    gw.listener = _FailingListener(gw.listener, OSError(errno.EMFILE, "Too many open files"))

    client = PileClient(gateway.port)  # waits in the kernel's queue meanwhile ...
    code = make_pile()

    assert login(client, code).message.success  # ... and is accepted on the retry
    assert gw.metrics.errors.get("accept_failed") == 1
    client.close()
