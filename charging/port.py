"""The protocol-neutral port between pile gateways (YKC, OCPP) and the charging domain.

Gateways turn protocol messages into the *events* below and hand them to ``dispatch``;
the domain sends *commands* to piles through ``charging.bus`` (a Redis command bus that
reaches whichever gateway process holds the pile). Nothing here knows a protocol: units
are real units (kWh 4 dp, yuan 2 dp, V, A, kW, %, aware UTC datetimes), connectors are
numbered from 1, trade numbers are the pile's 32-digit transaction numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# --- events: gateway → domain ---------------------------------------------------------


@dataclass(frozen=True)
class StartResult:
    """The pile's answer to a remote start (YKC 0x33, OCPP RemoteStartTransaction.conf +
    StartTransaction)."""

    pile_code: str
    connector_no: int
    trade_no: str
    accepted: bool
    reason_code: int | None = None  # the protocol's failure reason, None when accepted
    at: datetime | None = None


@dataclass(frozen=True)
class StopResult:
    """The pile's answer to a remote stop (YKC 0x35)."""

    pile_code: str
    connector_no: int
    accepted: bool
    reason_code: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Progress:
    """Live readings of a connector (YKC 0x13, OCPP MeterValues/StatusNotification).

    ``status`` is a ``stations.Connector.Status`` value; the reading fields are None
    when the protocol did not carry them.
    """

    pile_code: str
    connector_no: int
    status: str
    at: datetime
    trade_no: str | None = None
    plugged: bool | None = None
    energy_kwh: Decimal | None = None
    amount_yuan: Decimal | None = None
    power_kw: Decimal | None = None
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None
    soc_percent: int | None = None
    elapsed_min: int | None = None
    remaining_min: int | None = None
    fault_code: str | None = None


@dataclass(frozen=True)
class TransactionRecord:
    """The pile's final record of one session (YKC 0x3B, OCPP StopTransaction).

    ``energy_by_period`` maps period names (sharp, peak, flat, valley) to kWh when the
    pile splits energy by tariff period; ``raw_hex`` is the whole frame as received.
    """

    pile_code: str
    connector_no: int
    trade_no: str
    started_at: datetime
    stopped_at: datetime
    meter_start_kwh: Decimal
    meter_stop_kwh: Decimal
    energy_kwh: Decimal
    pile_amount_yuan: Decimal
    stop_reason_code: int
    energy_by_period: dict[str, Decimal] = field(default_factory=dict)
    vin: str = ""
    card_no: str = ""
    raw_hex: str = ""


@dataclass(frozen=True)
class CardStartRequest:
    """A pile asks to start for a card or VIN (YKC 0x31, OCPP Authorize)."""

    pile_code: str
    connector_no: int
    start_mode: str  # "card" or "vin"
    card_no: str = ""
    vin: str = ""
    password: str = ""


# --- replies the gateway needs before answering the pile -------------------------------


@dataclass(frozen=True)
class RecordAck:
    """Answer to a TransactionRecord: the record is durably stored (ack the pile)."""

    stored: bool
    duplicate: bool = False


@dataclass(frozen=True)
class CardStartDecision:
    """Answer to a CardStartRequest (YKC 0x32)."""

    accepted: bool
    trade_no: str = ""
    card_no: str = ""
    balance_yuan: Decimal = Decimal("0.00")
    reason_code: int | None = None  # the protocol's refusal reason when not accepted


# --- commands: domain → gateway --------------------------------------------------------


@dataclass(frozen=True)
class RemoteStart:
    """Start charging (YKC 0x34). ``balance_yuan`` lets the pile stop itself at zero."""

    pile_code: str
    connector_no: int
    trade_no: str
    balance_yuan: Decimal
    logical_card_no: str = ""
    physical_card_no: str = ""


@dataclass(frozen=True)
class RemoteStop:
    """Stop charging (YKC 0x36, OCPP RemoteStopTransaction). ``trade_no`` names the session
    to stop: YKC's 0x36 carries none, so the gateway refuses (``session_mismatch``) when the
    pile's latest readings show another session on the connector; OCPP sends it as the
    transactionId."""

    pile_code: str
    connector_no: int
    trade_no: str = ""


@dataclass(frozen=True)
class BalanceUpdate:
    """Tell the pile the account's new balance (YKC 0x42)."""

    pile_code: str
    connector_no: int
    balance_yuan: Decimal
    card_no: str = ""


@dataclass(frozen=True)
class ReadRealtime:
    """Ask the pile for a fresh real-time data frame (YKC 0x12 → 0x13)."""

    pile_code: str
    connector_no: int


@dataclass(frozen=True)
class CommandResult:
    """What the gateway answered: ``ok`` with the reply's fields, or an error code
    (``pile_offline``, ``timeout``, ``refused``, ``unsupported``, ``session_mismatch``)."""

    ok: bool
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


COMMANDS = {cls.__name__: cls for cls in (RemoteStart, RemoteStop, BalanceUpdate, ReadRealtime)}


def command_to_dict(command) -> dict:
    data = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(command).items()}
    return {"type": type(command).__name__, "fields": data}


def command_from_dict(data: dict):
    """Rebuild a command; raises KeyError/TypeError on an unknown or malformed one."""
    cls = COMMANDS[data["type"]]
    fields = dict(data["fields"])
    for name in ("balance_yuan",):
        if name in fields:
            fields[name] = Decimal(fields[name])
    return cls(**fields)


def dispatch(schema_name: str, event) -> RecordAck | CardStartDecision | None:
    """Hand one event to the domain inside operator ``schema_name``; blocking (call it from
    a thread in async code). Returns the reply the gateway needs, else None.

    The handlers live in ``charging.handlers`` (imported lazily: gateways import this
    module at start-up, before the domain is needed).
    """
    from django.db import connection
    from django_tenants.utils import schema_context

    from . import handlers

    with schema_context(schema_name):
        try:
            return handlers.handle(event)
        finally:
            connection.close_if_unusable_or_obsolete()
