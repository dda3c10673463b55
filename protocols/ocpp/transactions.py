"""OCPP transactions ↔ the platform's trade numbers, and the port events they make.

Every function is synchronous, runs in the gateway's database thread pool and takes the
operator's ``schema``; domain traffic goes through ``charging.handlers.dispatch`` only.
Idempotent by design: a pile back online replays queued StartTransaction / MeterValues /
StopTransaction messages, and each is applied once (StartTransaction by pile, connector,
timestamp and meterStart; MeterValues by transaction and timestamp; StopTransaction by the
transaction, then by the record's trade number in the domain).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django_tenants.utils import schema_context

from charging import handlers, port

from . import mapping

PILE_TZ = ZoneInfo("Asia/Shanghai")


def _trade_no(pile_code: str, connector_no: int, at: datetime) -> str:
    """A trade number for a transaction the platform did not start (same layout as the
    domain's: pile code, connector, local yymmddHHMMSS, 4 random digits)."""
    local = at.astimezone(PILE_TZ)
    return (f"{pile_code[:14].rjust(14, '0')}{connector_no % 100:02d}{local:%y%m%d%H%M%S}"
            f"{secrets.randbelow(10**4):04d}")


def _id_tag() -> str:
    """A platform-issued idTag for an app start (CiString20)."""
    return "EVP" + secrets.token_hex(8).upper()


def remote_start_prepare(schema: str, pile_code: str, connector_no: int, trade_no: str) -> str:
    """The idTag to send in RemoteStartTransaction for order ``trade_no`` (the same one if
    the start is sent again)."""
    from protocols.models import OcppTransaction

    with schema_context(schema):
        row, _ = OcppTransaction.objects.get_or_create(
            trade_no=trade_no, defaults={"pile_code": pile_code, "connector_no": connector_no,
                                         "id_tag": _id_tag()})
        return row.id_tag


def remote_start_refused(schema: str, pile_code: str, connector_no: int, trade_no: str) -> None:
    handlers.dispatch(schema, port.StartResult(pile_code=pile_code, connector_no=connector_no,
                                               trade_no=trade_no, accepted=False,
                                               at=mapping.timestamp(None)))


def authorize(schema: str, pile_code: str, id_tag: str) -> str:
    """Authorize.req → idTagInfo.status: a platform-issued tag of a pending app start, or a
    member's card checked by the domain."""
    from protocols.models import OcppTransaction

    with schema_context(schema):
        if OcppTransaction.objects.filter(pile_code=pile_code, id_tag=id_tag,
                                          started_at__isnull=True).exists():
            return "Accepted"
    decision = handlers.dispatch(schema, port.CredentialQuery(pile_code, id_tag))
    return "Accepted" if decision.accepted else mapping.id_tag_status(decision.refusal)


@dataclass(frozen=True)
class Started:
    transaction_id: int
    trade_no: str
    status: str  # idTagInfo.status
    duplicate: bool = False


def start_transaction(schema: str, pile_code: str, connector_no: int, id_tag: str,
                      meter_start_wh: int, at: datetime) -> Started:
    """StartTransaction.req → the transactionId and idTagInfo.status.

    A replayed request gets the same transactionId. An app start (our idTag) is confirmed
    to the domain; another tag is a start at the pile, decided by the domain as a card
    start (refused: the pile is told Invalid/Blocked/ConcurrentTx and stops; its
    StopTransaction then becomes a flagged pile-initiated order).
    """
    from protocols.models import OcppTransaction

    with schema_context(schema):
        same = OcppTransaction.objects.filter(pile_code=pile_code, connector_no=connector_no,
                                              started_at=at, meter_start_wh=meter_start_wh).first()
        if same is not None:
            return Started(same.pk, same.trade_no, "Accepted", duplicate=True)
        with transaction.atomic():
            app = (OcppTransaction.objects.select_for_update()
                   .filter(pile_code=pile_code, id_tag=id_tag, started_at__isnull=True)
                   .order_by("-id").first())
            if app is not None:
                app.connector_no, app.started_at, app.meter_start_wh = (connector_no, at,
                                                                        meter_start_wh)
                app.save(update_fields=["connector_no", "started_at", "meter_start_wh"])
    if app is not None:
        handlers.dispatch(schema, port.StartResult(
            pile_code=pile_code, connector_no=connector_no, trade_no=app.trade_no,
            accepted=True, at=at))
        return Started(app.pk, app.trade_no, "Accepted")
    decision = handlers.dispatch(schema, port.CardStartRequest(
        pile_code=pile_code, connector_no=connector_no, start_mode="card", card_no=id_tag))
    accepted = isinstance(decision, port.CardStartDecision) and decision.accepted
    trade_no = decision.trade_no if accepted else _trade_no(pile_code, connector_no, at)
    with schema_context(schema):
        row = OcppTransaction.objects.create(
            pile_code=pile_code, connector_no=connector_no, trade_no=trade_no, id_tag=id_tag,
            started_at=at, meter_start_wh=meter_start_wh)
    if not accepted:
        return Started(row.pk, trade_no, mapping.id_tag_status(
            getattr(decision, "refusal", None)))
    handlers.dispatch(schema, port.StartResult(
        pile_code=pile_code, connector_no=connector_no, trade_no=trade_no, accepted=True,
        at=at))
    return Started(row.pk, trade_no, "Accepted")


def _progress(row, pile_code: str, connector_no: int, status: port.ConnectorStatus,
              r: mapping.Readings, sample: bool) -> port.Progress:
    energy = None
    if row is not None and r.register_wh is not None and row.meter_start_wh is not None:
        energy = mapping.kwh(max(Decimal(0), r.register_wh - row.meter_start_wh))
    return port.Progress(
        pile_code=pile_code, connector_no=connector_no, status=status, at=r.at,
        trade_no=row.trade_no if row is not None else None, energy_kwh=energy,
        power_kw=r.power_kw, voltage_v=r.voltage_v, current_a=r.current_a,
        soc_percent=r.soc_percent, sample=sample)


def meter_values(schema: str, pile_code: str, connector_no: int, transaction_id: int | None,
                 readings: list[mapping.Readings], status: port.ConnectorStatus
                 ) -> list[port.Progress]:
    """MeterValues.req → live progress for each reading newer than the transaction's last
    (a replayed or late reading is dropped); returns the progress events sent."""
    return meter_values_batch(schema, [(pile_code, connector_no, transaction_id, readings,
                                        status)])[0]


def meter_values_batch(schema: str, calls: list[tuple]) -> list[list[port.Progress]]:
    """Many MeterValues.req at once (``calls``: the arguments of :func:`meter_values` after
    ``schema``, one tuple per call, in arrival order), in a fixed number of statements:
    the transactions they name read (row-locked) at once, each one's ``last_meter_at``
    moved to its newest reading in one statement, and every reading to the domain as one
    :class:`port.ProgressBatch`. A reading not newer than its transaction's last (a replay,
    or one a call before it in the batch carried) or of a stopped transaction is dropped;
    one of a transaction that is not the pile's goes as a reading without one. Returns the
    progress events sent, per call."""
    from protocols.models import OcppTransaction

    ids = {call[2] for call in calls if call[2] is not None}
    with schema_context(schema), transaction.atomic():
        rows = ({row.pk: row for row in OcppTransaction.objects.select_for_update()
                 .filter(pk__in=ids).order_by("pk")} if ids else {})
        sent: list[list[port.Progress]] = []
        moved: dict[int, datetime] = {}
        for pile_code, connector_no, transaction_id, readings, status in calls:
            row = rows.get(transaction_id) if transaction_id is not None else None
            if row is not None and row.pile_code != pile_code:
                row = None
            events = []
            for r in sorted(readings, key=lambda x: x.at):
                if row is not None:
                    if row.stopped_at is not None or (
                            row.last_meter_at is not None and r.at <= row.last_meter_at):
                        continue
                    row.last_meter_at = moved[row.pk] = r.at
                events.append(_progress(
                    row, pile_code, connector_no,
                    port.ConnectorStatus.CHARGING if row is not None else status, r, True))
            sent.append(events)
        if moved:
            _last_meter_write(OcppTransaction._meta.db_table, moved)
        events = tuple(event for events in sent for event in events)
        if events:
            handlers.dispatch(schema, port.ProgressBatch(readings=events))
    return sent


def _last_meter_write(table: str, moved: dict[int, datetime]) -> None:
    """One statement: each transaction's ``last_meter_at`` (id → aware datetime)."""
    from django.db import connection

    values = ", ".join(["(%s::bigint, %s::timestamptz)"] * len(moved))
    params = [value for pair in sorted(moved.items()) for value in pair]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(table)} AS t SET last_meter_at = v.at "
            f"FROM (VALUES {values}) AS v (id, at) WHERE t.id = v.id", params)


def stop_transaction(schema: str, pile_code: str, transaction_id: int, meter_stop_wh: int,
                     at: datetime, reason: str | None, id_tag: str | None,
                     transaction_data: list[mapping.Readings], connector_guess: int,
                     raw: str) -> port.RecordAck:
    """StopTransaction.req → the transaction record, stored by the domain (priced there from
    the meter timeline: OCPP piles do not price). An unknown transactionId becomes a record
    under a new trade number (a flagged pile-initiated order, as with YKC); a replay of the
    same stop is the same record."""
    from protocols.models import OcppTransaction

    with schema_context(schema):
        row = OcppTransaction.objects.filter(pk=transaction_id, pile_code=pile_code).first()
        if row is None:
            row = OcppTransaction.objects.filter(
                pile_code=pile_code, stopped_at=at, meter_stop_wh=meter_stop_wh,
                started_at__isnull=False).first()
        if row is None:
            first = min(transaction_data, key=lambda x: x.at, default=None)
            start_wh = (first.register_wh if first is not None and first.register_wh is not None
                        else meter_stop_wh)
            started = first.at if first is not None else at
            row = OcppTransaction.objects.create(
                pile_code=pile_code, connector_no=connector_guess,
                trade_no=_trade_no(pile_code, connector_guess, at), id_tag=id_tag or "",
                started_at=started, meter_start_wh=int(start_wh))
    # The end-of-transaction readings first (the timeline the bill is priced from).
    data = [r for r in transaction_data if row.last_meter_at is None or r.at > row.last_meter_at]
    if data and row.stopped_at is None:
        meter_values(schema, pile_code, row.connector_no, row.pk, data,
                     port.ConnectorStatus.CHARGING)
    with schema_context(schema):
        OcppTransaction.objects.filter(pk=row.pk).update(stopped_at=at,
                                                         meter_stop_wh=meter_stop_wh)
    start_wh = row.meter_start_wh if row.meter_start_wh is not None else meter_stop_wh
    energy = mapping.kwh(max(0, meter_stop_wh - start_wh))
    return handlers.dispatch(schema, port.TransactionRecord(
        pile_code=pile_code, connector_no=row.connector_no, trade_no=row.trade_no,
        started_at=row.started_at or at, stopped_at=at,
        meter_start_kwh=mapping.kwh(start_wh), meter_stop_kwh=mapping.kwh(meter_stop_wh),
        energy_kwh=energy, pile_amount_yuan=None, stop_reason=mapping.stop_reason(reason),
        card_no=(id_tag or "")[:20] if not (id_tag or "").startswith("EVP") else "",
        raw_hex=raw.encode().hex().upper()))


def running(schema: str, pile_code: str, connector_no: int, trade_no: str) -> tuple[int, str] | None:
    """The transaction to stop for a RemoteStop: ``trade_no``'s if given, else the latest
    running one on the connector; (transactionId, trade number) or None when none runs."""
    from protocols.models import OcppTransaction

    with schema_context(schema):
        rows = OcppTransaction.objects.filter(pile_code=pile_code, started_at__isnull=False,
                                              stopped_at__isnull=True)
        row = (rows.filter(trade_no=trade_no) if trade_no
               else rows.filter(connector_no=connector_no)).order_by("-id").first()
        return (row.pk, row.trade_no) if row is not None else None
