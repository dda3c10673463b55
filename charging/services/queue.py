"""The station queue (排队): drivers wait for a connector of a kind at a full station.

First come, first served per kind, except that members whose SVIP plan gives *priority
reservation* are served before the others (first come, first served among them); who has
it is marketing's to say (the ``PRIORITY_RESERVATION`` standing of ``accounts.priority``), asked when offers are
made and positions shown, so a membership bought or ended while waiting counts. A connector is *free for the queue* when it is idle (no
car plugged: a car left on the connector after its session keeps it blocked until
unplugged), its pile online and enabled, with no active reservation and no active order,
and the station's power limit admits one more pile. The first waiting driver whose kind
fits is offered it as a :class:`charging.models.Reservation` lasting
``ChargingPolicy.queue_hold_minutes`` — the same rule that keeps everyone else off a
reserved connector (``starts._check_connector``). Starting on it serves the entry
(``starts.order_create``); declining or letting it run out passes it (the driver leaves
the queue) and the connector goes to the next one.

Offers are made by :func:`queue_offer`, called when a connector becomes idle (the pile's
status), when an order ends, when someone leaves the queue and by the scheduling tick; it
locks the station's row, so two calls never offer one connector twice.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import priority as standings
from accounts.models import Member
from evplatform.queue import task_queue_on_commit
from stations.models import Connector, Station

from ..models import ACTIVE_STATES, ChargingOrder, ChargingPolicy, QueueEntry, Reservation
from . import power
from .common import OrderRefused

logger = logging.getLogger(__name__)

E = QueueEntry.State


def _kind_q(kind: str) -> Q:
    if kind == "dc":
        return Q(connector_type=Connector.Type.DC)
    if kind == "ac":
        return ~Q(connector_type=Connector.Type.DC)
    return Q()


def connectors_free(station: Station, kind: str = "") -> list[Connector]:
    """The station's connectors of ``kind`` ("ac", "dc", "" any) free for the queue (see
    the module's docstring), in pile and number order."""
    candidates = (
        Connector.objects.filter(_kind_q(kind), pile__station=station, status=Connector.Status.IDLE,
                                 pile__online=True, pile__enabled=True)
        .exclude(reservations__state=Reservation.State.ACTIVE)
        .exclude(orders__state__in=ACTIVE_STATES)
        .select_related("pile__station")
        .order_by("pile__code", "number")
    )
    return [c for c in candidates if power.power_admits(station=station, pile=c.pile)]


def queue_join(*, member: Member, station: Station, kind: str = "",
               now: datetime | None = None) -> QueueEntry:
    """Join ``station``'s queue for a connector of ``kind``. Raises OrderRefused:
    queue_kind_unknown (400), station_closed, queue_exists, order_in_progress,
    reservation_exists, connector_free (a connector of the kind is free and nobody waits:
    start charging instead), no_such_connector (the station has no connector of the kind)."""
    now = now or timezone.now()
    if kind not in QueueEntry.Kind.values:
        raise OrderRefused("queue_kind_unknown", _("Unknown connector kind."), 400)
    if not member.is_active:
        raise OrderRefused("member_disabled", _("This account is disabled."), 403)
    with transaction.atomic():
        Member.objects.select_for_update().get(pk=member.pk)
        station = Station.objects.select_for_update().get(pk=station.pk)
        if station.status != Station.Status.OPERATING:
            raise OrderRefused("station_closed", _("This station is not open."))
        if QueueEntry.objects.filter(member=member, state__in=QueueEntry.OPEN).exists():
            raise OrderRefused("queue_exists", _("You are already in a queue."))
        if ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists():
            raise OrderRefused("order_in_progress", _("You already have a charge in progress."))
        if Reservation.objects.filter(member=member, state=Reservation.State.ACTIVE).exists():
            raise OrderRefused("reservation_exists", _("You already have a reservation."))
        if not Connector.objects.filter(_kind_q(kind), pile__station=station).exists():
            raise OrderRefused("no_such_connector", _("This station has no connector of this kind."))
        waiting = QueueEntry.objects.filter(station=station, state=E.WAITING).exists()
        if not waiting and connectors_free(station, kind):
            raise OrderRefused("connector_free", _("A connector is free: start charging."))
        entry = QueueEntry.objects.create(station=station, member=member, kind=kind, joined_at=now)
    return entry


def queue_leave(*, entry: QueueEntry, now: datetime | None = None) -> QueueEntry:
    """The driver leaves the queue (waiting or offered: the offer is given up and passes
    to the next). Raises OrderRefused queue_not_open."""
    return _end(entry, E.CANCELLED, "left the queue", now)


def queue_decline(*, entry: QueueEntry, now: datetime | None = None) -> QueueEntry:
    """The driver declines the connector offered: it passes to the next driver and this one
    leaves the queue. Raises OrderRefused queue_not_offered."""
    if entry.state != E.OFFERED:
        raise OrderRefused("queue_not_offered", _("You have no connector offered."))
    return _end(entry, E.PASSED, "declined", now)


def _end(entry: QueueEntry, state: str, reason: str, now: datetime | None) -> QueueEntry:
    now = now or timezone.now()
    with transaction.atomic():
        Station.objects.select_for_update().get(pk=entry.station_id)
        entry = QueueEntry.objects.select_for_update().get(pk=entry.pk)
        if entry.state not in QueueEntry.OPEN:
            raise OrderRefused("queue_not_open", _("You are no longer in this queue."))
        _close(entry, state, reason, now)
        task_queue_on_commit("charging.station_schedule", entry.station_id, reason)
    return entry


def _close(entry: QueueEntry, state: str, reason: str, now: datetime,
           reservation_state: str = Reservation.State.CANCELLED) -> None:
    if entry.reservation_id:
        Reservation.objects.filter(pk=entry.reservation_id, state=Reservation.State.ACTIVE).update(
            state=reservation_state, ended_at=now)
    entry.state = state
    entry.ended_at = now
    entry.end_reason = reason[:100]
    entry.save(update_fields=["state", "ended_at", "end_reason"])


def _priority_first(entries: list[QueueEntry], now: datetime) -> list[QueueEntry]:
    """``entries`` in serving order: priority members first, then by joining time."""
    first = standings.members_with(standings.PRIORITY_RESERVATION,
                                   {e.member_id for e in entries}, now)
    return sorted(entries, key=lambda e: (e.member_id not in first, e.joined_at, e.pk))


def queue_offer(*, station_id: int, now: datetime | None = None) -> list[QueueEntry]:
    """Offer the station's free connectors to its waiting drivers, first come first served
    per kind (priority members first); each offer is a reservation of ``queue_hold_minutes`` and a subscribe message
    (queued after commit). Returns the entries offered now."""
    now = now or timezone.now()
    policy = ChargingPolicy.current()
    offered: list[QueueEntry] = []
    with transaction.atomic():
        station = Station.objects.select_for_update().filter(pk=station_id).first()
        if station is None:
            return offered
        waiting = _priority_first(list(QueueEntry.objects.select_for_update()
                                       .filter(station=station, state=E.WAITING).order_by("joined_at", "pk")), now)
        if not waiting:
            return offered
        free = connectors_free(station)
        taken_piles: set[int] = set()
        for entry in waiting:
            if Reservation.objects.filter(member_id=entry.member_id,
                                          state=Reservation.State.ACTIVE).exists():
                continue  # holding a connector already
            for choice in [c for c in free if not entry.kind or c.current_kind == entry.kind]:
                if not _still_admits(station, choice, taken_piles):
                    continue
                # The connector's row before the reservation (as reservation_create and
                # order_create lock it), then look again: taken meanwhile, it is skipped.
                locked = Connector.objects.select_for_update(of=("self",)).get(pk=choice.pk)
                if (locked.status != Connector.Status.IDLE
                        or Reservation.objects.filter(connector=choice,
                                                      state=Reservation.State.ACTIVE).exists()
                        or ChargingOrder.objects.filter(connector=choice,
                                                        state__in=ACTIVE_STATES).exists()):
                    free.remove(choice)
                    continue
                try:
                    with transaction.atomic():
                        reservation = Reservation.objects.create(
                            member_id=entry.member_id, connector=choice,
                            expires_at=now + timedelta(minutes=policy.queue_hold_minutes),
                        )
                except IntegrityError:  # reserved by someone else a moment ago
                    free.remove(choice)
                    continue
                break
            else:
                continue
            free.remove(choice)
            taken_piles.add(choice.pile_id)
            entry.state = E.OFFERED
            entry.offered_at = now
            entry.reservation = reservation
            entry.save(update_fields=["state", "offered_at", "reservation"])
            task_queue_on_commit("charging.queue_offer_notify", entry.pk)
            offered.append(entry)
    return offered


def _still_admits(station: Station, connector: Connector, taken: set[int]) -> bool:
    """With offers out on the piles ``taken``, is there power for one more pile? Offered
    piles count as running (their driver is on the way)."""
    if station.max_power_kw is None:
        return True
    from stations.models import Pile

    policy = ChargingPolicy.current()
    running = set(ChargingOrder.objects.filter(station=station, state__in=ACTIVE_STATES)
                  .values_list("pile_id", flat=True))
    piles = Pile.objects.filter(pk__in=running | taken | {connector.pile_id})
    return sum((power.floor_kw(p, policy) for p in piles), power.ZERO) <= station.max_power_kw


def queue_expire(*, now: datetime | None = None) -> int:
    """Offers past their hold window, or whose reservation ended without a start, pass:
    the driver leaves the queue (a no-show) and the connector goes to the next. Returns how
    many passed."""
    now = now or timezone.now()
    stations: set[int] = set()
    count = 0
    for entry_id in QueueEntry.objects.filter(state=E.OFFERED).filter(
        Q(reservation__isnull=True) | Q(reservation__expires_at__lt=now)
        | ~Q(reservation__state=Reservation.State.ACTIVE)
    ).values_list("pk", flat=True):
        with transaction.atomic():
            entry = QueueEntry.objects.select_for_update(of=("self",)).select_related("reservation").get(
                pk=entry_id)
            if entry.state != E.OFFERED:
                continue
            reservation = entry.reservation
            if reservation is not None and reservation.state == Reservation.State.USED:
                _close(entry, E.SERVED, "started on the offered connector", now)
            else:
                _close(entry, E.PASSED, "no-show: the offer ran out", now, Reservation.State.EXPIRED)
                count += 1
            stations.add(entry.station_id)
    for station_id in stations:
        queue_offer(station_id=station_id, now=now)
    return count


@dataclass(frozen=True)
class QueueStatus:
    """Where a driver stands: ``position`` (1 = next) among those waiting for a connector
    that fits, ``wait_min`` the estimated wait in minutes (None: nothing to estimate from),
    ``offer`` the reservation held for them while offered, ``expires_in_s`` its seconds
    left."""

    entry: QueueEntry
    position: int | None
    wait_min: int | None
    offer: Reservation | None
    expires_in_s: int | None


def queue_status(entry: QueueEntry, now: datetime | None = None) -> QueueStatus:
    """The driver's position and estimated wait (from the sessions running on the
    connectors of the kind: the pile's remaining minutes when it reports them, else the
    operator's typical session length less the time charged so far)."""
    now = now or timezone.now()
    if entry.state == E.OFFERED and entry.reservation is not None:
        left = int((entry.reservation.expires_at - now).total_seconds())
        return QueueStatus(entry, 0, 0, entry.reservation, max(0, left))
    if entry.state != E.WAITING:
        return QueueStatus(entry, None, None, None, None)
    line = QueueEntry.objects.filter(station=entry.station_id, state=E.WAITING)
    if entry.kind:
        line = line.filter(kind__in=["", entry.kind])
    ordered = _priority_first(list(line.only("pk", "member_id", "joined_at")), now)
    position = next((i for i, e in enumerate(ordered, start=1) if e.pk == entry.pk), len(ordered) + 1)
    return QueueStatus(entry, position, wait_minutes(entry.station, entry.kind, position, now),
                       None, None)


def wait_minutes(station: Station, kind: str, position: int, now: datetime) -> int | None:
    """Estimated minutes until the ``position``-th driver in line gets a connector of
    ``kind``: each busy connector frees after its session's remaining time, then serves
    the next driver for a typical session."""
    from stations import live

    from .common import _schema

    policy = ChargingPolicy.current()
    connectors = list(Connector.objects.filter(_kind_q(kind), pile__station=station)
                      .select_related("pile"))
    if not connectors:
        return None
    orders = {o.connector_id: o for o in ChargingOrder.objects.filter(
        connector__in=connectors, state__in=ACTIVE_STATES)}
    readings = live.connectors_get(_schema(), [(c.pile.code, c.number) for c in orders_connectors(
        connectors, orders)]) if orders else {}
    free_at: list[float] = []
    for c in connectors:
        typical = policy.typical_dc_minutes if c.current_kind == "dc" else policy.typical_ac_minutes
        order = orders.get(c.pk)
        if order is None:
            # Idle, reserved or blocked by a car: free within a hold window at worst.
            free_at.append(0.0 if c.status == Connector.Status.IDLE else policy.queue_hold_minutes)
            continue
        reading = readings.get((c.pile.code, c.number), {})
        remaining = reading.get("remaining_min")
        if remaining not in (None, "", "0"):
            free_at.append(float(remaining))
        else:
            elapsed = (now - (order.started_at or order.created_at)).total_seconds() / 60
            free_at.append(max(1.0, typical - elapsed))
    heapq.heapify(free_at)
    at = 0.0
    for _n in range(position):
        at = heapq.heappop(free_at)
        heapq.heappush(free_at, at + (policy.typical_dc_minutes if kind == "dc"
                                      else policy.typical_ac_minutes if kind == "ac"
                                      else policy.typical_dc_minutes))
    return int(round(at))


def orders_connectors(connectors: list[Connector], orders: dict) -> list[Connector]:
    return [c for c in connectors if c.pk in orders]


def station_schedule(*, station_id: int, reason: str = "", now: datetime | None = None) -> dict:
    """After anything that frees or takes a connector or power at a station: re-plan its
    power limit (if it has one) and offer its free connectors to the queue."""
    plan = power.station_power_plan(station_id=station_id, reason=reason, now=now)
    offered = queue_offer(station_id=station_id, now=now)
    return {"plan": plan.pk if plan else None, "offered": [e.pk for e in offered]}


def scheduling_tick(*, now: datetime | None = None, replan_after_s: int = 300) -> dict:
    """The periodic job: offers that ran out pass; stations with drivers waiting are offered
    what is free (an event may have been lost); limited stations with sessions are
    re-planned when a pile did not take its cap or the last plan is older than
    ``replan_after_s``. Returns counts."""
    from ..models import PowerPlan
    from .occupancy import occupancy_tick

    now = now or timezone.now()
    occupancy = occupancy_tick(now=now)
    passed = queue_expire(now=now)
    offered = 0
    for station_id in set(QueueEntry.objects.filter(state=E.WAITING)
                          .values_list("station_id", flat=True)):
        offered += len(queue_offer(station_id=station_id, now=now))
    replanned = 0
    limited = set(ChargingOrder.objects.filter(state__in=ACTIVE_STATES,
                                               station__max_power_kw__isnull=False)
                  .values_list("station_id", flat=True))
    for station_id in limited:
        last = PowerPlan.objects.filter(station_id=station_id).first()
        stale = last is None or (now - last.at).total_seconds() > replan_after_s
        unanswered = last is not None and any(row.get("ok") is False for row in last.caps)
        if stale or unanswered:
            power.station_power_plan(station_id=station_id, reason="tick", now=now)
            replanned += 1
    return {"passed": passed, "offered": offered, "replanned": replanned, **occupancy}
