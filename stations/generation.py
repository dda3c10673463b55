"""The generations of an operator's station snapshots (``stations.snapshot``): random tokens
in Redis renewed by the writes to the tables the snapshots read, when the writing
transaction commits (at once outside one). Two of them, because the estate changes in two ways:

- ``{prefix}:{schema}:stations:gen``, the **estate**: a station, pile, connector or partner
  station added, removed or edited (name, position, price, connector type, a pile enabled
  or disabled, …). A snapshot whose token differs is rebuilt before it answers.
- ``{prefix}:{schema}:stations:sgen``, the **statuses** the snapshot copies from the
  database (a connector's status and its time, a pile online or offline): they change with
  every plug-in and every pile that connects, so a process rebuilds for them at most once
  per ``STATION_SNAPSHOT_STATUS_REFRESH_MS`` (1,000 ms), and meanwhile each request still merges
  the live statuses from Redis (the newer of the two wins, ``selectors._live_counts``).

A write of fields the snapshot does not read (a pile's last-seen time, firmware, power
cap, …) renews nothing: the piles' own bookkeeping must not rebuild every web process's
snapshot.

Kept apart from ``stations.snapshot`` because the models use :class:`TrackedQuerySet`.
"""

from __future__ import annotations

import logging
import secrets

import redis
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, connections, models

from . import live

log = logging.getLogger(__name__)
failed_bumps = 0  # bumps of this process that could not reach Redis

ESTATE, STATUS = "gen", "sgen"

# What the snapshot reads, per model (``stations.snapshot._SNAPSHOT_SQL``; None: everything),
# and of that what is a status.
READ_FIELDS = {
    "Station": {"id", "name", "address", "city", "status", "latitude", "longitude", "time_zone",
                "price_today"},
    "Pile": {"id", "code", "station", "online", "enabled"},
    "Connector": {"id", "pile", "number", "status", "status_changed_at", "connector_type"},
    "PartnerStation": None,
}
STATUS_FIELDS = {"Pile": {"online"}, "Connector": {"status", "status_changed_at"}}


def generation_key(schema: str, kind: str = ESTATE) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:stations:{kind}"


def fresh_token() -> str:
    return secrets.token_hex(8)


def write_kind(model, fields) -> str | None:
    """What a write of ``fields`` (names or attnames; None: the whole row, or a row added or
    removed) of ``model`` renews: ESTATE, STATUS or nothing (None)."""
    read = READ_FIELDS.get(model.__name__, None)
    if fields is None or read is None:
        return ESTATE
    names = set()
    for name in fields:
        try:
            names.add(model._meta.get_field(name).name)
        except FieldDoesNotExist:
            names.add(name)
    names &= read
    if not names:
        return None
    return STATUS if names <= STATUS_FIELDS.get(model.__name__, set()) else ESTATE


class _Bump:
    """The on-commit bump of one schema's generation (a class, so a transaction registers
    it once per kind)."""

    __slots__ = ("schema", "kind")

    def __init__(self, schema: str, kind: str):
        self.schema, self.kind = schema, kind

    def __call__(self):
        bump(self.schema, self.kind)


def bump(schema: str, kind: str = ESTATE) -> None:
    """Set ``schema``'s generation of ``kind`` to a fresh token: every process rebuilds its
    snapshot (for STATUS, within ``STATION_SNAPSHOT_STATUS_REFRESH_MS``).

    Redis unreachable: logged, and the write goes on (a pile's status must not fail with
    the cache); this process drops its snapshots, the others' are renewed at the latest
    after ``STATION_SNAPSHOT_MAX_AGE_S`` (and the list and map need Redis anyway)."""
    try:
        live.client().set(generation_key(schema, kind), fresh_token())
    except redis.RedisError:
        global failed_bumps
        failed_bumps += 1  # this process's snapshots are dropped (see snapshot.cached)
        log.warning("station snapshot generation of %s not renewed: Redis unreachable", schema,
                    exc_info=True)


def _pending(conn, schema: str) -> bool:
    return any(isinstance(func, _Bump) and func.schema == schema
               for _sids, func, _robust in conn.run_on_commit)


def _pending_kind(conn, schema: str, kind: str) -> bool:
    return any(isinstance(func, _Bump) and func.schema == schema and func.kind == kind
               for _sids, func, _robust in conn.run_on_commit)


def writes_pending(schema: str) -> bool:
    return connection.in_atomic_block and _pending(connection, schema)


def changed(using: str = "default", kind: str | None = ESTATE) -> None:
    """The estate (or only statuses: ``kind`` STATUS) of the connection's schema changed:
    bump the generation when the transaction commits (other processes cannot see the change
    before), once per transaction and kind; at once outside a transaction. The transaction's
    own reads meanwhile build a snapshot of their own (``writes_pending``). ``kind`` None:
    nothing the snapshot reads, nothing done."""
    if kind is None:
        return
    conn = connections[using]
    schema = getattr(conn, "schema_name", None)
    if not schema:
        return
    if not conn.in_atomic_block:
        bump(schema, kind)
    elif not _pending_kind(conn, schema, kind):
        conn.on_commit(_Bump(schema, kind))


class TrackedQuerySet(models.QuerySet):
    """A queryset whose bulk writes (``update``, ``bulk_create``, ``bulk_update``) call
    :func:`changed`; ``save``/``delete`` are tracked by signals (``connect_signals``)."""

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        if rows:
            changed(self.db, write_kind(self.model, kwargs))
        return rows

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            changed(self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows:
            changed(self.db, write_kind(self.model, fields))
        return rows
