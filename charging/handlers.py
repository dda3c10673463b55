"""Domain handlers for port events. Filled in by the charging orders work."""

from __future__ import annotations

from . import port


def handle(event):
    """Route one port event; returns the reply the gateway needs, else None."""
    if isinstance(event, port.TransactionRecord):
        raise NotImplementedError("transaction records are handled by charging orders")
    if isinstance(event, port.CardStartRequest):
        return port.CardStartDecision(accepted=False, reason_code=None)
    return None
