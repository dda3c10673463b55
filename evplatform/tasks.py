"""Platform-level tasks."""

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
