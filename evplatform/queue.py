"""Queue a Celery task by name once the current transaction commits, in this operator's schema.

The one way domain services start background work::

    task_queue_on_commit("charging.order_send_start", order.pk)
    task_queue_on_commit("charging.order_check_start", order.pk, countdown=31)

Queuing by name means a service never imports its app's ``tasks`` module (tasks import
services, not the other way round). The schema is captured when this is called, not when the
transaction commits, and travels in the message headers (tenant-schemas-celery), so the worker
runs the task inside the same operator. Nothing is queued if the transaction rolls back.

A task that takes many items at once is queued per item with
:func:`task_queue_on_commit_batched`; inside :func:`tasks_batched` (a gateway's batch of
domain jobs) the items committed in the block go, at its end, as one task per name and
schema carrying all of them, instead of one message per item (at 10,000 piles connecting,
a Celery publish per changed connector cost the gateway's job thread ~16 ms each)::

    with tasks_batched():
        ...  # many transactions, each maybe calling
        task_queue_on_commit_batched("cec.connector_statuses", [pile_code, connector_no])
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction

from .celery import app

__all__ = ["task_queue_on_commit", "task_queue_on_commit_batched", "tasks_batched"]

logger = logging.getLogger(__name__)

BATCH_ITEMS_MAX = 500  # items carried by one batched task at most (a longer list: more tasks)

# This thread's open ``tasks_batched`` block: (name, schema) → items committed in it.
_batch = threading.local()


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


def task_queue_on_commit_batched(name: str, item: Any) -> None:
    """After commit, queue ``item`` (a JSON-able value) for the task registered as ``name``,
    which takes a list of items as its one argument, inside the current schema. Within
    :func:`tasks_batched` the item joins that block's list for ``name`` and this schema
    (sent when the block ends); outside, it goes at once as a one-item list. Nothing is
    queued if the transaction (or the savepoint it was called in) rolls back."""
    schema = connection.schema_name

    def add() -> None:
        items = getattr(_batch, "items", None)
        if items is None:
            app.send_task(name, args=([item],), headers={"_schema_name": schema})
        else:
            items.setdefault((name, schema), []).append(item)

    transaction.on_commit(add)


@contextlib.contextmanager
def tasks_batched() -> Iterator[None]:
    """Within the block (this thread), items queued with :func:`task_queue_on_commit_batched`
    and committed are held; at its end, whether it ended normally or raised, those of each
    name and schema are sent as one task (``BATCH_ITEMS_MAX`` items each at most), in the
    order they were committed. A nested block belongs to the outermost. A publish that
    fails is logged with the items it carried and the rest are still sent (their writes
    are committed already: the caller cannot undo them)."""
    if getattr(_batch, "items", None) is not None:
        yield
        return
    _batch.items = {}
    try:
        yield
    finally:
        held, _batch.items = _batch.items, None
        for (name, schema), items in held.items():
            for start in range(0, len(items), BATCH_ITEMS_MAX):
                chunk = items[start:start + BATCH_ITEMS_MAX]
                try:
                    app.send_task(name, args=(chunk,), headers={"_schema_name": schema})
                except Exception:
                    logger.exception("%s in %s: %d items not queued: %s", name, schema,
                                     len(chunk), chunk[:20])
