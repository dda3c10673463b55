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

from django.db import transaction
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


def faults_report(*, pile_code: str, connector_no: int, faults: list[ReportedFault],
                  at: datetime) -> FaultChanges:
    """Bring the open pile-reported faults of connector ``connector_no`` (0: the pile as a
    whole) in line with ``faults``, the whole set it reports at ``at`` (UTC). Returns the ids
    opened and cleared; an unknown pile or connector changes nothing."""
    pile = Pile.objects.filter(code=pile_code).first()
    if pile is None:
        return FaultChanges((), ())
    connector = None
    if connector_no:
        connector = Connector.objects.filter(pile=pile, number=connector_no).first()
        if connector is None:
            return FaultChanges((), ())
    wanted = {f.code: f for f in faults}
    opened: list[int] = []
    cleared: list[int] = []
    with transaction.atomic():
        # Serialise reports of one pile (two gateways, a resend racing a change).
        # FOR NO KEY UPDATE: rows that merely reference the pile do not block it.
        Pile.objects.select_for_update(no_key=True).filter(pk=pile.pk).values_list("pk").first()
        open_now = {f.code: f for f in Fault.objects.filter(
            pile=pile, connector=connector, source=Fault.Source.PILE, cleared_at__isnull=True)}
        for code, fault in open_now.items():
            if code in wanted:
                if fault.last_seen_at is None or fault.last_seen_at < at:
                    Fault.objects.filter(pk=fault.pk).update(last_seen_at=at)
            else:
                Fault.objects.filter(pk=fault.pk).update(cleared_at=max(at, fault.started_at))
                cleared.append(fault.pk)
        for code, reported in wanted.items():
            if code in open_now:
                continue
            fault = Fault.objects.create(
                pile=pile, connector=connector, source=Fault.Source.PILE, code=code,
                severity=reported.severity if reported.severity in Fault.Severity.values
                else Fault.Severity.MAJOR,
                protocol_code=reported.protocol_code[:40],
                description=str(DESCRIPTIONS.get(code, DESCRIPTIONS["other"])),
                started_at=at, last_seen_at=at)
            opened.append(fault.pk)
        for pk in opened:
            task_queue_on_commit("operations.fault_opened", pk)
        for pk in cleared:
            task_queue_on_commit("operations.fault_cleared", pk)
    if opened or cleared:
        logger.info("pile %s connector %s: faults opened %s cleared %s", pile_code,
                    connector_no, opened, cleared)
    return FaultChanges(tuple(opened), tuple(cleared))
