"""The gateway's constants and small helpers (YKC codes, conversions)."""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from charging import port

from .. import codes
from .. import messages as m

logger = logging.getLogger("protocols.ykc.gateway")


NAMES = {code: cls.__name__ for code, cls in m.MESSAGE_TYPES.items()}


SESSION_TYPES = frozenset((0x15, 0x17, 0x19, 0x1B, 0x1D, 0x21, 0x23, 0x25))


HEARTBEAT_TYPES = frozenset((0x03, 0x04))


ZERO_TRADE = "0" * 32


ZERO_CARD = "0" * 16


PERIODS = ("sharp", "peak", "flat", "valley")


GARBAGE_LIMIT = 1024  # bytes of garbage since the last good frame before we hang up


ERROR_LIMIT = 32  # framing errors since the last good frame before we hang up


# A connection whose login 0x01 came within YKC_LOGIN_TIMEOUT_S but is still being decided
# (in a reconnect storm the logins of a moment wait for their batch) is closed only when the
# decision took longer than this: closing it sooner throws away the work queued for it and
# brings the pile back to queue again.
LOGIN_DECISION_LIMIT_S = 120


# Connections the once-a-second sweep (login and idle timeouts) checks between two turns of
# the event loop (~2 µs each).
SWEEP_SLICE = 1000


# The database hears of a connected pile at least this often (stations' offline check
# falls back on it when Redis lost the last-seen scores).
LAST_SEEN_DB_EVERY_S = 30


#: "0x03" … by frame type: the metrics' label, looked up per frame rather than formatted.
CODES = tuple(f"0x{frame_type:02X}" for frame_type in range(256))


def _code(frame_type: int) -> str:
    return CODES[frame_type]


def connector_status(reading: m.RealtimeData) -> port.ConnectorStatus:
    """YKC 0x13 状态 + 是否插枪 → the port's connector status."""
    return codes.connector_status(reading.status, reading.plugged)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return int(value.value)
    if isinstance(value, Decimal | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _utc(moment: datetime | None, default: datetime) -> datetime:
    return moment.astimezone(UTC) if moment is not None else default


def adapters_call(fn, schema: str, /, *args, **kwargs):
    """Call an adapter inside the operator's schema (thread pool)."""
    from django_tenants.utils import schema_context

    with schema_context(schema):
        return fn(*args, **kwargs)
