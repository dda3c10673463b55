"""Fan-out of periodic jobs over operators (ARCHITECTURE.md "Tenancy").

Beat runs in the public schema; a fan-out task enqueues the real job once per active
operator inside ``tenant_context`` so tenant-schemas-celery stamps the schema on it.
"""

from __future__ import annotations

from collections.abc import Iterator

from celery import Task
from django_tenants.utils import tenant_context

from tenants.models import Operator
from tenants.selectors import operator_list


def operators_active() -> Iterator[Operator]:
    """Active operators (suspended ones get no periodic work), in a stable order."""
    yield from operator_list().filter(status=Operator.Status.ACTIVE).order_by("pk")


def fan_out(task: Task, *args, **kwargs) -> int:
    """Queue ``task`` with ``args``/``kwargs`` once in each active operator's schema.

    Returns the number of operators it was queued for.
    """
    count = 0
    for operator in operators_active():
        with tenant_context(operator):
            task.delay(*args, **kwargs)
        count += 1
    return count
