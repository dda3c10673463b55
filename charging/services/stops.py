"""Stopping an order: the request, sending it (again) while it is still wanted, the pile's
confirmation by answer or by readings."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.queue import task_queue_on_commit

from .. import port
from ..models import (
    ACTIVE_STATES,
    ChargingOrder,
    OrderTransition,
    StopReason,
)
from .common import (
    IDLE_STATUSES,
    STOP_RETRY_S,
    Actor,
    OrderRefused,
    S,
    _command_timeout,
    _lock,
    _queue_command,
    _schema,
    order_transition,
)

logger = logging.getLogger(__name__)


def order_stop(
    *, order_id: int, actor: str, actor_id: str = "", reason: str = StopReason.DRIVER
) -> ChargingOrder:
    """Ask the pile to stop: the order turns ``stopping`` and the remote stop is sent (and
    sent again until the pile confirms it, see ``order_stop_send``). Asking again while
    stopping sends the stop again at once. Raises OrderRefused ``order_not_stoppable`` when
    not charging."""

    with transaction.atomic():
        order = _lock(order_id)
        if order.state == S.STOPPING:
            OrderTransition.objects.create(
                order=order, from_state=S.STOPPING, to_state=S.STOPPING, actor=actor,
                actor_id=str(actor_id), reason="stop requested again: re-sent",
            )
            _queue_command("charging.order_send_stop", order.pk)
            return order
        if order.state not in (S.STARTING, S.CHARGING):
            raise OrderRefused("order_not_stoppable", _("This order is not charging."))
        order.stop_requested_at = timezone.now()
        order.stop_reason = reason
        order_transition(
            order,
            S.STOPPING,
            actor=actor,
            actor_id=actor_id,
            reason=reason,
            fields=("stop_requested_at", "stop_reason"),
        )
        _queue_command("charging.order_send_stop", order.pk)
    return order


def stop_unwanted(order: ChargingOrder, staff: bool = False) -> str:
    """Why a remote stop must not be sent for ``order`` now ("" when it must): checked just
    before every send, because YKC's stop names no session and would end whatever runs on
    the connector. Wanted for an order ``stopping``, for an ``abnormal`` one whose stop never
    reached the pile, and for a start that timed out (the pile may start late), and only
    while no other session is on the connector (neither an active order here nor another
    trade number in the pile's latest readings)."""
    from stations import live

    if order.state == S.STOPPING:
        pass
    elif order.state == S.ABNORMAL and order.stop_requested_at and not order.stop_confirmed_at:
        pass
    elif order.state == S.FAILED and order.stop_reason == StopReason.START_FAILED:
        pass
    elif staff and not order.is_active:
        pass  # staff re-send for an ended order: only while the pile reports its session
    else:
        return "not_stopping"
    if (
        ChargingOrder.objects.filter(connector_id=order.connector_id, state__in=ACTIVE_STATES)
        .exclude(pk=order.pk)
        .exists()
    ):
        return "superseded"
    try:
        reading = live.connectors_get(_schema(), [(order.pile.code, order.connector.number)])
    except Exception:  # live state is a hint; the gateway checks the session again
        reading = {}
    values = next(iter(reading.values()), {})
    trade = values.get("trade_no", "")
    if trade.strip("0") and trade != order.trade_no:
        return "superseded"
    if staff and not order.is_active and not (
        trade == order.trade_no and values.get("status") == "charging"
    ):
        return "not_charging"
    return ""


def order_stop_send(*, order_id: int, deadline: float | None = None, staff: bool = False) -> str:
    """Send the remote stop of an order (the Celery task's body), only before ``deadline``
    (epoch s) and only while ``stop_unwanted`` finds nothing against it. Notes the attempt
    on the order; a stop not yet confirmed is checked again in ``STOP_RETRY_S``. Returns
    what happened: sent, expired, a reason from ``stop_unwanted``, or the bus error."""
    from .. import bus

    if deadline is not None and time.time() > deadline:
        logger.info("stop of order %s dropped: past its deadline", order_id)
        return "expired"
    order = ChargingOrder.objects.select_related("pile", "connector").get(pk=order_id)
    why_not = stop_unwanted(order, staff=staff)
    if why_not:
        logger.info("stop of order %s not sent: %s", order.number, why_not)
        return why_not
    command = port.RemoteStop(
        pile_code=order.pile.code, connector_no=order.connector.number, trade_no=order.trade_no
    )
    result = bus.send(_schema(), command, timeout=_command_timeout(deadline))
    outcome = "sent" if result.ok else result.error
    if not result.ok and result.error == "refused":
        if result.detail.get("refusal") == port.StopRefusal.NOT_CHARGING:
            outcome = "not_charging"
    now = timezone.now()
    with transaction.atomic():
        order = _lock(order_id)
        order.stop_attempts += 1
        order.stop_sent_at = now
        order.stop_result = outcome[:20]
        fields = ["stop_attempts", "stop_sent_at", "stop_result"]
        if outcome in ("sent", "not_charging") and not order.stop_confirmed_at:
            order.stop_confirmed_at = now
            fields.append("stop_confirmed_at")
        order.save(update_fields=fields)
        if order.state == S.STOPPING and not order.stop_confirmed_at:
            task_queue_on_commit("charging.order_check_stop", order.pk, countdown=STOP_RETRY_S)
    return outcome


def order_check_stop(*, order_id: int, now: datetime | None = None) -> str:
    """Send the stop again when it is still wanted, not confirmed and its last attempt is
    ``STOP_RETRY_S`` old (or there was none). Returns "resent" or why not."""

    now = now or timezone.now()
    order = ChargingOrder.objects.get(pk=order_id)
    if order.state not in (S.STOPPING, S.ABNORMAL) or order.stop_confirmed_at:
        return "done"
    if order.state == S.ABNORMAL and not order.stop_requested_at:
        return "done"
    if order.stop_sent_at and (now - order.stop_sent_at).total_seconds() < STOP_RETRY_S - 1:
        return "pending"
    with transaction.atomic():
        _queue_command("charging.order_send_stop", order.pk)
    return "resent"


def orders_pile_still_charging() -> list[int]:
    """Ids of orders that are no longer active while their pile's latest readings still
    show their session charging (a stop that never arrived): for staff to re-send it."""
    from stations import live

    schema = _schema()
    client = live.client()
    prefix = live.connector_key(schema, "", 0)[: -len(":0")]
    trades = {}
    pipe = client.pipeline(transaction=False)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    for key in keys:
        pipe.hmget(key, "status", "trade_no")
    for status, trade in pipe.execute():
        if status == "charging" and trade and trade.strip("0"):
            trades[trade] = True
    if not trades:
        return []
    return list(
        ChargingOrder.objects.filter(trade_no__in=list(trades))
        .exclude(state__in=ACTIVE_STATES)
        .values_list("pk", flat=True)
    )


def order_stop_resend(*, order_id: int, user) -> None:
    """Staff: send the stop again for an order whose pile still reports its session
    charging (checked again just before sending; noted on the order's timeline)."""

    with transaction.atomic():
        order = _lock(order_id)
        OrderTransition.objects.create(
            order=order, from_state=order.state, to_state=order.state, actor=Actor.STAFF,
            actor_id=str(user.pk), reason="stop re-sent by staff (pile still charging)",
        )
        _queue_command("charging.order_send_stop", order.pk, True)


def _stop_confirmed(order_id: int, why: str, at: datetime) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        if order.stop_confirmed_at is None and order.stop_requested_at is not None:
            order.stop_confirmed_at = at
            order.stop_result = why[:20]
            order.save(update_fields=["stop_confirmed_at", "stop_result"])


def order_stop_result(event: port.StopResult) -> None:
    """The pile's answer to a stop: accepted, or refused because the connector is not
    charging, confirms the stop (the record follows); another refusal leaves the order
    stopping and the stop is sent again."""
    order = (
        ChargingOrder.objects.filter(
            pile__code=event.pile_code,
            connector__number=event.connector_no,
            state__in=(S.STOPPING, S.ABNORMAL),
            stop_requested_at__isnull=False,
        )
        .order_by("-created_at")
        .first()
    )
    if order is None:
        return
    if event.accepted or event.refusal is port.StopRefusal.NOT_CHARGING:
        _stop_confirmed(order.pk, "sent" if event.accepted else "not_charging", event.at or timezone.now())
    else:
        logger.warning(
            "pile %s refused to stop order %s (code %s); it is sent again",
            event.pile_code, order.number, event.protocol_code,
        )


def _connector_idle(event: port.Progress) -> None:
    """Readings that show no session on a connector confirm a stop that waits there."""
    if event.status not in IDLE_STATUSES:
        return
    if event.trade_no and event.trade_no.strip("0"):
        candidates = ChargingOrder.objects.filter(trade_no=event.trade_no)
    else:
        candidates = ChargingOrder.objects.filter(
            pile__code=event.pile_code, connector__number=event.connector_no
        )
    for order_id in candidates.filter(
        state__in=(S.STOPPING, S.ABNORMAL),
        stop_requested_at__isnull=False,
        stop_requested_at__lte=event.at,
        stop_confirmed_at__isnull=True,
    ).values_list("pk", flat=True):
        _stop_confirmed(order_id, "idle", event.at)
