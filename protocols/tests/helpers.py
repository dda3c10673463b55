"""Messages a test pile sends, a poll helper, and a gateway running in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from django_tenants.utils import get_public_schema_name, schema_context

from protocols.ykc import messages as m
from protocols.ykc.fields import PILE_TZ
from protocols.ykc.gateway import YkcGateway

SCHEMA = "op_tenant_a"  # the test operator's (conftest's ``operators["tenant-a"]``)


def login_message(code: str, connectors: int = 1) -> m.Login:
    return m.Login(code, 0, connectors, 0x10, "T1.0.0", 0, "0" * 20, 4)


def login(client, code: str, connectors: int = 1, schema: str = "op_tenant_a"):
    """Log ``code`` in on ``client``; returns the 0x02 reply frame (0x56 is consumed)."""
    client.send(login_message(code, connectors))
    reply = client.recv(0x02)
    if reply.message.success:
        client.recv(0x56)
        # The bus route is written just after the reply; commands need it.
        from charging import bus

        wait_for(lambda: bus._redis().get(bus.route_key(schema, code)))
    return reply


def realtime(code: str, connector: int = 1, *, status: int = 2, plugged: bool = False,
             trade_no: str = "0" * 32, energy: str = "0", amount: str = "0",
             voltage: str = "0", current: str = "0") -> m.RealtimeData:
    return m.RealtimeData(trade_no, code, connector, status, 1, plugged, Decimal(voltage),
                          Decimal(current), 30, "0" * 16, 50, 30, 10, 20, Decimal(energy),
                          Decimal(energy), Decimal(amount), m.HardwareFault(0))


def record(code: str, trade_no: str, connector: int = 1, energy: str = "10.0000",
           amount: str = "12.3400") -> m.TransactionRecord:
    start = datetime(2026, 11, 20, 8, 0, tzinfo=PILE_TZ)
    end = datetime(2026, 11, 20, 9, 0, tzinfo=PILE_TZ)
    e = Decimal(energy)
    zero = m.PeriodUsage(Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"))
    flat = m.PeriodUsage(Decimal("1.23400"), e, e, Decimal(amount))
    return m.TransactionRecord(trade_no, code, connector, start, end, (zero, zero, flat, zero),
                               Decimal("100.0000"), Decimal("100.0000") + e, e, e,
                               Decimal(amount), "LGAG4PY33S6013235", 1, end, 0x40,
                               "0" * 16)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; returns it (or fails)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    where = getattr(predicate, "__code__", None)
    line = f" ({where.co_filename.rsplit('/', 1)[-1]}:{where.co_firstlineno})" if where else ""
    raise AssertionError(f"condition not met in {timeout} s{line}; last value {value!r:.200}")


class GatewayThread:
    """A gateway with its own event loop in a daemon thread."""

    def __init__(self, port_: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gateway = YkcGateway(host="127.0.0.1", port=port_, metrics_host="127.0.0.1",
                                  metrics_port=0, gateway_id=f"test-{id(self)}", db_threads=4)
        self.call(self.gateway.start())

    @property
    def port(self) -> int:
        return self.gateway.port

    def call(self, coro, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def sync(self, fn, *args):
        """Run a plain function on the gateway's loop (its state is loop-owned)."""
        async def wrapper():
            return fn(*args)
        return self.call(wrapper())

    def flush(self) -> None:
        self.call(self.gateway.live.flush())
        self.call(self.gateway.batcher.flush())

    def stop(self) -> None:
        """Stop the gateway (its sessions closed, piles marked offline). On a machine too
        busy to finish within a minute, say so and stop the loop anyway: a teardown is not
        what the test checks."""
        if self.loop.is_running():
            try:
                self.call(self.gateway.stop(), timeout=60)
            except TimeoutError:
                import warnings

                warnings.warn("the test gateway did not stop within 60 s", stacklevel=2)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def committed(fn, *args, **kwargs):
    """Run ``fn`` in a fresh thread on its own connection (committed at once)."""
    from django.db import connection

    result: dict = {}

    def target():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def in_schema(fn, *args):
    """``committed`` in the test operator's schema."""
    def run():
        with schema_context(SCHEMA):
            return fn(*args)
    return committed(run)



@contextmanager
def station_with_limit(operator, *, name: str, station_prefix: str, pile_prefix: str,
                       limit: Decimal, protocol: str = "ykc", piles: int = 3,
                       connectors: int = 1, pile_kw: Decimal = Decimal("60")):
    """A committed station with a ``limit`` kW power limit and ``piles`` registered piles of
    ``protocol``, ``pile_kw`` each, shared by their ``connectors`` DC connectors (codes
    ``{pile_prefix}{tag}001``…, QR values code + connector number); yields
    (station, codes) and removes them with their orders, plans and queue afterwards. A test
    asks for it before the gateway and the simulated piles, so they stop (and mark the piles
    offline, opening offline faults) before the piles are deleted."""
    from charging.models import ChargingOrder, PowerPlan, QueueEntry
    from stations.models import Connector, Pile, Station
    from tenants.models import PileRegistration

    tag = f"{int(time.time() * 1000) % 10**7:07d}"
    codes = [f"{pile_prefix}{tag}{n:03d}" for n in range(1, piles + 1)]

    def make():
        with schema_context(SCHEMA):
            station = Station.objects.create(
                name=name, code=f"{station_prefix}{tag}", address="-", area_code="310000",
                latitude=Decimal("31.2"), longitude=Decimal("121.4"), max_power_kw=limit)
            for code in codes:
                pile = Pile.objects.create(station=station, code=code, rated_power_kw=pile_kw,
                                           protocol=protocol, connector_count=connectors)
                for n in range(1, connectors + 1):
                    Connector.objects.create(pile=pile, number=n, rated_power_kw=pile_kw / connectors,
                                             qr_code=f"{code}{n:02d}",
                                             connector_type=Connector.Type.DC)
        with schema_context(get_public_schema_name()):
            for code in codes:
                PileRegistration.objects.create(code=code, operator=operator)
        return station

    def remove(station):
        with schema_context(SCHEMA):
            QueueEntry.objects.filter(station=station).delete()
            PowerPlan.objects.filter(station=station).delete()
            ChargingOrder.objects.filter(station=station).delete()
            Pile.objects.filter(station=station).delete()
            station.delete()
        with schema_context(get_public_schema_name()):
            PileRegistration.objects.filter(code__in=codes).delete()

    station = committed(make)
    try:
        yield station, codes
    finally:
        committed(remove, station)
