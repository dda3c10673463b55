"""Messages a test pile sends, and a poll helper."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

from protocols.ykc import messages as m
from protocols.ykc.fields import PILE_TZ


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
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
