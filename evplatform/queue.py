"""Queue a Celery task by name once the current transaction commits, in this operator's schema.

The one way domain services start background work::

    task_queue_on_commit("charging.order_send_start", order.pk)
    task_queue_on_commit("charging.order_check_start", order.pk, countdown=31)

Queuing by name means a service never imports its app's ``tasks`` module (tasks import
services, not the other way round). The schema is captured when this is called, not when the
transaction commits, and travels in the message headers (tenant-schemas-celery), so the worker
runs the task inside the same operator. Nothing is queued if the transaction rolls back.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from .celery import app

__all__ = ["task_queue_on_commit"]


def task_queue_on_commit(
    name: str, *args: Any, countdown: float | None = None, expires: float | None = None
) -> None:
    """After commit, queue the task registered as ``name`` with positional ``args`` (ids and
    plain values), ``countdown`` seconds later if given, inside the current schema;
    ``expires`` (seconds after queueing): a worker receiving it later drops it."""
    schema = connection.schema_name

    def send() -> None:
        app.send_task(name, args=args, countdown=countdown, expires=expires,
                      headers={"_schema_name": schema})

    transaction.on_commit(send)
