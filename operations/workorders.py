"""Work orders (工单): maintenance, cleaning and inspection jobs at stations and piles.

Status flow: open → assigned → in_progress → done → closed (closing is allowed from any
state; a closed order is final). A work order with ``pile_maintenance`` disables its pile
(``Pile.enabled``: no start, piles refused as ``pile_disabled``) while it is not closed; the
pile is enabled again when the last such order closes. Overdue: ``due_at`` passed and not
done or closed (:func:`overdue`).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from evplatform.errors import DomainError
from stations.models import Fault, Pile
from stations.services import station_availability_changed

from .models import Alarm, Feedback, WorkOrder, WorkOrderNote

S = WorkOrder.Status
FLOW = {
    S.OPEN: {S.ASSIGNED, S.IN_PROGRESS, S.CLOSED},
    S.ASSIGNED: {S.IN_PROGRESS, S.OPEN, S.CLOSED},
    S.IN_PROGRESS: {S.DONE, S.ASSIGNED, S.CLOSED},
    S.DONE: {S.CLOSED, S.IN_PROGRESS},
    S.CLOSED: set(),
}


class WorkOrderError(DomainError):
    pass


def _maintenance_sync(pile_id: int | None) -> None:
    if pile_id is None:
        return
    held = WorkOrder.objects.filter(pile_id=pile_id, pile_maintenance=True).exclude(status=S.CLOSED)
    enabled = not held.exists()
    if Pile.objects.filter(pk=pile_id).exclude(enabled=enabled).update(enabled=enabled):
        # In or out of maintenance: partners see its connectors unusable, or usable again.
        station_availability_changed(Pile.objects.values_list("station_id", flat=True).get(pk=pile_id))


def work_order_create(*, user, title: str, station=None, pile=None, kind: str = WorkOrder.Kind.MAINTENANCE,
                      description: str = "", due_at: datetime | None = None,
                      pile_maintenance: bool = False, fault: Fault | None = None,
                      alarm: Alarm | None = None, feedback: Feedback | None = None,
                      assigned_to=None) -> WorkOrder:
    """A work order, from a fault, an alarm, feedback or by hand (its station from the pile
    when not given). Raises WorkOrderError ``station_required`` (400)."""
    if pile is None:
        pile = (fault.pile if fault else alarm.pile if alarm else
                feedback.connector.pile if feedback and feedback.connector_id else None)
    station = station or (pile.station if pile else None)
    if station is None:
        raise WorkOrderError("station_required", _("Choose a station or a pile."), 400)
    with transaction.atomic():
        order = WorkOrder.objects.create(
            kind=kind, title=title[:200], description=description, station=station, pile=pile,
            fault=fault, alarm=alarm, feedback=feedback, due_at=due_at,
            pile_maintenance=pile_maintenance and pile is not None, created_by=user,
            assigned_to=assigned_to, status=S.ASSIGNED if assigned_to else S.OPEN)
        _maintenance_sync(order.pile_id)
        audit.record(user, "work_order.change", order, changes={"status": [None, order.status]})
    return order


def work_order_move(*, work_order_id: int, user, status: str, note: str = "",
                    assigned_to=None) -> WorkOrder:
    """Move along the flow with a progress note; ``assigned_to`` (with ``assigned``).
    Raises WorkOrderError ``illegal_transition`` (409)."""
    with transaction.atomic():
        order = WorkOrder.objects.select_for_update().get(pk=work_order_id)
        if status not in FLOW[order.status]:
            raise WorkOrderError("illegal_transition", _("A work order cannot go from %(a)s to %(b)s.") % {
                "a": order.get_status_display(), "b": S(status).label}, 409)
        before = order.status
        order.status = status
        if assigned_to is not None:
            order.assigned_to = assigned_to
        if status == S.CLOSED:
            order.closed_at = timezone.now()
        order.save()
        WorkOrderNote.objects.create(work_order=order, author=user, text=note or "-", status=status)
        _maintenance_sync(order.pile_id)
        audit.record(user, "work_order.change", order, detail=note, changes={"status": [before, status]})
    return order


def overdue(now: datetime | None = None) -> QuerySet[WorkOrder]:
    """Work orders past their due time and not done or closed."""
    now = now or timezone.now()
    return WorkOrder.objects.filter(due_at__lt=now).exclude(Q(status=S.DONE) | Q(status=S.CLOSED))
