"""Platform-level tasks (imported by the worker through ``evplatform.celery``)."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection

from .celery import app


@app.task(name="evplatform.tenant_ping")
def tenant_ping(reply_key: str) -> str:
    """Write the schema this task runs in to Redis ``reply_key`` (60 s) and return it.

    For operations: checks that workers run queued work inside the queuing operator.
    """
    schema = connection.schema_name
    redis.Redis.from_url(settings.REDIS_URL).set(reply_key, schema, ex=60)
    return schema


@app.task(name="evplatform.fan_out")
def fan_out(task_name: str, *args, **kwargs) -> list[str]:
    """Queue the task named ``task_name`` once per active operator (beat's entry point for
    periodic per-tenant jobs, see evplatform.tenancy). Raises KeyError for a task this code
    base does not know (rather than queueing messages a worker would discard)."""
    from .tenancy import for_each_active_operator

    return for_each_active_operator(app.tasks[task_name], *args, **kwargs)
