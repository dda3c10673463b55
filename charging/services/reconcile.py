"""The reconciler: finds what was lost in between and finishes it, exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models, transaction
from django.utils import timezone

from evplatform.queue import task_queue_on_commit

from ..models import (
    ChargingOrder,
    ChargingPolicy,
    Reservation,
    TransactionRecord,
)
from .common import (
    STOP_RETRY_S,
    UNREACHABLE_S,
    Actor,
    S,
    _lock,
    _queue_command,
    _schema,
    order_transition,
)
from .settle import record_settle
from .starts import order_check_start


def _pile_unreachable(order: ChargingOrder, now: datetime) -> bool:
    """The pile cannot be reached: the last stop attempt found no route or no answer (or
    none was made) and no frame came from the pile for ``UNREACHABLE_S``."""
    from stations import live

    if order.stop_result not in ("", "pile_offline", "timeout", "busy", "failed"):
        return False  # the pile answered
    try:
        seen = live.pile_last_seen(_schema(), order.pile.code)
    except Exception:  # Redis lost: fall back on the database's flag
        return not order.pile.online
    return seen is None or (now - seen).total_seconds() >= UNREACHABLE_S


def orders_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Find what was lost in between and finish it: starts past their deadline fail,
    silent charges are asked for readings (YKC 0x12) then marked abnormal, unconfirmed stops
    are sent again (also for abnormal orders whose stop never reached the pile), a stop
    becomes abnormal only when the pile is unreachable past the record deadline (or when
    the pile stopped and no record came for three deadlines), stored records not yet
    settled are settled, reservations past their time expire. Returns counts per kind."""

    now = now or timezone.now()
    policy = ChargingPolicy.current()
    counts = {
        "start_timeout": 0, "asked": 0, "abnormal": 0, "stops_resent": 0, "records": 0,
        "reservations": 0,
    }
    for order_id in ChargingOrder.objects.filter(
        state=S.STARTING, start_deadline__lt=now
    ).values_list("pk", flat=True):
        order_check_start(order_id=order_id, now=now)
        counts["start_timeout"] += 1
    silent_since = now - timedelta(seconds=policy.progress_timeout_s)
    lost_since = now - timedelta(seconds=3 * policy.progress_timeout_s)
    for order in ChargingOrder.objects.filter(state=S.CHARGING):
        last = order.last_progress_at or order.started_at or order.created_at
        if last < lost_since:
            _mark_abnormal(order.pk, "no readings from the pile")
            counts["abnormal"] += 1
        elif last < silent_since:
            task_queue_on_commit("charging.order_ask_readings", order.pk)
            counts["asked"] += 1
    deadline = now - timedelta(seconds=policy.stop_timeout_s)
    retry_before = now - timedelta(seconds=STOP_RETRY_S)
    for order in ChargingOrder.objects.filter(state=S.STOPPING).select_related("pile"):
        requested = order.stop_requested_at or order.created_at
        if order.stop_confirmed_at is None:
            if requested < deadline and _pile_unreachable(order, now):
                _mark_abnormal(order.pk, "pile unreachable: the stop did not arrive")
                counts["abnormal"] += 1
            elif order.stop_sent_at is None or order.stop_sent_at < retry_before:
                with transaction.atomic():
                    _queue_command("charging.order_send_stop", order.pk)
                counts["stops_resent"] += 1
        elif order.stop_confirmed_at < now - timedelta(seconds=3 * policy.stop_timeout_s):
            _mark_abnormal(order.pk, "no transaction record after the pile stopped")
            counts["abnormal"] += 1
        elif requested < deadline:
            task_queue_on_commit("charging.order_ask_readings", order.pk)
            counts["asked"] += 1
    # Abnormal because the pile was unreachable: the stop goes out again (the pile may be
    # back and still charging), every few retry intervals.
    for order_id in ChargingOrder.objects.filter(
        state=S.ABNORMAL,
        stop_requested_at__isnull=False,
        stop_confirmed_at__isnull=True,
        record__isnull=True,
    ).filter(
        models.Q(stop_sent_at__isnull=True)
        | models.Q(stop_sent_at__lt=now - timedelta(seconds=4 * STOP_RETRY_S))
    ).values_list("pk", flat=True):
        with transaction.atomic():
            _queue_command("charging.order_send_stop", order_id)
        counts["stops_resent"] += 1
    for record_id in TransactionRecord.objects.filter(
        received_at__lt=now - timedelta(minutes=1)
    ).exclude(order__state__in=(S.SETTLED, S.REVIEW)).values_list(
        "pk", flat=True
    ):
        record_settle(record_id=record_id)
        counts["records"] += 1
    counts["reservations"] = Reservation.objects.filter(
        state=Reservation.State.ACTIVE, expires_at__lt=now
    ).update(state=Reservation.State.EXPIRED, ended_at=now)
    return counts


def _mark_abnormal(order_id: int, reason: str) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        if order.state in (S.CHARGING, S.STOPPING, S.STARTING):
            order.abnormal = True
            order_transition(order, S.ABNORMAL, actor=Actor.SYSTEM, reason=reason, fields=("abnormal",))
