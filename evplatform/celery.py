"""The Celery app: tenant-aware (tenant-schemas-celery), so a task queued inside an
operator's schema runs inside it. Periodic jobs fan out over active operators.

Every module holding tasks must be imported by the worker, or beat's messages are
discarded as "unregistered": the apps' ``tasks`` modules are found through
INSTALLED_APPS, and ``evplatform.tasks`` (the project package is not an app) is named here.

The worker keeps a small book in Redis that ``/healthz`` reads (``P`` =
``settings.REDIS_KEY_PREFIX``):

- ``P:health:celery:ran`` — hash, task name → epoch seconds of its last success;
- ``P:health:celery:discarded`` — hash, task name → epoch seconds of the last message the
  worker received for a task it does not know (and so dropped).
"""

import logging
import os
import time

from celery import signals
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")

logger = logging.getLogger(__name__)

app = CeleryApp("evplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# billing holds three domains, each a package with its own tasks module.
app.autodiscover_tasks(["billing.tariffs", "billing.payments", "billing.invoices"])
# The project package is not an installed app: its tasks (fan_out, tenant_ping) by name.
app.autodiscover_tasks(["evplatform"])

RAN_KEY = "health:celery:ran"
DISCARDED_KEY = "health:celery:discarded"


def health_key(name: str) -> str:
    """The Redis key of one of the worker's health books (see the module docstring)."""
    from django.conf import settings

    return f"{settings.REDIS_KEY_PREFIX}:{name}"


def _redis():
    """A Redis client for the books (the project package imports no app: plain redis-py)."""
    global _client
    if _client is None:
        import redis
        from django.conf import settings

        _client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True,
                                       socket_timeout=settings.REDIS_SOCKET_TIMEOUT_S)
    return _client


_client = None


def _note(book: str, task_name: str) -> None:
    try:
        _redis().hset(health_key(book), task_name, f"{time.time():.3f}")
    except Exception:  # bookkeeping must never fail a task
        logger.warning("celery: cannot note %s for %s", book, task_name, exc_info=True)


@signals.task_success.connect
def _task_succeeded(sender=None, **_kwargs) -> None:
    if sender is not None:
        _note(RAN_KEY, sender.name)


@signals.task_unknown.connect
def _task_unknown(name=None, **_kwargs) -> None:
    logger.error("celery: discarded a message for the unregistered task %r", name)
    _note(DISCARDED_KEY, str(name))


def parked_tasks(now: float | None = None) -> list[dict]:
    """Tasks a worker took and has not acknowledged (acks_late): running now, or parked by
    a worker that died, until the broker's visibility timeout returns them to the queue.
    Each: {"id", "task", "schema", "age_s", "returns_in_s"}, oldest first (Redis broker)."""
    import json

    from django.conf import settings

    now = now or time.time()
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    client = _redis()
    tags = client.zrange(f"{prefix}unacked_index", 0, -1, withscores=True)
    if not tags:
        return []
    raws = client.hmget(f"{prefix}unacked", [tag for tag, _ in tags])
    parked = []
    for (tag, since), raw in zip(tags, raws, strict=True):
        if raw is None:
            continue
        try:
            headers = json.loads(raw)[0].get("headers", {})
        except (ValueError, TypeError, AttributeError, IndexError):
            headers = {}
        parked.append({
            "id": headers.get("id", tag),
            "task": headers.get("task", "?"),
            "schema": headers.get("_schema_name", ""),
            "age_s": round(now - since),
            "returns_in_s": max(0, round(since + visibility - now)),
        })
    return parked
