"""Everything the YKC gateway does in PostgreSQL. Synchronous: the gateway runs these in
its bounded thread pool (never on the event loop), each call on that thread's own
connection, inside the right schema.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
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
    """
    from stations.models import Pile
    from tenants.models import Operator, PileRegistration, RefusedPileLogin

    Reason = RefusedPileLogin.Reason
    with schema_context(get_public_schema_name()):
        registration = (PileRegistration.objects.select_related("operator")
                        .filter(code=pile_code).first())
    operator = registration.operator if registration else None
    reason = ""
    if operator is None:
        reason = Reason.UNKNOWN
    elif operator.status != Operator.Status.ACTIVE:
        reason = Reason.OPERATOR_SUSPENDED
    else:
        with schema_context(operator.schema_name):
            pile = Pile.objects.filter(code=pile_code).first()
            if pile is None:
                reason = Reason.NOT_IN_ESTATE
            elif not pile.enabled:
                reason = Reason.PILE_DISABLED
            else:
                changed = {}
                if firmware_version and pile.firmware_version != firmware_version:
                    changed["firmware_version"] = firmware_version[:50]
                if iccid and iccid.strip("0") and pile.iccid != iccid[:22]:
                    changed["iccid"] = iccid[:22]
                if changed:
                    Pile.objects.filter(pk=pile.pk).update(**changed)
                connectors = dict(pile.connectors.values_list("number", "status"))
                return LoginOutcome(True, "", operator.schema_name,
                                    pile.heartbeat_interval_s or 10, connectors)
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
            with connection.cursor() as cursor:
                cursor.copy_expert(
                    f'COPY "{FrameLog._meta.db_table}" (pile_code, at, direction, frame_type, '
                    "name, trade_no, hex) FROM STDIN", buffer)
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
