"""Everything the YKC gateway does in PostgreSQL. Synchronous: the gateway runs these in
its bounded thread pool (never on the event loop), each call on that thread's own
connection, inside the right schema.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.backends.postgresql.psycopg_any import is_psycopg3
from django.db.models import F
from django_tenants.utils import get_public_schema_name, schema_context


def db_call(fn, *args, **kwargs):
    """Run ``fn`` on this thread's connection and drop the connection if it broke, so the
    next call on this thread reconnects (what Django's request cycle does per request)."""
    try:
        return fn(*args, **kwargs)
    finally:
        connection.close_if_unusable_or_obsolete()


def close_connection() -> None:
    """Close this thread's connection (the gateway's pool threads, at shutdown)."""
    connection.close()


# --- login (YKC 0x01) --------------------------------------------------------------------


@dataclass
class LoginOutcome:
    """Whether a pile may log in; ``reason`` is a ``RefusedPileLogin.Reason`` value."""

    accepted: bool
    reason: str = ""
    schema: str = ""
    heartbeat_interval_s: int = 10
    connectors: dict[int, str] = field(default_factory=dict)


def pile_login(*, pile_code: str, peer: str, firmware_version: str, iccid: str,
               at: datetime) -> LoginOutcome:
    """Route a logging-in pile through the public registry to its operator and pile.

    Refused: code not registered (``unknown``), operator suspended, pile absent from the
    operator's estate (``not_in_estate``) or disabled — each refusal is recorded in the
    public ``RefusedPileLogin`` list. Accepted: firmware/ICCID are refreshed on the pile.

    Two SQL statements (registry + operator; pile + connectors with schema-qualified
    tables): a gateway restart makes every pile log in at once, so this is the hot path.
    """
    from stations.models import Connector, Pile
    from tenants.models import Operator, PileRegistration, RefusedPileLogin

    Reason = RefusedPileLogin.Reason
    quote = connection.ops.quote_name
    with schema_context(get_public_schema_name()), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.id, o.schema_name, o.status FROM {quote(PileRegistration._meta.db_table)} r"
            f" JOIN {quote(Operator._meta.db_table)} o ON o.id = r.operator_id WHERE r.code = %s",
            [pile_code])
        row = cursor.fetchone()
        pile = None
        if row is not None and row[2] == Operator.Status.ACTIVE:
            schema = quote(row[1])
            cursor.execute(
                "SELECT p.id, p.enabled, p.heartbeat_interval_s, p.firmware_version, p.iccid,"
                " coalesce(json_object_agg(c.number, c.status) FILTER (WHERE c.id IS NOT NULL),"
                f" '{{}}') FROM {schema}.{quote(Pile._meta.db_table)} p"
                f" LEFT JOIN {schema}.{quote(Connector._meta.db_table)} c ON c.pile_id = p.id"
                " WHERE p.code = %s GROUP BY p.id", [pile_code])
            pile = cursor.fetchone()
    if row is None:
        reason = Reason.UNKNOWN
    elif row[2] != Operator.Status.ACTIVE:
        reason = Reason.OPERATOR_SUSPENDED
    elif pile is None:
        reason = Reason.NOT_IN_ESTATE
    elif not pile[1]:
        reason = Reason.PILE_DISABLED
    else:
        pk, _enabled, heartbeat_s, old_firmware, old_iccid, connectors = pile
        changed = {}
        if firmware_version and old_firmware != firmware_version[:50]:
            changed["firmware_version"] = firmware_version[:50]
        if iccid and iccid.strip("0") and old_iccid != iccid[:22]:
            changed["iccid"] = iccid[:22]
        if changed:
            with schema_context(row[1]):
                Pile.objects.filter(pk=pk).update(**changed)
        if isinstance(connectors, str):
            connectors = json.loads(connectors)
        return LoginOutcome(True, "", row[1], heartbeat_s or 10,
                            {int(no): status for no, status in connectors.items()})
    operator = Operator.objects.filter(pk=row[0]).first() if row is not None else None
    refused_login_record(pile_code=pile_code, reason=reason, operator=operator, peer=peer,
                         firmware_version=firmware_version, at=at)
    return LoginOutcome(False, reason)


def refused_login_record(*, pile_code: str, reason: str, operator, peer: str,
                         firmware_version: str, at: datetime) -> None:
    """Count one refused login in the public list (one row per pile code)."""
    from tenants.models import RefusedPileLogin

    values = {"reason": reason, "operator": operator, "peer": peer[:64],
              "firmware_version": firmware_version[:20], "last_seen_at": at}
    with schema_context(get_public_schema_name()):
        rows = RefusedPileLogin.objects.filter(pile_code=pile_code)
        if rows.update(count=F("count") + 1, **values):
            return
        try:
            with transaction.atomic():
                RefusedPileLogin.objects.create(pile_code=pile_code, first_seen_at=at, **values)
        except IntegrityError:  # another gateway inserted it meanwhile
            rows.update(count=F("count") + 1, **values)


# --- connectors and batches ---------------------------------------------------------------


def connector_status_save(*, schema: str, pile_code: str, connector_no: int, status: str,
                          at: datetime) -> None:
    """``Connector.status`` after a change seen in YKC 0x13 (no-op if already so)."""
    from stations.models import Connector

    with schema_context(schema):
        (Connector.objects.filter(pile__code=pile_code, number=connector_no)
         .exclude(status=status).update(status=status, status_changed_at=at))


def _copy_text(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def batch_write(*, schema: str, frames: list[tuple], samples: list[dict],
                messages: list[dict]) -> None:
    """Write one flush of the gateway's buffers for one operator.

    ``frames`` rows are ``(pile_code, at, direction, frame_type, name, trade_no, hex)`` and
    go in with COPY (the frame log is the bulk of the writes); samples and session messages
    with ``bulk_create``.
    """
    from protocols.models import FrameLog, MeterSample, SessionMessage

    with schema_context(schema), transaction.atomic():
        if frames:
            buffer = io.StringIO()
            for row in frames:
                buffer.write("\t".join(_copy_text(v) for v in row))
                buffer.write("\n")
            buffer.seek(0)
            sql = (f'COPY "{FrameLog._meta.db_table}" (pile_code, at, direction, frame_type, '
                   "name, trade_no, hex) FROM STDIN")
            with connection.cursor() as cursor:
                if is_psycopg3:  # psycopg 3 (the web's pooled driver) copies through a context
                    with cursor.cursor.copy(sql) as copy:
                        copy.write(buffer.getvalue())
                else:
                    cursor.copy_expert(sql, buffer)
        if samples:
            MeterSample.objects.bulk_create([MeterSample(**s) for s in samples])
        if messages:
            SessionMessage.objects.bulk_create([SessionMessage(**m) for m in messages])


def prune(*, now: datetime) -> dict[str, int]:
    """Delete frame log rows older than ``YKC_FRAME_LOG_DAYS`` and samples and session
    messages older than ``YKC_SAMPLE_DAYS``, in the current schema. Returns counts."""
    from protocols.models import FrameLog, MeterSample, SessionMessage

    frame_cut = now - timedelta(days=settings.YKC_FRAME_LOG_DAYS)
    sample_cut = now - timedelta(days=settings.YKC_SAMPLE_DAYS)
    return {
        "frames": FrameLog.objects.filter(at__lt=frame_cut).delete()[0],
        "samples": MeterSample.objects.filter(at__lt=sample_cut).delete()[0],
        "messages": SessionMessage.objects.filter(at__lt=sample_cut).delete()[0],
    }
