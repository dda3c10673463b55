"""The OCPP gateway in a thread, simulated OCPP piles on their own loop, and a raw
WebSocket client for bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

from websockets.sync.client import connect

from evplatform.tests.helpers import free_port
from protocols.ocpp.gateway import OcppGateway
from protocols.ocpp.simulator import SimulatedOcppPile


class OcppGatewayThread:
    """An OCPP gateway with its own event loop in a daemon thread, on a port of
    ``EVP_TEST_PORT_RANGE``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gateway = OcppGateway(host="127.0.0.1", port=free_port(), metrics_host="127.0.0.1",
                                   metrics_port=0, gateway_id=f"ocpp-test-{id(self)}",
                                   db_threads=4)
        self.call(self.gateway.start())

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush(self) -> None:
        self.call(self.gateway.live.flush())
        self.call(self.gateway.flush_frames())
        self.call(self.gateway.flush_online())

    def stop(self) -> None:
        if self.loop.is_running():
            self.call(self.gateway.stop(), timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class SimLoop:
    """Simulated OCPP piles (``protocols.ocpp.simulator``) on their own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.piles: list[SimulatedOcppPile] = []
        self.tasks: list[asyncio.Task] = []

    def pile(self, code: str, url: str, **kwargs) -> SimulatedOcppPile:
        async def make():
            pile = SimulatedOcppPile(code, url, **kwargs)
            self.piles.append(pile)
            self.tasks.append(asyncio.create_task(pile.run()))
            return pile
        return self.call(make())

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn, *args):
        async def wrapper():
            return fn(*args)
        return self.call(wrapper())

    def online(self, pile: SimulatedOcppPile, timeout: float = 30) -> None:
        self.call(asyncio.wait_for(pile.online.wait(), timeout), timeout + 5)

    def drained(self, pile: SimulatedOcppPile, timeout: float = 30) -> None:
        """Wait until the pile's outbox is empty (every transaction message answered)."""
        async def wait():
            while pile.outbox:
                await asyncio.sleep(0.02)
        self.call(asyncio.wait_for(wait(), timeout), timeout + 5)

    def stop(self) -> None:
        async def settle():
            for pile in self.piles:
                pile.stop()
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=5)
            for task in self.tasks:
                task.cancel()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        self.call(settle())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class RawClient:
    """A blocking WebSocket client that sends raw text (bad input) and reads replies."""

    def __init__(self, url: str, code: str, password: str | None = None,
                 source: str | None = None) -> None:
        """``source``: the local address to connect from (another host, as the gateway
        sees it, e.g. ``127.0.0.2``)."""
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{code}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        extra = {"source_address": (source, 0)} if source else {}
        self.ws = connect(f"{url}/{code}", subprotocols=["ocpp1.6"],
                          additional_headers=headers, open_timeout=10, **extra)

    def send(self, text: str) -> None:
        self.ws.send(text)

    def recv(self, timeout: float = 10):
        return json.loads(self.ws.recv(timeout))

    def call(self, unique_id: str, action: str, payload: dict, timeout: float = 10):
        self.send(json.dumps([2, unique_id, action, payload]))
        return self.recv(timeout)

    def boot(self) -> list:
        return self.call("boot-1", "BootNotification",
                         {"chargePointVendor": "Test", "chargePointModel": "T1"})

    def close(self) -> None:
        self.ws.close()
