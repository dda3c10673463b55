"""What every part of an order's life shares: the refusal error, the row lock, the state
transition, numbering, and queueing tasks after commit."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime

from django.db import connection
from django.utils import timezone

from evplatform.errors import DomainError
from evplatform.queue import task_queue_on_commit
from stations.models import Pile

from ..models import (
    ACTIVE_STATES,
    ChargingOrder,
    OrderState,
    OrderTransition,
    StopReason,
)
from ..state import IllegalTransition, can_move

logger = logging.getLogger(__name__)


S = OrderState


Actor = OrderTransition.Actor


# Commands to piles (seconds). A command is sent only while its order still wants it and
# only before its deadline: a task redelivered late by the broker is dropped, never sent.
COMMAND_TTL_S = 60


# A stop the pile has not confirmed (0x35 accepted, or the connector reported idle) is
# sent again after this long, until it is confirmed or the pile is found unreachable.
STOP_RETRY_S = 15


# Energy a pile delivers more than this long after a stop request is not billed (the
# order is flagged for review instead).
STOP_GRACE_S = 30


# A pile is unreachable when its gateway cannot reach it and no frame came from it for
# this long.
UNREACHABLE_S = 90


# Connector states in which no session runs (the pile stopped).
IDLE_STATUSES = ("idle", "plugged", "finishing", "fault")


# Stop requests that came from the platform's side: energy after them is not billed.
REQUESTED_STOPS = (StopReason.DRIVER, StopReason.BALANCE, StopReason.PLATFORM)


class OrderRefused(DomainError):
    """A request the charging rules refuse (``code``, ``detail``, HTTP ``status``, 409 unless
    given)."""

    status = 409


def _lock(order_id: int) -> ChargingOrder:
    """The order, row-locked for the rest of the transaction."""
    return ChargingOrder.objects.select_for_update().get(pk=order_id)


def order_transition(
    order: ChargingOrder,
    to_state: str,
    *,
    actor: str,
    actor_id: str = "",
    reason: str = "",
    fields: tuple[str, ...] = (),
) -> None:
    """Move a (locked) order to ``to_state``, recording who, why and when; saves ``fields``
    with it. Raises IllegalTransition."""
    if not can_move(order.state, to_state):
        raise IllegalTransition(order.number, order.state, to_state)
    OrderTransition.objects.create(
        order=order,
        from_state=order.state,
        to_state=to_state,
        actor=actor,
        actor_id=str(actor_id),
        reason=reason[:200],
    )
    was_active = order.state in ACTIVE_STATES
    order.state = to_state
    order.save(update_fields=["state", *fields])
    if (was_active and to_state not in ACTIVE_STATES) or (
            to_state == S.STARTING and order.pile_initiated):
        # Power freed (or taken by a start at the pile): re-plan, offer the queue.
        task_queue_on_commit("charging.station_schedule", order.station_id,
                             f"order {order.number} {to_state}")
    if to_state == S.SETTLED:
        task_queue_on_commit("analytics.order_update", order.pk)  # the dashboards' aggregates
    # Interconnection: the partner whose order this is hears of every step (start result,
    # stop result, the settled order); every settled order reaches the regulators.
    if order.partner or to_state == S.SETTLED:
        task_queue_on_commit("cec.order_changed", order.pk, to_state)


def _new_order_number(now: datetime) -> str:
    return "CD" + now.strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**6):06d}"


def _new_trade_no(pile: Pile, connector_no: int, now: datetime) -> str:
    """YKC 交易流水号: pile code (14) + connector (2) + yymmddHHMMSS (12) + counter (4)."""
    local = timezone.localtime(now)
    return f"{pile.code}{connector_no:02d}{local:%y%m%d%H%M%S}{secrets.randbelow(10**4):04d}"


def _schema() -> str:
    return connection.schema_name


def _queue_command(name: str, order_id: int, *extra, countdown: int = 0) -> None:
    """Queue the pile command task ``name`` for an order after commit, with its deadline
    (epoch s) as second argument: the broker drops it when it arrives later and the task
    checks it again just before sending."""
    deadline = time.time() + countdown + COMMAND_TTL_S
    task_queue_on_commit(
        name, order_id, deadline, *extra, countdown=countdown or None,
        expires=countdown + COMMAND_TTL_S,
    )


def _command_timeout(deadline: float | None) -> float:
    from django.conf import settings

    timeout = float(settings.YKC_COMMAND_TIMEOUT_S)
    if deadline is not None:
        timeout = max(1.0, min(timeout, deadline - time.time()))
    return timeout
