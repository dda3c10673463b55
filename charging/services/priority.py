"""Sharing a station's power by priority: each pile's weight for :func:`charging.loadplan.allocate`.

A station whose ``power_sharing`` is ``equal`` gives every pile with sessions weight 1
(equal shares, as before). One sharing ``by priority`` weighs each session by the largest of
the operator's weights that applies to it (``ChargingPolicy``), else 1:

- ``svip``: the driver holds an active SVIP (asked through :mod:`accounts.priority`, the
  seam marketing fills in: charging does not import marketing);
- ``fleet``: the driver charges for a fleet (``Member.fleet``);
- ``departure``: the driver asked to leave within ``priority_departure_minutes``
  (``ChargingOrder.departure_at``).

A pile's weight is the sum of its sessions' weights (a pile charging two cars counts
twice). Weights only move power between piles: the sum of caps stays under the limit and
every pile keeps its floor (the allocation's rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import priority as standings
from evplatform.queue import task_queue_on_commit
from stations.models import PowerSharing, Station

from ..models import ACTIVE_STATES, ChargingOrder, ChargingPolicy
from .common import OrderRefused, _lock

ONE = Decimal("1")


@dataclass
class PileWeight:
    """``weight`` (≥ 1 per session) and why (``reasons``: "svip", "fleet", "departure")."""

    weight: Decimal = Decimal("0")
    reasons: list[str] = field(default_factory=list)


def pile_weights(*, station: Station, order_ids_by_pile: dict[int, list[int]],
                 policy: ChargingPolicy, now: datetime) -> dict[int, PileWeight]:
    """Each pile's weight (pile id → :class:`PileWeight`) for the orders running on it."""
    if station.power_sharing != PowerSharing.PRIORITY:
        return {pk: PileWeight(ONE) for pk in order_ids_by_pile}
    ids = [o for orders in order_ids_by_pile.values() for o in orders]
    orders = {o.pk: o for o in ChargingOrder.objects.filter(pk__in=ids).only(
        "pk", "member_id", "departure_at")}
    members = {o.member_id for o in orders.values()}
    svip = standings.members_with(standings.SVIP, members, now)
    fleet = standings.members_with(standings.FLEET, members, now)
    soon = now + timedelta(minutes=policy.priority_departure_minutes)
    weights: dict[int, PileWeight] = {}
    for pile_id, order_ids in order_ids_by_pile.items():
        pile = weights[pile_id] = PileWeight()
        for order_id in order_ids:
            order = orders.get(order_id)
            applies = {}
            if order is not None and order.member_id in svip:
                applies["svip"] = policy.priority_svip_weight
            if order is not None and order.member_id in fleet:
                applies["fleet"] = policy.priority_fleet_weight
            if order is not None and order.departure_at is not None and order.departure_at <= soon:
                applies["departure"] = policy.priority_departure_weight
            pile.weight += max([ONE, *applies.values()])
            pile.reasons += [r for r in applies if r not in pile.reasons]
        pile.weight = max(pile.weight, ONE)
    return weights


# A requested departure further ahead than this is refused (a typo, not a plan).
DEPARTURE_MAX_AHEAD = timedelta(hours=24)


def order_departure_set(*, order_id: int, departure_at: datetime | None,
                        now: datetime | None = None) -> ChargingOrder:
    """The driver says when they must leave (None: no longer). At a station sharing power
    by priority, a departure within ``priority_departure_minutes`` weighs the session more
    from the next plan on; the station is re-planned now (queued after commit).

    Raises OrderRefused: ``order_not_active`` (409: the session has ended),
    ``departure_invalid`` (400: in the past or more than 24 h ahead)."""
    now = now or timezone.now()
    if departure_at is not None and not now <= departure_at <= now + DEPARTURE_MAX_AHEAD:
        raise OrderRefused("departure_invalid",
                           _("The departure must be within the next 24 hours."), 400)
    with transaction.atomic():
        order = _lock(order_id)
        if order.state not in ACTIVE_STATES:
            raise OrderRefused("order_not_active", _("This charge has ended."))
        order.departure_at = departure_at
        order.save(update_fields=["departure_at"])
        if order.station.max_power_kw is not None:
            task_queue_on_commit("charging.station_schedule", order.station_id, "departure")
    return order
