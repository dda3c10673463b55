"""Load management: a station's power limit shared among its sessions, sent to the piles.

A station with ``max_power_kw`` is re-planned (:func:`station_power_plan`) before a remote
start is sent, when a pile starts a session by itself, when a session ends, and by the
scheduling tick. Each plan is :func:`charging.loadplan.allocate` over the piles with an
active order (equal shares, or weighted by priority per the station's ``power_sharing``:
:mod:`.priority`; a pile's floor is ``ChargingPolicy.power_floor_percent`` of its
rating, its ceiling its rating), sent as ``port.PowerLimit`` through the command bus in two
phases so the piles' caps never add up to more than the limit on the way:

1. caps that go *down* are sent first; a pile that does not acknowledge keeps counting at
   what it may still draw (its last acknowledged cap, else its rating), and the others are
   planned again with what is left;
2. only then caps that go *up*; a pile that does not acknowledge stays at its lower cap.

One plan at a time per station (a PostgreSQL advisory lock). Each plan is stored as a
:class:`charging.models.PowerPlan` for staff and the big screen.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from stations.models import Pile, Station

from .. import loadplan, port
from ..models import ACTIVE_STATES, ChargingOrder, ChargingPolicy, PowerPlan
from . import priority
from .common import OrderRefused, _schema

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
SEND_TIMEOUT_S = 10.0
MAX_ROUNDS = 4


@dataclass
class _PileState:
    pile: Pile
    believed_kw: Decimal  # what it may draw now: last acknowledged cap, else its rating
    order_ids: list[int]
    connectors_kw: Decimal = ZERO  # Σ rating of its connectors with sessions

    @property
    def ceiling_kw(self) -> Decimal:
        """The most its sessions can draw: its rating, or less with fewer guns in use."""
        return min(self.pile.rated_power_kw, self.connectors_kw or self.pile.rated_power_kw)


def floor_kw(pile: Pile, policy: ChargingPolicy) -> Decimal:
    """The lowest cap ``pile`` takes (kW)."""
    return pile.rated_power_kw * policy.power_floor_percent / 100


def _active_piles(station: Station) -> dict[int, _PileState]:
    piles: dict[int, _PileState] = {}
    orders = (ChargingOrder.objects.filter(station=station, state__in=ACTIVE_STATES)
              .select_related("pile", "connector").order_by("created_at", "pk"))
    for order in orders:
        state = piles.get(order.pile_id)
        if state is None:
            pile = order.pile
            believed = pile.power_cap_kw if pile.power_cap_kw is not None else pile.rated_power_kw
            state = piles[order.pile_id] = _PileState(pile, min(believed, pile.rated_power_kw), [])
        state.order_ids.append(order.pk)
        state.connectors_kw += order.connector.rated_power_kw
    return piles


def power_admits(*, station: Station, pile: Pile) -> bool:
    """May a session start on ``pile`` under the station's limit? True without a limit, or
    when the pile already runs a session, or when every running pile's floor and this one's
    fit. (Read inside order creation's transaction.)"""
    if station.max_power_kw is None:
        return True
    policy = ChargingPolicy.current()
    piles = _active_piles(station)
    if pile.pk in piles:
        return True
    floors = sum((floor_kw(s.pile, policy) for s in piles.values()), ZERO)
    return floors + floor_kw(pile, policy) <= station.max_power_kw


def power_check_start(*, station: Station, pile: Pile) -> None:
    """Raises OrderRefused ``station_power_full`` when the station's limit has no room for
    one more pile (join the queue instead)."""
    if not power_admits(station=station, pile=pile):
        raise OrderRefused("station_power_full",
                           _("This station is at its power limit: join the queue."))


class _AdvisoryLock:
    """One plan at a time per station, across processes (session-level advisory lock)."""

    def __init__(self, station_id: int) -> None:
        self.key = zlib.crc32(f"{connection.schema_name}:power:{station_id}".encode())

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [self.key])
        return self

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])


def _send(pile: Pile, cap_kw: Decimal) -> port.CommandResult:
    from .. import bus

    return bus.send(_schema(), port.PowerLimit(pile_code=pile.code, max_power_kw=cap_kw,
                                               rated_power_kw=pile.rated_power_kw),
                    timeout=SEND_TIMEOUT_S)


def station_power_plan(*, station_id: int, reason: str = "",
                       now: datetime | None = None) -> PowerPlan | None:
    """Re-plan station ``station_id``'s limit among its running piles and send the caps
    (see the module's docstring). Returns the stored plan, or None for a station without a
    limit. Never raises for a pile that does not answer (it is counted at what it may still
    draw, and retried by the next plan)."""
    now = now or timezone.now()
    station = Station.objects.filter(pk=station_id).first()
    if station is None or station.max_power_kw is None:
        return None
    policy = ChargingPolicy.current()
    with _AdvisoryLock(station_id):
        piles = _active_piles(station)
        weights = priority.pile_weights(
            station=station, order_ids_by_pile={pk: s.order_ids for pk, s in piles.items()},
            policy=policy, now=now)
        limit = station.max_power_kw
        last = PowerPlan.objects.filter(station=station).first()
        # What each pile was last asked and took: asked again for the same, it is not sent.
        settled = {row["pile"]: row["cap_kw"] for row in (last.caps if last else [])
                   if row.get("ok") is not False and row.get("cap_kw") is not None}
        fixed: dict[int, Decimal] = {}  # piles that did not take a lower cap: kW counted
        rows: dict[int, dict] = {}
        allocation = loadplan.Allocation(limit_kw=limit)
        for _round in range(MAX_ROUNDS):
            budget = limit - sum(fixed.values(), ZERO)
            demands = [
                loadplan.Demand(key=str(pk), floor_kw=min(floor_kw(s.pile, policy), s.ceiling_kw),
                                ceiling_kw=s.ceiling_kw, weight=weights[pk].weight)
                for pk, s in piles.items() if pk not in fixed
            ]
            allocation = loadplan.allocate(max(budget, ZERO), demands)
            targets = {int(k): v for k, v in allocation.caps.items()}
            # A pile left out keeps its floor as its cap (it cannot go lower): counted.
            for key in allocation.unserved:
                targets[int(key)] = loadplan._up(floor_kw(piles[int(key)].pile, policy))
            failed = False
            for pk, cap in targets.items():
                state = piles[pk]
                if _unchanged(state, cap, settled):
                    continue
                if cap >= state.believed_kw and state.pile.power_cap_kw is not None:
                    continue
                if cap > state.believed_kw:
                    continue  # an increase: phase 2
                result = _send(state.pile, cap)
                rows[pk] = _row(state, cap, result)
                if result.ok:
                    _acknowledged(state, result, cap, now)
                else:
                    fixed[pk] = state.believed_kw
                    failed = True
                    break  # plan the others again without it
            if not failed:
                break
        else:
            targets = {}
        for pk, cap in targets.items():
            state = piles[pk]
            if pk in fixed or _unchanged(state, cap, settled) or not cap > state.believed_kw or (
                    state.pile.power_cap_kw is None and cap >= state.pile.rated_power_kw):
                continue
            result = _send(state.pile, cap)
            rows[pk] = _row(state, cap, result)
            if result.ok:
                _acknowledged(state, result, cap, now)
        caps = []
        for pk, state in piles.items():
            row = rows.get(pk) or _row(state, targets.get(pk), None)
            row["believed_kw"] = str(state.believed_kw)
            row["weight"] = str(weights[pk].weight)
            row["priority"] = weights[pk].reasons
            caps.append(row)
        total = sum((s.believed_kw for s in piles.values()), ZERO)
        plan = PowerPlan.objects.create(
            station=station, at=now, reason=reason[:100], limit_kw=limit,
            total_kw=total, assumed_kw=sum(fixed.values(), ZERO), caps=caps,
            unserved=[piles[int(k)].pile.code for k in allocation.unserved],
        )
    if total > limit:
        logger.error("station %s: piles may draw %s kW over its %s kW limit", station.pk,
                     total, limit)
    return plan


def _unchanged(state: _PileState, cap: Decimal, settled: dict[str, str]) -> bool:
    """The pile took this very cap last time (and holds what it took)."""
    return (state.pile.power_cap_kw is not None and settled.get(state.pile.code) is not None
            and Decimal(settled[state.pile.code]) == cap)


def _row(state: _PileState, cap: Decimal | None, result: port.CommandResult | None) -> dict:
    return {
        "pile": state.pile.code, "orders": state.order_ids,
        "cap_kw": None if cap is None else str(cap), "sent": result is not None,
        "ok": None if result is None else result.ok,
        "error": "" if result is None else result.error,
    }


def _acknowledged(state: _PileState, result: port.CommandResult, cap: Decimal,
                  now: datetime) -> None:
    applied = Decimal(str(result.detail.get("applied_kw", cap)))
    applied = min(applied, cap)
    state.believed_kw = applied
    state.pile.power_cap_kw = applied
    state.pile.power_cap_at = now
    with transaction.atomic():
        Pile.objects.filter(pk=state.pile.pk).update(power_cap_kw=applied, power_cap_at=now)


def pile_cap_acknowledged(plan: PowerPlan | None, pile: Pile) -> bool:
    """Did ``plan`` leave ``pile`` with a cap it acknowledged (or need none)?"""
    if plan is None:
        return True
    for row in plan.caps:
        if row["pile"] == pile.code:
            return row["ok"] is not False
    return True
