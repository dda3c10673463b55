"""The generation of an operator's station snapshots (``stations.snapshot``): a random token
in Redis, ``{prefix}:{schema}:stations:gen``, renewed by every write to the tables the
snapshots read — at once, and again when the writing transaction commits.

Kept apart from ``stations.snapshot`` because the models use :class:`TrackedQuerySet`.
"""

from __future__ import annotations

import logging
import secrets

import redis
from django.conf import settings
from django.db import connection, connections, models

from . import live

log = logging.getLogger(__name__)
failed_bumps = 0  # bumps of this process that could not reach Redis

def generation_key(schema: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:stations:gen"


def fresh_token() -> str:
    return secrets.token_hex(8)


class _Bump:
    """The on-commit bump of one schema (a class, so a transaction registers it once)."""

    __slots__ = ("schema",)

    def __init__(self, schema: str):
        self.schema = schema

    def __call__(self):
        bump(self.schema)


def bump(schema: str) -> None:
    """Set ``schema``'s generation to a fresh token: every process rebuilds its snapshot.

    Redis unreachable: logged, and the write goes on (a pile's status must not fail with
    the cache); this process drops its snapshots, the others' are renewed at the latest
    after ``STATION_SNAPSHOT_MAX_AGE_S`` (and the list and map need Redis anyway)."""
    try:
        live.client().set(generation_key(schema), fresh_token())
    except redis.RedisError:
        global failed_bumps
        failed_bumps += 1  # this process's snapshots are dropped (see snapshot.cached)
        log.warning("station snapshot generation of %s not renewed: Redis unreachable", schema,
                    exc_info=True)


def _pending(conn, schema: str) -> bool:
    return any(isinstance(func, _Bump) and func.schema == schema for _sids, func, _robust in conn.run_on_commit)


def writes_pending(schema: str) -> bool:
    return connection.in_atomic_block and _pending(connection, schema)


def changed(using: str = "default") -> None:
    """The estate of the connection's schema changed: bump the generation now (so this
    transaction's own next read rebuilds) and, inside a transaction, once more on commit
    (so other processes, which cannot see the change before, rebuild after it)."""
    conn = connections[using]
    schema = getattr(conn, "schema_name", None)
    if not schema:
        return
    bump(schema)
    if conn.in_atomic_block and not _pending(conn, schema):
        conn.on_commit(_Bump(schema))


class TrackedQuerySet(models.QuerySet):
    """A queryset whose bulk writes (``update``, ``bulk_create``, ``bulk_update``) call
    :func:`changed`; ``save``/``delete`` are tracked by signals (``connect_signals``)."""

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        if rows:
            changed(self.db)
        return rows

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            changed(self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows:
            changed(self.db)
        return rows
