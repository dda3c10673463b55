"""What we push to partners and regulators, through a queue that survives their outages.

Each message is one :class:`Push` row keyed by what it is about (``order_info:<seq>``,
``start_result:<seq>``, ``status:<connector>:<time>``...), so an event seen twice, a
manual push of an order already pushed, or a retry never makes a second message: the same
row is (re)sent. A push is done when the partner confirms it (``Ret`` 0 and the
interface's success field); otherwise it is retried after ``CEC_RETRY_DELAYS_S`` and, past
the last delay, left ``dead`` for staff to retry from the admin. Sending happens in the
worker (``cec.push_send``, and the ``cec.pushes_due`` beat job), never in a driver's
request: a partner that times out delays nobody.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from charging import handlers, port
from evplatform.queue import task_queue_on_commit

from . import client, codec, convert
from .models import Partner, Push

logger = logging.getLogger(__name__)

LEASE_S = 120  # a push being sent is not picked up again for this long
ORDER_WAIT_S = 2  # a message about an order waits this long for an earlier one still pending
# A partner hears of its order in order: the start result before any charge status or the
# stop result, the stop result before the settled order. Key prefix → the prefixes whose
# message about the same order must be confirmed (or dead) first.
_AFTER = {
    "charge_status": ("start_result",),
    "stop_result": ("start_result",),
    "order_info": ("start_result", "stop_result"),
}


def _ask(message):
    return handlers.handle(message)  # already in the operator's schema


def push_enqueue(*, partner: Partner, interface: str, key: str, payload: dict,
                 resend: bool = False) -> Push:
    """Queue ``payload`` for ``interface`` at ``partner`` under ``key`` (sent after commit).
    An existing push with that key is left alone, unless ``resend`` (a dead or done one is
    queued again, as the same message)."""
    with transaction.atomic():
        push = Push.objects.select_for_update().filter(partner=partner, key=key).first()
        if push is None:
            try:
                with transaction.atomic():
                    push = Push.objects.create(partner=partner, interface=interface, key=key,
                                               payload=codec.dumps(payload))
            except IntegrityError:  # queued at the same moment by another worker
                return Push.objects.get(partner=partner, key=key)
        elif resend and push.state != Push.State.PENDING:
            push.state, push.next_attempt_at = Push.State.PENDING, timezone.now()
            push.payload = codec.dumps(payload)
            push.save(update_fields=["state", "next_attempt_at", "payload"])
        else:
            return push
        task_queue_on_commit("cec.push_send", push.pk)
    return push


def push_retry(*, push_id: int) -> Push:
    """Staff: send a dead (or waiting) push again now; its attempts start over."""
    with transaction.atomic():
        push = Push.objects.select_for_update().get(pk=push_id)
        if push.state == Push.State.DONE:
            return push
        push.state, push.attempts, push.next_attempt_at = Push.State.PENDING, 0, timezone.now()
        push.save(update_fields=["state", "attempts", "next_attempt_at"])
        task_queue_on_commit("cec.push_send", push.pk)
    return push


def _confirmed(interface: str, data: Any) -> bool:
    data = data if isinstance(data, dict) else {}
    if interface in ("notification_stationStatus", "notification_stationInfo"):
        return data.get("Status") in (0, 1)  # 1: ignored, do not retry
    if interface == "notification_charge_order_info":
        return data.get("ConfirmResult") is not None  # 1 = disputed: answered, kept in result
    if interface == "check_charge_orders":
        return True
    return data.get("SuccStat") == 0


def _waits_for_earlier(push_id: int) -> bool:
    """Whether an earlier message about the same order to the same partner is pending."""
    push = Push.objects.filter(pk=push_id).only("partner_id", "key").first()
    kind, _sep, rest = push.key.partition(":") if push else ("", "", "")
    earlier = _AFTER.get(kind)
    if not earlier:
        return False
    seq = rest.split(":")[0]
    return Push.objects.filter(partner_id=push.partner_id, state=Push.State.PENDING,
                               key__in=[f"{k}:{seq}" for k in earlier]).exists()


def _superseded(push_id: int) -> bool:
    """A charge status of an order whose stop result is already queued: stale news."""
    push = Push.objects.filter(pk=push_id).only("partner_id", "key").first()
    if push is None or not push.key.startswith("charge_status:"):
        return False
    seq = push.key.split(":")[1]
    return Push.objects.filter(partner_id=push.partner_id, key=f"stop_result:{seq}").exists()


def push_send(*, push_id: int, now: datetime | None = None) -> str:
    """Send one pending push whose time has come; returns done, retry, dead, skipped,
    waiting (an earlier message about the same order is still pending: this one is sent
    after it, ``ORDER_WAIT_S`` later, without counting an attempt), or superseded (a charge
    status not sent before the order's stop result: closed unsent, the partner is never told
    "charging" after "stopped")."""
    now = now or timezone.now()
    if _superseded(push_id):
        closed = Push.objects.filter(pk=push_id, state=Push.State.PENDING, next_attempt_at__lte=now).update(
            state=Push.State.DONE, done_at=now, last_error="superseded by the stop result, not sent")
        return "superseded" if closed else "skipped"
    if _waits_for_earlier(push_id):
        later = now + timedelta(seconds=ORDER_WAIT_S)
        if Push.objects.filter(pk=push_id, state=Push.State.PENDING, next_attempt_at__lte=now).update(
                next_attempt_at=later):
            task_queue_on_commit("cec.push_send", push_id, countdown=ORDER_WAIT_S)
            return "waiting"
        return "skipped"
    claimed = Push.objects.filter(
        pk=push_id, state=Push.State.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=LEASE_S))
    if not claimed:
        return "skipped"
    push = Push.objects.select_related("partner").get(pk=push_id)
    push.attempts += 1
    push.sent_at = now
    error, ret = "", None
    try:
        reply = client.call(push.partner, push.interface, push.data())
        push.last_request, push.last_response = reply.request, reply.response
        ret, push.result = reply.ret, reply.data
        if reply.ret != 0:
            error = f"Ret {reply.ret} {reply.msg}"
        elif not _confirmed(push.interface, reply.data):
            error = "not confirmed by the partner"
    except client.CallFailed as exc:
        error = str(exc)
        push.last_request, push.last_response = exc.request, exc.response
    push.last_ret, push.last_error = ret, error[:300]
    delays = settings.CEC_RETRY_DELAYS_S
    if not error:
        push.state, push.done_at, outcome = Push.State.DONE, timezone.now(), "done"
    elif push.attempts > len(delays):
        push.state, outcome = Push.State.DEAD, "dead"
        logger.warning("CEC push %s to %s is dead: %s", push.key, push.partner, error)
    else:
        push.next_attempt_at = timezone.now() + timedelta(seconds=delays[push.attempts - 1])
        outcome = "retry"
    push.save()
    return outcome


def pushes_send_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Send the pending pushes whose time has come (the beat job's second half)."""
    now = now or timezone.now()
    ids = list(Push.objects.filter(state=Push.State.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for push_id in ids:
        push_send(push_id=push_id, now=now)
    return len(ids)


# --- what is pushed, and to whom ---------------------------------------------------------


def _order(order_id: int) -> port.OrderView | None:
    found = _ask(port.OrdersQuery(order_ids=(order_id,)))
    return found[0] if found else None


def _partner_of(order: port.OrderView) -> Partner | None:
    if not order.partner:
        return None
    return Partner.objects.filter(operator_id=order.partner, enabled=True).first()


def _regulators():
    return Partner.objects.filter(enabled=True, is_regulator=True).exclude(base_url="")


def order_changed(*, order_id: int, state: str) -> list[Push]:
    """An order moved to ``state``: its partner hears the start result (charging, or
    failed while starting), the stop result (finished) and the settled order; every
    regulator gets every settled order."""
    order = _order(order_id)
    if order is None:
        return []
    pushes = []
    partner = _partner_of(order)
    if partner is not None and partner.base_url:
        us, seq = partner.our_operator_id, order.partner_seq
        cid = convert.connector_id(us, order.pile_code, order.connector_no)
        if state in ("charging", "failed") and not (state == "failed" and order.started_at):
            pushes.append(push_enqueue(
                partner=partner, interface="notification_start_charge_result",
                key=f"start_result:{seq}",
                payload={"StartChargeSeq": seq, "StartChargeSeqStat": 2 if state == "charging" else 4,
                         "ConnectorID": cid, "StartTime": convert.when(order.started_at or order.created_at),
                         "IdentCode": ""},
            ))
        if state in ("finished", "settled"):
            pushes.append(push_enqueue(
                partner=partner, interface="notification_stop_charge_result",
                key=f"stop_result:{seq}",
                payload={"StartChargeSeq": seq, "StartChargeSeqStat": 4, "ConnectorID": cid,
                         "SuccStat": 0, "FailReason": 0},
            ))
        if state == "settled":
            pushes.append(push_enqueue(
                partner=partner, interface="notification_charge_order_info",
                key=f"order_info:{seq}", payload=convert.charge_order_info(us, order),
            ))
    if state == "settled":
        for regulator in _regulators():
            pushes.append(order_to_regulator(regulator, order))
    return pushes


def order_to_regulator(regulator: Partner, order: port.OrderView, *, resend: bool = False) -> Push:
    info = convert.charge_order_info(regulator.our_operator_id, order)
    return push_enqueue(partner=regulator, interface="notification_charge_order_info",
                        key=f"order_info:{order.number}", payload=info, resend=resend)


def orders_push(*, regulator: Partner, order_ids: tuple[int, ...] | None = None,
                settled_from: datetime | None = None, settled_to: datetime | None = None) -> int:
    """Staff: push these settled orders (by id, or settled in the range) to ``regulator``
    now. An order pushed before is sent again as the same message, never as a new one."""
    orders = _ask(port.OrdersQuery(order_ids=order_ids, settled_from=settled_from,
                                   settled_to=settled_to))
    count = 0
    for order in orders:
        if order.state == "settled":
            order_to_regulator(regulator, order, resend=True)
            count += 1
    return count


def stations_to_regulators(*, station_ids: tuple[int, ...] | None = None,
                           regulators=None, resend: bool = False) -> list[Push]:
    """``notification_stationInfo`` (the regulator profiles' push of station master data)
    of each station a regulator sees: one message per station and content (keyed by a
    digest of its StationInfo: piles, connectors, prices, address...), so a station
    unchanged since it was pushed is not pushed again;
    ``resend`` (staff's "push now"): the current version is sent again as the same
    message. ``regulators``: these (default every enabled one with an address)."""
    from .server import station_info

    regulators = list(_regulators() if regulators is None else regulators)
    found = _ask(port.StationsQuery(station_ids=station_ids)) if regulators else ()
    today = timezone.localdate()
    pushed = []
    for regulator in regulators:
        for station in found:
            if not _visible(regulator, station.id):
                continue
            payload = {"StationInfo": station_info(regulator, station, today)}
            digest = hashlib.sha256(codec.dumps(payload).encode()).hexdigest()[:32]
            pushed.append(push_enqueue(
                partner=regulator, interface="notification_stationInfo",
                key=f"station_info:{station.id}:{digest}", payload=payload, resend=resend))
    return pushed


def _visible(partner: Partner, station_id: int) -> bool:
    return partner.all_stations or partner.stations.filter(pk=station_id).exists()


def connector_status(*, pile_code: str, connector_no: int) -> list[Push]:
    """A connector's status changed: every partner and regulator that sees its station gets
    ``notification_stationStatus`` (one message per change)."""
    return connector_statuses(connectors=[(pile_code, connector_no)])


def connector_statuses(*, connectors: list[tuple[str, int]]) -> list[Push]:
    """Connectors' statuses changed, ``[(pile_code, connector_no), ...]``: as
    :func:`connector_status` for each, the partners and the stations read once for all.
    A connector not found (its pile gone) is skipped; the same change twice is one push
    (keyed by the connector and the time its status changed)."""
    partners = list(Partner.objects.filter(enabled=True).exclude(base_url="").filter(
        Q(is_customer_operator=True) | Q(is_regulator=True)))
    if not partners or not connectors:
        return []
    wanted = {(code, int(no)) for code, no in connectors}
    found: dict[tuple[str, int], tuple] = {}
    for station in _ask(port.StationsQuery()):
        for pile in station.piles:
            for c in pile.connectors:
                if (pile.code, c.connector_no) in wanted:
                    found[(pile.code, c.connector_no)] = (station, c)
    made = []
    for code, no in connectors:
        if (code, int(no)) not in found:
            continue
        station, c = found[(code, int(no))]
        at = (c.status_changed_at or timezone.now()).isoformat()
        made += [
            push_enqueue(
                partner=p, interface="notification_stationStatus",
                key=f"status:{code}:{no}:{at}",
                payload={"ConnectorStatusInfo": convert.connector_status_info(
                    p.our_operator_id, code, c)},
            )
            for p in partners if _visible(p, station.id)
        ]
    return made


def _last_status(partner: Partner, pile_code: str, connector_no: int) -> int | None:
    """The Status we last pushed to ``partner`` for this connector (None: never)."""
    last = (Push.objects.filter(partner=partner, interface="notification_stationStatus",
                                key__startswith=f"status:{pile_code}:{connector_no}:")
            .order_by("-created_at", "-id").first())
    if last is None:
        return None
    info = last.data().get("ConnectorStatusInfo") or {}
    return info.get("Status")


def station_status(*, station_id: int, now: datetime | None = None) -> list[Push]:
    """Staff changed what a station's connectors can do (station status, a pile disabled
    for maintenance): each partner and regulator that sees the station gets
    ``notification_stationStatus`` for every connector whose status differs from the one we
    last pushed to it (none pushed yet: pushed). Running it twice pushes nothing new."""
    now = now or timezone.now()
    partners = list(Partner.objects.filter(enabled=True).exclude(base_url="").filter(
        Q(is_customer_operator=True) | Q(is_regulator=True)))
    found = _ask(port.StationsQuery(station_ids=(station_id,))) if partners else ()
    pushed = []
    for station in found:
        for p in partners:
            if not _visible(p, station.id):
                continue
            for pile in station.piles:
                for c in pile.connectors:
                    info = convert.connector_status_info(p.our_operator_id, pile.code, c)
                    if _last_status(p, pile.code, c.connector_no) == info["Status"]:
                        continue
                    pushed.append(push_enqueue(
                        partner=p, interface="notification_stationStatus",
                        key=f"status:{pile.code}:{c.connector_no}:{now.isoformat()}",
                        payload={"ConnectorStatusInfo": info}))
    return pushed


def charge_status_due(*, now: datetime | None = None) -> int:
    """Push ``notification_equip_charge_status`` for every charging partner order at its
    partner's cadence (one message per order and interval)."""
    now = now or timezone.now()
    count = 0
    partners = {p.operator_id: p for p in Partner.objects.filter(enabled=True).exclude(base_url="")}
    if not partners:
        return 0
    for order in _ask(port.OrdersQuery(active=True)):
        partner = partners.get(order.partner)
        if partner is None or order.state != "charging":
            continue
        bucket = int(now.timestamp()) // max(1, partner.status_interval_s)
        push_enqueue(partner=partner, interface="notification_equip_charge_status",
                     key=f"charge_status:{order.partner_seq}:{bucket}",
                     payload=convert.charge_status(partner.our_operator_id, order, now))
        count += 1
    return count


def check_orders_if_due(*, now: datetime | None = None) -> list[Push]:
    """:func:`check_orders` for yesterday when China time is inside the reconciliation
    window ``settings.CEC_CHECK_ORDERS_HOURS`` ([first hour, last hour), default 0–3), else
    nothing."""
    local = (now or timezone.now()).astimezone(convert.CHINA)
    first, last = settings.CEC_CHECK_ORDERS_HOURS
    if not first <= local.hour < last:
        return []
    return check_orders(day=(local - timedelta(days=1)).date())


def check_orders(*, day, now: datetime | None = None) -> list[Push]:
    """``check_charge_orders`` for local ``day`` (a date) to every partner with orders that
    day (its own orders) and every regulator (all orders)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=convert.CHINA)
    end = start + timedelta(days=1)
    orders = _ask(port.OrdersQuery(settled_from=start, settled_to=end))
    pushes = []
    for partner in Partner.objects.filter(enabled=True).exclude(base_url=""):
        mine = [o for o in orders if partner.is_regulator or o.partner == partner.operator_id]
        if not mine and not partner.is_regulator:
            continue
        us = partner.our_operator_id
        seq = us + f"{day:%Y%m%d}".rjust(18, "0")
        payload = {
            "CheckOrderSeq": seq, "StartTime": convert.when(start), "EndTime": convert.when(end),
            "OrderCount": len(mine),
            "TotalOrderPower": convert.q(sum((o.energy_kwh for o in mine), Decimal(0)), 2),
            "TotalOrderMoney": convert.q(sum((o.total_yuan for o in mine), Decimal(0)), 2),
            "ChargeOrders": [{"StartChargeSeq": convert.start_charge_seq(us, o),
                              "TotalPower": convert.q(o.energy_kwh, 2),
                              "TotalMoney": convert.q(o.total_yuan, 2)} for o in mine],
        }
        pushes.append(push_enqueue(partner=partner, interface="check_charge_orders",
                                   key=f"check:{day:%Y-%m-%d}", payload=payload))
    return pushes
