"""Fixtures for the gateway tests: a real gateway on loopback (its own event loop in a
thread), committed piles in ``tenant-a``, a recording stand-in for the charging domain,
and a blocking pile client speaking the codec over a real socket.

The gateway's pool threads use their own database connections and must see what a test
sets up, so fixtures write through :func:`committed` (another thread, its own connection,
autocommit) and delete it afterwards; the test's own connection only reads (READ COMMITTED
sees those commits). Redis keys of this run are cleared around each test.
"""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context

from charging import port
from protocols.ykc import FrameSplitter, encode_frame

from .helpers import GatewayThread, committed

_codes = itertools.count(1)
START_BYTE = 0x68  # YKC's frame start: kept out of the tests' pile codes (make_pile)
SCHEMA = "op_tenant_a"


def pytest_collection_modifyitems(items):
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.django_db)


def _redis_clear() -> None:
    r = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(r.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*", count=1000))
    if keys:
        r.delete(*keys)


@pytest.fixture
def unblocked(operators, django_db_blocker):
    """Database access for the test and the gateway's threads (committed data)."""
    with django_db_blocker.unblock():
        _redis_clear()
        yield
        _redis_clear()


@pytest.fixture(scope="package")
def station(operators, django_db_blocker):
    """The gateway tests' station in tenant-a, committed; removed after this package's
    tests, so later packages (stations' counts) never see it."""
    from stations.models import Station

    def make():
        with schema_context(SCHEMA):
            return Station.objects.get_or_create(
                code="GW-TEST", defaults={"name": "网关测试站", "address": "测试路 1 号",
                                          "area_code": "310000", "latitude": Decimal("31.2"),
                                          "longitude": Decimal("121.4")})[0]

    def remove():
        import warnings

        from django.db.models import ProtectedError

        with schema_context(SCHEMA):
            try:
                Station.objects.filter(code="GW-TEST").delete()
            except ProtectedError as exc:  # a test left an order on it: say so, keep going
                warnings.warn(f"the gateway tests' station is still in use: {exc}", stacklevel=1)

    with django_db_blocker.unblock():
        yield committed(make)
        committed(remove)


@pytest.fixture
def make_pile(unblocked, station, operators):
    """``make_pile(connectors=1, enabled=True, operator="tenant-a", register=True)`` →
    a committed pile code (removed with everything logged for it afterwards)."""
    from stations.models import Pile
    from tenants.models import PileRegistration

    made: list[str] = []

    def make(*, connectors: int = 1, enabled: bool = True, operator: str = "tenant-a",
             register: bool = True, in_estate: bool = True, heartbeat_s: int = 10,
             protocol: str = "ykc", password: str = "") -> str:
        # No 0x68 inside a pile's code: after a garbled frame the gateway resyncs on the
        # next 0x68, and one in the code would make the tests' timing depend on the clock.
        # The clock's digits fill two whole bytes, which the counter cannot change: step
        # the stamp past them (for ~100 s in every 10,000 the counter ran past 5 digits).
        stamp = int(time.time()) % 100000
        while "68" in (f"{stamp:05d}"[:2], f"{stamp:05d}"[2:4]):
            stamp = (stamp + 100) % 100000
        code = f"3201{stamp:05d}{next(_codes) % 100000:05d}"
        while START_BYTE in bytes.fromhex(code):
            code = f"3201{stamp:05d}{next(_codes) % 100000:05d}"
        made.append(code)
        committed(create, code, connectors, enabled, operator, register, in_estate,
                  heartbeat_s, protocol, password)
        return code

    def create(code, connectors, enabled, operator, register, in_estate, heartbeat_s,
               protocol, password):
        if in_estate:
            with schema_context(SCHEMA):
                pile = Pile(station=station, code=code, rated_power_kw=60,
                            connector_count=connectors, enabled=enabled,
                            heartbeat_interval_s=heartbeat_s, protocol=protocol)
                pile.ocpp_password_set(password)
                pile.save()
                for n in range(1, connectors + 1):
                    pile.connectors.create(number=n, rated_power_kw=60, qr_code=f"{code}{n:02d}")
        if register:
            with schema_context(get_public_schema_name()):
                PileRegistration.objects.create(code=code, operator=operators[operator])

    yield make
    committed(cleanup, made)


def cleanup(made: list[str]) -> None:
    from charging.models import MeterSample
    from protocols.models import FrameLog, OcppTransaction, SessionMessage
    from stations.models import Pile
    from tenants.models import PileRegistration, RefusedPileLogin

    with schema_context(SCHEMA):
        Pile.objects.filter(code__in=made).delete()
        for model in (FrameLog, MeterSample, SessionMessage, OcppTransaction):
            model.objects.filter(pile_code__in=made).delete()
    with schema_context(get_public_schema_name()):
        PileRegistration.objects.filter(code__in=made).delete()
        RefusedPileLogin.objects.filter(pile_code__in=made).delete()


@pytest.fixture
def gateway(unblocked, make_pile):
    # Depends on make_pile so that the gateway stops (and its pool threads finish marking
    # piles offline) before the test's piles are deleted.
    gw = GatewayThread()
    yield gw
    gw.stop()


PASS_THROUGH = (port.PileLogin, port.PileLogins, port.PileOnline, port.PilesOnline,
                port.PileOffline, port.PilesOffline, port.ConnectorStatusChanged,
                port.ReadingsSampled)


@dataclass
class Recorder:
    """Stands in for the charging domain behind ``charging.handlers.handle``: records every
    event, stores transaction records by trade number (acknowledging duplicates), decides
    card starts. Pile presence, connector status and samples go on to the real handlers
    (``real``), which the gateway tests check in the database."""

    events: list = field(default_factory=list)
    records: dict = field(default_factory=dict)
    fail_records: bool = False
    # The answer to card starts, or a function of the CardStartRequest giving it.
    card_decision: port.CardStartDecision = field(default_factory=lambda: port.CardStartDecision(
        accepted=True, trade_no="1" * 32, card_no="1234567890123456",
        balance_yuan=Decimal("88.00")))

    real: object = None

    def handle(self, event):
        if isinstance(event, PASS_THROUGH):
            return self.real(event)
        self.events.append(event)
        if isinstance(event, port.ProgressBatch):  # each reading as the domain sees it
            self.events.extend(event.readings)
            return len(event.readings)
        if isinstance(event, port.ConnectorReports):  # each event as the domain sees it
            if event.statuses:  # statuses go on to the real handlers, as alone
                self.real(port.ConnectorReports(statuses=event.statuses))
            self.events.extend(event.faults)
            self.events.extend(event.readings)
            return len(event.readings)
        if isinstance(event, port.TransactionRecord):
            if self.fail_records:
                raise RuntimeError("database unavailable")
            duplicate = event.trade_no in self.records
            self.records.setdefault(event.trade_no, event)
            return port.RecordAck(stored=True, duplicate=duplicate)
        if isinstance(event, port.CardStartRequest):
            decide = self.card_decision
            return decide(event) if callable(decide) else decide
        if isinstance(event, port.CredentialQuery):
            return port.CredentialDecision(accepted=event.card_no != "BADCARD",
                                           refusal=None if event.card_no != "BADCARD"
                                           else port.StartRefusal.CREDENTIAL_UNKNOWN)
        return None

    def of(self, cls) -> list:
        return [e for e in list(self.events) if isinstance(e, cls)]


@pytest.fixture
def recorder(monkeypatch):
    from charging import handlers

    rec = Recorder(real=handlers.handle)
    monkeypatch.setattr(handlers, "handle", rec.handle)
    return rec


class PileClient:
    """A blocking pile over a real socket: send messages, receive decoded frames."""

    def __init__(self, port_: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port_), timeout=timeout)
        self.splitter = FrameSplitter()
        self.frames: list = []
        self.seq = 0

    def send(self, message, sequence=None) -> bytes:
        if sequence is None:
            sequence, self.seq = self.seq, self.seq + 1
        data = encode_frame(message, sequence)
        self.sock.sendall(data)
        return data

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, frame_type: int | None = None, timeout: float = 5.0):
        """The next frame (of ``frame_type`` if given; others are kept in ``frames``)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, frame in enumerate(self.frames):
                if frame_type is None or frame.frame_type == frame_type:
                    return self.frames.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame 0x{frame_type or 0:02X}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("closed")
            frames, _ = self.splitter.feed(data)
            self.frames.extend(frames)

    def closed(self, timeout: float = 5.0) -> bool:
        """True once the gateway has closed the connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return False
            except ConnectionError:
                return True
            if not data:
                return True
            self.frames.extend(self.splitter.feed(data)[0])
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pile_client(gateway):
    clients: list[PileClient] = []

    def connect() -> PileClient:
        client = PileClient(gateway.port)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
