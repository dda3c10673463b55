"""Periodic jobs of the protocol gateways (Celery; beat entry ``protocols-prune``)."""

from __future__ import annotations

from django.utils import timezone
from django_tenants.utils import tenant_context

from evplatform.celery import app


@app.task(name="protocols.prune_all")
def prune_all() -> int:
    """Fan out: queue one prune per active operator, inside its schema. Returns the count."""
    from tenants.selectors import operator_list

    operators = list(operator_list().filter(status="active"))
    for operator in operators:
        with tenant_context(operator):
            prune.delay()
    return len(operators)


@app.task(name="protocols.prune")
def prune() -> dict[str, int]:
    """Delete this operator's frame log, samples and session messages past their days."""
    from protocols.ykc.store import prune as prune_rows

    return prune_rows(now=timezone.now())
