"""Fan-out of periodic jobs over active operators."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from tenants import selectors
from tenants.models import Operator


def for_each_active_operator(task, *args, **kwargs) -> int:
    """Queue ``task`` once per active operator, inside its schema (tenant-schemas-celery
    carries the schema to the worker). Returns how many were queued."""
    count = 0
    for operator in selectors.operator_list().filter(status=Operator.Status.ACTIVE):
        with tenant_context(operator):
            task.delay(*args, **kwargs)
        count += 1
    return count
