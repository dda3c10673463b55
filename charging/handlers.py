"""Domain handlers for the port's events (called through ``port.dispatch``)."""

from __future__ import annotations

from . import port, services


def handle(event):
    """Route one port event to its service; returns the reply the gateway needs, else None."""
    if isinstance(event, port.TransactionRecord):
        return services.record_store(event)
    if isinstance(event, port.Progress):
        services.order_progress(event)
        return None
    if isinstance(event, port.StartResult):
        services.order_start_result(event)
        return None
    if isinstance(event, port.StopResult):
        services.order_stop_result(event)
        return None
    if isinstance(event, port.CardStartRequest):
        from . import cards

        return cards.card_start_decide(event)
    raise TypeError(f"not a port event: {event!r}")
