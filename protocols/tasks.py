"""Periodic jobs of the protocol gateways (Celery; beat entry ``protocols-prune`` fans
``protocols.prune`` out per operator through ``evplatform.fan_out``)."""

from __future__ import annotations

from django.utils import timezone

from evplatform.celery import app


@app.task(name="protocols.prune")
def prune() -> dict[str, int]:
    """Delete this operator's frame log, samples and session messages past their days."""
    from protocols.ykc.store import prune as prune_rows

    return prune_rows(now=timezone.now())


from protocols.cec import tasks as _cec_tasks  # noqa: E402, F401  (registers cec.* tasks)
