"""Pushes to the driver's WebSocket (Channels groups named after schema and order)."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

logger = logging.getLogger(__name__)


def order_group(schema: str, order_id: int) -> str:
    return f"order.{schema}.{order_id}"


def order_payload(order) -> dict:
    """The order as the driver's screen shows it (also the REST detail's ``live`` part)."""
    return {
        "id": order.pk,
        "number": order.number,
        "state": order.state,
        "progress": order.progress,
        "total_amount": str(order.total_amount),
        "energy_kwh": str(order.energy_kwh),
        "stop_reason": order.stop_reason,
    }


def order_push_many(orders) -> None:
    """Send each order's state and progress to its watchers, all in one trip to the
    channel layer (the sends run concurrently); never fails the caller."""
    layer = get_channel_layer()
    if layer is None or not orders:
        return
    schema = connection.schema_name

    async def send_all() -> None:
        results = await asyncio.gather(*(
            layer.group_send(order_group(schema, order.pk),
                             {"type": "order.update", "order": order_payload(order)})
            for order in orders), return_exceptions=True)
        for order, result in zip(orders, results, strict=True):
            if isinstance(result, Exception):
                logger.warning("order %s push failed", order.pk, exc_info=result)

    try:
        async_to_sync(send_all)()
    except Exception:  # a push is best effort: the REST endpoint has the same data
        logger.warning("%d order pushes failed", len(orders), exc_info=True)


def order_push(order) -> None:
    """Send the order's state and progress to its watchers; never fails the caller."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            order_group(connection.schema_name, order.pk),
            {"type": "order.update", "order": order_payload(order)},
        )
    except Exception:  # a push is best effort: the REST endpoint has the same data
        logger.warning("order %s push failed", order.pk, exc_info=True)
