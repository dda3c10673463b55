"""Faults the piles report: opened, kept current and closed from the pile's own reports.

A gateway reports a connector's whole fault set (``charging.port.FaultsReported``, mapped
from the protocol's codes at its edge); :func:`faults_report` keeps one open
:class:`~stations.models.Fault` per (pile, connector, code): opened when first reported,
``last_seen_at`` moved on each report, closed (``cleared_at``) when a report no longer lists
it — an empty report means the connector is healthy. Each opening and closing queues the
operator's alarm handling after commit (``operations.fault_opened`` / ``operations.fault_cleared``,
by task name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from evplatform.queue import task_queue_on_commit

from .models import Connector, Fault, Pile

logger = logging.getLogger(__name__)

# The port's fault codes (charging.port.FaultCode values) in words staff read.
DESCRIPTIONS = {
    "emergency_stop": _("Emergency stop pressed"),
    "power_module": _("Power (rectifier) module missing or failed"),
    "over_temperature": _("Over-temperature at the air outlet"),
    "surge_protector": _("AC surge protector tripped"),
    "internal_comms": _("Internal communication lost"),
    "meter": _("Energy meter communication lost"),
    "card_reader": _("Card reader communication lost"),
    "fan": _("Fan board fault"),
    "fuse": _("DC fuse blown"),
    "contactor": _("High-voltage contactor fault"),
    "door_open": _("Cabinet door open"),
    "connector_lock": _("Connector lock failure"),
    "ev_communication": _("Communication with the vehicle failed"),
    "ground": _("Ground fault"),
    "over_current": _("Over-current"),
    "over_voltage": _("Over-voltage"),
    "under_voltage": _("Under-voltage"),
    "weak_signal": _("Weak mobile signal"),
    "connector": _("Connector in fault (no cause given)"),
    "other": _("Other fault"),
}


@dataclass(frozen=True)
class ReportedFault:
    """One fault in a report: the port's code and severity, the protocol's own code."""

    code: str
    severity: str
    protocol_code: str = ""


@dataclass(frozen=True)
class FaultChanges:
    opened: tuple[int, ...]
    cleared: tuple[int, ...]


@dataclass(frozen=True)
class FaultsReport:
    """One connector's whole fault set at ``at`` (UTC) in a batch (:func:`faults_report_many`):
    ``connector_no`` 0 is the pile as a whole."""

    pile_code: str
    connector_no: int
    faults: tuple[ReportedFault, ...]
    at: datetime


def faults_report(*, pile_code: str, connector_no: int, faults: list[ReportedFault],
                  at: datetime) -> FaultChanges:
    """Bring the open pile-reported faults of connector ``connector_no`` (0: the pile as a
    whole) in line with ``faults``, the whole set it reports at ``at`` (UTC). Returns the ids
    opened and cleared; an unknown pile or connector changes nothing. The batch of one of
    :func:`faults_report_many`."""
    return faults_report_many(reports=[FaultsReport(pile_code, connector_no, tuple(faults),
                                                    at)])[0]


def faults_report_many(*, reports: list[FaultsReport]) -> list[FaultChanges]:
    """:func:`faults_report` for many connectors of the current operator (a storm: the first
    real-time reports of the piles logged in within a moment), each applied as alone, in the
    order given. One transaction and a fixed number of statements whatever their number:
    the piles (with their connectors) read and locked in code order (FOR NO KEY UPDATE:
    rows that merely reference a pile do not block it; as every writer of several piles),
    then per round — a connector reported n times in the batch takes n rounds, one report
    each — one read of the open faults and at most one UPDATE of last-seen times, one of
    clearings and one insert of the new ones. Returns the changes of each report, in order.
    """
    if not reports:
        return []
    changes: list[FaultChanges] = [FaultChanges((), ())] * len(reports)
    codes = sorted({r.pile_code for r in reports})
    quote = connection.ops.quote_name
    piles, connectors = quote(Pile._meta.db_table), quote(Connector._meta.db_table)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Serialise reports of one pile (two gateways, a resend racing a change).
            cursor.execute(
                f"SELECT p.id, p.code, c.id, c.number FROM {piles} p"
                f" LEFT JOIN {connectors} c ON c.pile_id = p.id WHERE p.code = ANY(%s)"
                " ORDER BY p.code FOR NO KEY UPDATE OF p", [codes])
            rows = cursor.fetchall()
        pile_ids = {code: pk for pk, code, _c, _n in rows}
        connector_ids = {(code, no): pk for _p, code, pk, no in rows if pk is not None}
        # Rounds: the i-th report of each connector goes in round i (their order kept).
        rounds: list[list[tuple[int, int, int | None]]] = []
        taken: dict[tuple[int, int | None], int] = {}
        for index, report in enumerate(reports):
            pile_id = pile_ids.get(report.pile_code)
            connector_id = None
            if report.connector_no:
                connector_id = connector_ids.get((report.pile_code, report.connector_no))
                if connector_id is None:
                    continue
            if pile_id is None:
                continue
            key = (pile_id, connector_id)
            n = taken[key] = taken.get(key, -1) + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append((index, pile_id, connector_id))
        for batch in rounds:
            _faults_round(batch, reports, changes)
        for change in changes:
            for pk in change.opened:
                task_queue_on_commit("operations.fault_opened", pk)
            for pk in change.cleared:
                task_queue_on_commit("operations.fault_cleared", pk)
    for report, change in zip(reports, changes, strict=True):
        if change.opened or change.cleared:
            logger.info("pile %s connector %s: faults opened %s cleared %s", report.pile_code,
                        report.connector_no, list(change.opened), list(change.cleared))
    return changes


def _faults_round(batch: list[tuple[int, int, int | None]], reports: list[FaultsReport],
                  changes: list[FaultChanges]) -> None:
    """One round of :func:`faults_report_many`: ``batch`` holds (report index, pile id,
    connector id or None), each connector once; ``changes`` is filled in at the indexes."""
    open_now: dict[tuple[int, int | None], dict[str, Fault]] = {}
    for fault in Fault.objects.filter(
            pile_id__in={pile_id for _i, pile_id, _c in batch}, source=Fault.Source.PILE,
            cleared_at__isnull=True):
        open_now.setdefault((fault.pile_id, fault.connector_id), {})[fault.code] = fault
    seen: list[tuple[int, datetime]] = []
    cleared: list[tuple[int, datetime]] = []
    new: list[tuple[int, Fault]] = []
    for index, pile_id, connector_id in batch:
        report = reports[index]
        wanted = {f.code: f for f in report.faults}
        now_open = open_now.get((pile_id, connector_id), {})
        gone = []
        for code, fault in now_open.items():
            if code in wanted:
                if fault.last_seen_at is None or fault.last_seen_at < report.at:
                    seen.append((fault.pk, report.at))
            else:
                cleared.append((fault.pk, max(report.at, fault.started_at)))
                gone.append(fault.pk)
        changes[index] = FaultChanges((), tuple(gone))
        for code, reported in wanted.items():
            if code in now_open:
                continue
            new.append((index, Fault(
                pile_id=pile_id, connector_id=connector_id, source=Fault.Source.PILE, code=code,
                severity=reported.severity if reported.severity in Fault.Severity.values
                else Fault.Severity.MAJOR,
                protocol_code=reported.protocol_code[:40],
                description=str(DESCRIPTIONS.get(code, DESCRIPTIONS["other"])),
                started_at=report.at, last_seen_at=report.at)))
    table = connection.ops.quote_name(Fault._meta.db_table)
    with connection.cursor() as cursor:
        for column, rows in (("last_seen_at", seen), ("cleared_at", cleared)):
            if rows:
                cursor.execute(
                    f"UPDATE {table} f SET {column} = v.at"
                    " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at)"
                    " WHERE f.id = v.id", [[pk for pk, _at in rows], [at for _pk, at in rows]])
    if new:
        made = Fault.objects.bulk_create([fault for _index, fault in new])
        for (index, _fault), fault in zip(new, made, strict=True):
            changes[index] = FaultChanges(changes[index].opened + (fault.pk,),
                                          changes[index].cleared)
