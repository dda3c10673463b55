"""The pile's final record of a session, stored once per trade number before the pile is
acknowledged; a repeat with other content is kept apart for review."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from evplatform.queue import task_queue_on_commit
from stations.models import Pile

from .. import port
from ..models import (
    ChargingOrder,
    OrderTransition,
    PaymentMode,
    RecordPeriod,
    StopReason,
    TransactionRecord,
    TransactionRecordConflict,
)
from .common import Actor, S, _new_order_number

logger = logging.getLogger(__name__)


def record_store(event: port.TransactionRecord) -> port.RecordAck:
    """Store a transaction record durably, once per trade number, and queue its settlement.

    Returns RecordAck(stored=True) once committed (the gateway acknowledges the pile only
    then); a repeat is counted and acknowledged again.
    """
    with transaction.atomic():
        record, created = TransactionRecord.objects.get_or_create(
            trade_no=event.trade_no,
            defaults={
                "pile_code": event.pile_code,
                "connector_no": event.connector_no,
                "started_at": event.started_at,
                "stopped_at": event.stopped_at,
                "meter_start_kwh": event.meter_start_kwh,
                "meter_stop_kwh": event.meter_stop_kwh,
                "energy_kwh": event.energy_kwh,
                "pile_amount_yuan": event.pile_amount_yuan,
                "stop_reason": StopReason(event.stop_reason.value),
                "protocol_stop_code": event.protocol_stop_code,
                "vin": event.vin,
                "card_no": event.card_no,
                "raw_hex": event.raw_hex,
                "pile_tariff_version": event.pile_tariff_version,
                "pile_tariff_since": event.pile_tariff_since,
            },
        )
        if created:
            periods = sorted(set(event.energy_by_period) | set(event.amount_by_period))
            RecordPeriod.objects.bulk_create([
                RecordPeriod(record=record, period=name,
                             energy_kwh=event.energy_by_period.get(name, Decimal("0")),
                             amount_yuan=event.amount_by_period.get(name))
                for name in periods
            ])
        else:
            TransactionRecord.objects.filter(pk=record.pk).update(duplicates=F("duplicates") + 1)
            differs = _record_differs(record, event)
            if differs:
                _record_conflict(record, event, differs)
        task_queue_on_commit("charging.record_settle", record.pk)
    return port.RecordAck(stored=True, duplicate=not created)


_RECORD_FIELDS = (
    "pile_code", "connector_no", "started_at", "stopped_at", "meter_start_kwh",
    "meter_stop_kwh", "energy_kwh", "pile_amount_yuan", "stop_reason", "protocol_stop_code",
    "vin", "card_no",
)


def _record_differs(record: TransactionRecord, event: port.TransactionRecord) -> list[str]:
    """Names of the fields in which a repeat of a stored record differs from it."""
    differs = [name for name in _RECORD_FIELDS if getattr(record, name) != getattr(event, name)]
    if record.energy_by_period() != {k: v for k, v in event.energy_by_period.items() if v}:
        differs.append("energy_by_period")
    return sorted(differs)


def _record_copy(event: port.TransactionRecord) -> dict:
    """The event's content as JSON (a conflicting copy, kept for staff; never billed)."""
    def text(value):
        return value.isoformat() if isinstance(value, datetime) else (
            str(value) if isinstance(value, Decimal) else value)

    copy = {name: text(getattr(event, name)) for name in _RECORD_FIELDS}
    copy["energy_by_period"] = {k: str(v) for k, v in event.energy_by_period.items()}
    return copy


def _record_conflict(record: TransactionRecord, event: port.TransactionRecord,
                     differs: list[str]) -> None:
    """A repeat of a stored record with other content: the first stays the one that bills,
    the copy is kept and the order flagged for review (abnormal, with the reason)."""
    TransactionRecordConflict.objects.create(record=record, data=_record_copy(event),
                                             raw_hex=event.raw_hex)
    logger.warning("record %s repeated with other content (%s): first one kept",
                   record.trade_no, ", ".join(differs))
    reason = f"conflicting copy of the pile's record ({', '.join(differs)})"[:200]
    ChargingOrder.objects.filter(trade_no=record.trade_no, review_reason="").update(
        review_reason=reason
    )
    ChargingOrder.objects.filter(trade_no=record.trade_no).update(abnormal=True)


def _record_order(record: TransactionRecord) -> ChargingOrder:
    """The order a record belongs to; a record nobody started here becomes a flagged,
    pile-initiated order."""
    order = ChargingOrder.objects.filter(trade_no=record.trade_no).first()
    if order is not None:
        return order
    pile = Pile.objects.select_related("station").get(code=record.pile_code)
    connector = pile.connectors.get(number=record.connector_no)
    started = record.started_at
    from billing.tariffs import selectors as tariff_selectors

    locked = tariff_selectors.snapshot_for_connector(connector, started)
    order = ChargingOrder.objects.create(
        number=_new_order_number(started),
        member=None,
        connector=connector,
        pile=pile,
        station=pile.station,
        trade_no=record.trade_no,
        mode=PaymentMode.CARD,
        state=S.CHARGING,
        tariff_version_id=locked[0].pk if locked else None,
        tariff_snapshot=locked[1].to_dict() if locked else None,
        started_at=started,
        card_no=record.card_no,
        vin=record.vin,
        pile_initiated=True,
        abnormal=True,
    )
    OrderTransition.objects.create(
        order=order,
        from_state=S.CREATED,
        to_state=S.CHARGING,
        actor=Actor.PILE,
        reason="record for an unknown trade number",
    )
    return order
