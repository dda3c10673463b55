"""Celery tasks: take ids, call a service. Each runs in the schema it was queued from."""

from __future__ import annotations

import logging

from evplatform.celery import app

from . import services

logger = logging.getLogger(__name__)


@app.task(name="charging.order_send_start", acks_late=True)
def order_send_start(order_id: int, deadline: float | None = None) -> str:
    """Send the remote start before ``deadline`` (epoch s); a pile that cannot be reached
    fails the order at once."""
    return services.order_start_send(order_id=order_id, deadline=deadline)


@app.task(name="charging.order_send_stop", acks_late=True)
def order_send_stop(order_id: int, deadline: float | None = None, staff: bool = False) -> str:
    """Send the remote stop before ``deadline`` (epoch s), only while the order still wants
    it (see services.stop_unwanted; ``staff``: a re-send for an ended order whose pile still
    reports its session); retried until the pile confirms."""
    return services.order_stop_send(order_id=order_id, deadline=deadline, staff=staff)


@app.task(name="charging.order_check_stop", acks_late=True)
def order_check_stop(order_id: int) -> str:
    """Send an unconfirmed stop again (queued ``STOP_RETRY_S`` after each attempt)."""
    return services.order_check_stop(order_id=order_id)


@app.task(name="charging.order_ask_readings")
def order_ask_readings(order_id: int) -> str:
    return services.order_ask_readings(order_id=order_id)


@app.task(name="charging.order_check_start", acks_late=True)
def order_check_start(order_id: int) -> str:
    return services.order_check_start(order_id=order_id).state


@app.task(name="charging.record_settle", acks_late=True, autoretry_for=(Exception,),
          retry_backoff=5, retry_kwargs={"max_retries": 10})
def record_settle(record_id: int) -> str:
    return services.record_settle(record_id=record_id).state


@app.task(name="charging.order_notify", autoretry_for=(Exception,), retry_backoff=30,
          retry_kwargs={"max_retries": 5})
def order_notify(order_id: int) -> str:
    from . import notify

    return notify.order_settled_notify(order_id=order_id)


@app.task(name="charging.orders_reconcile")
def orders_reconcile() -> dict:
    return services.orders_reconcile()


@app.task(name="charging.samples_prune")
def samples_prune() -> int:
    from django.utils import timezone

    from . import samples

    return samples.samples_prune(now=timezone.now())


@app.task(name="charging.station_schedule", acks_late=True)
def station_schedule(station_id: int, reason: str = "") -> dict:
    """Re-plan a station's power limit and offer its free connectors to its queue."""
    return services.station_schedule(station_id=station_id, reason=reason)


@app.task(name="charging.scheduling_tick")
def scheduling_tick() -> dict:
    from django.conf import settings

    return services.scheduling_tick(replan_after_s=settings.POWER_REPLAN_SECONDS)


@app.task(name="charging.queue_offer_notify", autoretry_for=(Exception,), retry_backoff=10,
          retry_kwargs={"max_retries": 3})
def queue_offer_notify(entry_id: int) -> str:
    from . import notify

    return notify.queue_offer_notify(entry_id=entry_id)
