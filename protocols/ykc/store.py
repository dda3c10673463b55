"""What the YKC gateway keeps in PostgreSQL of its own (the frame log and BMS session
messages, ``protocols.models``); everything the domain keeps goes through charging's port.
Synchronous: the gateway runs these in its bounded thread pool (never on the event loop),
each call on that thread's own connection, inside the right schema.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.postgresql.psycopg_any import is_psycopg3
from django_tenants.utils import schema_context

# A connection that served a call without error this recently is taken as healthy: the
# next call skips the health check (CONN_HEALTH_CHECKS' ``SELECT 1``, one round trip per
# call, a fifth of the pool threads' time in a login storm). Idle longer, it is checked.
HEALTHY_FOR_S = 5.0

_last_ok = threading.local()


def db_call(fn, *args, **kwargs):
    """Run ``fn`` on this thread's connection and drop the connection if it broke, so the
    next call on this thread reconnects (what Django's request cycle does per request).
    The connection is health-checked before the call unless it served one without error
    within ``HEALTHY_FOR_S`` seconds. Celery tasks ``fn`` queues in batch form
    (``evplatform.queue.tasks_batched``: the CEC status pushes of a window's 0x13 reports)
    go as one task per kind when it returns."""
    from evplatform.queue import tasks_batched

    if (connection.connection is not None
            and time.monotonic() - getattr(_last_ok, "at", float("-inf")) < HEALTHY_FOR_S):
        connection.health_check_done = True
    ok = False
    try:
        with tasks_batched():
            result = fn(*args, **kwargs)
        ok = True
        return result
    finally:
        connection.close_if_unusable_or_obsolete()
        _last_ok.at = time.monotonic() if ok and connection.connection is not None \
            else float("-inf")


def close_connection() -> None:
    """Close this thread's connection (the gateway's pool threads, at shutdown)."""
    connection.close()


# --- batches ------------------------------------------------------------------------------


def _copy_text(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def batch_write(*, schema: str, frames: list[tuple] = (), messages: list[dict] = (),
                frame_text: str = "") -> None:
    """Write one flush of the gateway's buffers for one operator.

    ``frames`` rows are ``(pile_code, at, direction, frame_type, name, trade_no, hex)``
    (escaped here) and ``frame_text`` lines of the same already in COPY's text format
    (the YKC gateway's: :func:`protocols.ykc.gateway.writers.frame_copy_text`); both go
    in with COPY (the frame log is the bulk of the writes); session messages with
    ``bulk_create``.
    """
    from protocols.models import FrameLog, SessionMessage

    with schema_context(schema), transaction.atomic():
        if frames or frame_text:
            buffer = io.StringIO()
            for row in frames:
                buffer.write("\t".join(_copy_text(v) for v in row))
                buffer.write("\n")
            buffer.write(frame_text)
            buffer.seek(0)
            sql = (f'COPY "{FrameLog._meta.db_table}" (pile_code, at, direction, frame_type, '
                   "name, trade_no, hex) FROM STDIN")
            with connection.cursor() as cursor:
                if is_psycopg3:  # psycopg 3 (the web's pooled driver) copies through a context
                    with cursor.cursor.copy(sql) as copy:
                        copy.write(buffer.getvalue())
                else:
                    cursor.copy_expert(sql, buffer)
        if messages:
            SessionMessage.objects.bulk_create([SessionMessage(**m) for m in messages])


def prune(*, now: datetime) -> dict[str, int]:
    """Delete frame log rows older than ``YKC_FRAME_LOG_DAYS`` and session messages older
    than ``YKC_SAMPLE_DAYS``, in the current schema. Returns counts (meter samples are the
    domain's: ``charging.samples.samples_prune``)."""
    from protocols.models import FrameLog, SessionMessage

    frame_cut = now - timedelta(days=settings.YKC_FRAME_LOG_DAYS)
    sample_cut = now - timedelta(days=settings.YKC_SAMPLE_DAYS)
    return {
        "frames": FrameLog.objects.filter(at__lt=frame_cut).delete()[0],
        "messages": SessionMessage.objects.filter(at__lt=sample_cut).delete()[0],
    }
