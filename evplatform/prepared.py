"""One hot statement as a server-side prepared statement, inside Django's cursor machinery.

Django's psycopg 3 cursors bind parameters on the client and never prepare (``OPTIONS`` has
neither ``server_side_binding`` nor ``prepare_threshold``: both would change every query of
the project, and prepared statements do not survive a pooler in transaction mode). A path
that sends the same large statement for every order can ask for it here instead: the first
execution on a connection prepares it (psycopg keeps it per connection, keyed by the SQL
text and the parameters' types), later ones send only ``EXECUTE`` with the parameters bound
on the server, and PostgreSQL reuses the parsed statement and, once it judges a generic plan
as good as a custom one, the plan itself.

Tenants: django-tenants sets ``search_path`` per schema on the same connection. A prepared
statement's cached plan records the ``search_path`` it was made under, and PostgreSQL parses
and plans it again whenever the path has changed since (``RevalidateCachedQuery``), so an
unqualified table name always means the current operator's table
(``evplatform/tests/test_prepared.py`` interleaves two operators on one connection).

The statement goes through Django's cursor wrapper: it is logged (``CaptureQueriesContext``
counts it), passes ``connection.execute_wrappers`` and raises Django's database errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor


class _PreparingCursor(ServerBindingCursor):
    """A server-binding cursor whose every ``execute`` is prepared."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def execute_prepared_one(sql: str, params: Sequence[Any]) -> tuple | None:
    """Run ``sql`` (``%s`` placeholders, no literal ``%``) with ``params`` on the default
    connection as a prepared statement, in the current schema; return its first row (None
    when it returns none). Raises Django's ``DatabaseError`` subclasses like any query."""
    # Taking (and dropping) an ordinary cursor lets django-tenants issue its SET search_path
    # when the schema changed since its last one (no statement otherwise).
    connection.cursor().close()
    raw = _PreparingCursor(connection.connection)
    connection.validate_thread_sharing()
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        cursor.execute(sql, params)
        if connection.queries_logged and connection.queries_log[-1]["sql"] is None:
            # psycopg keeps no query text for an EXECUTE of a prepared statement: log ours.
            connection.queries_log[-1]["sql"] = sql
        return cursor.fetchone()
