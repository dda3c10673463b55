"""Per-operator fan-out of Celery work.

Periodic jobs are registered once in CELERY_BEAT_SCHEDULE as ``evplatform.fan_out`` with
the real task's name; beat runs it in the public schema and it queues the real task once
inside each active operator's schema (tenant-schemas-celery carries the schema in the
message headers, so the worker runs it there)::

    CELERY_BEAT_SCHEDULE = {
        "piles-offline": {"task": "evplatform.fan_out", "schedule": 30,
                          "args": ["stations.piles_check_offline"]},
    }

or from code: ``for_each_active_operator(my_task, arg, key=value)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django_tenants.utils import tenant_context

from tenants.models import Operator
from tenants.selectors import operator_list


def active_operators() -> Iterator[Operator]:
    """Active operators (not suspended, not the public row), in primary-key order."""
    # The operators table is in public, on every schema's search path: no switch needed.
    yield from operator_list().filter(status=Operator.Status.ACTIVE).order_by("pk").iterator()


def for_each_active_operator(task, *args: Any, **kwargs: Any) -> list[str]:
    """Queue ``task`` (a Celery task or signature) once per active operator, inside its
    schema, with ``args``/``kwargs``. Returns the schemas it was queued for. The caller's
    schema is active again afterwards."""
    queued = []
    for operator in active_operators():
        with tenant_context(operator):
            task.apply_async(args=args, kwargs=kwargs)
        queued.append(operator.schema_name)
    return queued


def run_in_each_active_operator(fn: Callable[[], Any]) -> dict[str, Any]:
    """Call ``fn()`` inside each active operator's schema, in this process (commands,
    tests); returns {schema: result}."""
    results = {}
    for operator in active_operators():
        with tenant_context(operator):
            results[operator.schema_name] = fn()
    return results
