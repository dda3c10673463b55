"""Our members charging on interconnection partners' piles (we are the customer-owning
operator; the partner is the infrastructure operator, T/CEC 102-2016).

The order's life, each step one transaction:

1. :func:`roaming_start` (the driver): checks the member and the partner's connector,
   holds the member's available balance (key ``roaming:<number>:hold``), creates the
   order ``starting`` and queues ``cec.roaming_start`` (the protocol calls the partner's
   ``query_start_charge`` in the worker: a partner that times out delays no request).
2. The partner answers and pushes (:class:`port.RoamingStarted`, :class:`port.RoamingProgress`,
   :class:`port.RoamingStopped`): the order moves ``charging`` / ``stopping`` /
   ``finished``; a refused start fails it and releases the hold. While charging, the
   partner's running total reaching the hold makes us ask the partner to stop.
3. :func:`roaming_stop` (the driver): ``stopping``, queues ``cec.roaming_stop``.
4. :func:`roaming_bill` (the partner's ``notification_charge_order_info``): the order is
   billed once from the partner's figures: the wallet pays (hold consumed first; what it
   cannot cover is the member's arrears) and the partner's account is credited, ledger key
   ``roaming:<number>:charge``. A repeated bill with the same total is confirmed again
   without moving money; one with another total is a dispute.
5. :func:`roaming_reconcile` (the partner's daily ``check_charge_orders``): each of its
   orders compared with ours; disagreements are answered and kept on the order.

Locks: the order row (``select_for_update``), then the ledger's accounts (settlement takes
them in primary-key order). Refusals raise :class:`RoamingRefused` with an error code.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from evplatform.money import yuan
from evplatform.queue import task_queue_on_commit
from settlement import selectors as ledger_selectors
from settlement import services as ledger
from stations.models import Connector, PartnerConnector

from . import port
from .models import ACTIVE_STATES, ROAMING_ACTIVE, ChargingOrder, RoamingOrder

State = RoamingOrder.State
ACTIVE = ROAMING_ACTIVE


class RoamingRefused(Exception):
    """A roaming start or stop refused: ``code`` (member_disabled, order_in_progress,
    connector_not_found, connector_unavailable, insufficient_balance, not_stoppable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _hold_key(order: RoamingOrder) -> str:
    return f"roaming:{order.number}:hold"


def _memo(ref: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return gettext("Charging on a partner's pile %(ref)s") % {"ref": ref}


gettext_noop("Charging on a partner's pile %(ref)s")


def _seq(our_operator_id: str, now: datetime) -> str:
    """Our StartChargeSeq: our OperatorID (9) + yymmddHHMMSS (12) + 6 random digits = 27."""
    return our_operator_id + timezone.localtime(now).strftime("%y%m%d%H%M%S") + f"{secrets.randbelow(10**6):06d}"


@transaction.atomic
def roaming_start(*, member, connector_id: int) -> RoamingOrder:
    """Start charging ``member`` on partner connector ``connector_id`` (a
    ``stations.PartnerConnector`` pk). Raises :class:`RoamingRefused`: member_disabled,
    order_in_progress (an order here or on a partner's pile runs), connector_not_found,
    connector_unavailable (the partner shows it offline, charging or faulty),
    insufficient_balance (below the operator's minimum to start)."""
    if not member.is_active:
        raise RoamingRefused("member_disabled", gettext("This account is disabled."))
    connector = (PartnerConnector.objects.select_for_update().select_related("station")
                 .filter(pk=connector_id).first())
    if connector is None:
        raise RoamingRefused("connector_not_found", gettext("No such connector."))
    if connector.status not in (Connector.Status.IDLE, Connector.Status.PLUGGED):
        raise RoamingRefused("connector_unavailable", gettext("This connector cannot start a charge now."))
    # The member row is the lock that keeps one active order per member across both kinds.
    type(member).objects.select_for_update().filter(pk=member.pk).first()
    if (RoamingOrder.objects.filter(member=member, state__in=ACTIVE).exists()
            or ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists()):
        raise RoamingRefused("order_in_progress", gettext("You already have a charge in progress."))
    available = ledger_selectors.wallet_balance(member).available
    if available <= 0 or available < ledger.money_policy().min_start_balance:
        raise RoamingRefused("insufficient_balance", gettext("Your balance is too low to start."))
    now = timezone.now()
    station = connector.station
    order = RoamingOrder.objects.create(
        number="HL" + now.strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**6):06d}",
        member=member, partner=connector.partner, partner_name=station.partner_name,
        seq=_seq(station.our_operator_id, now), connector=connector,
        connector_code=connector.connector_id, station_name=station.name,
        hold_amount=available,
    )
    ledger.wallet_hold(member=member, amount=available, key=_hold_key(order))
    task_queue_on_commit("cec.roaming_start", order.pk)
    return order


@transaction.atomic
def roaming_stop(*, member, order_id: int) -> RoamingOrder:
    """The member stops their order: ``stopping`` and ``cec.roaming_stop`` queued (asked
    again while stopping: sent again). Raises RoamingRefused ``not_stoppable`` for an order
    that is not starting or charging, and RoamingOrder.DoesNotExist for another's order."""
    order = RoamingOrder.objects.select_for_update().get(pk=order_id, member=member)
    if order.state not in ACTIVE:
        raise RoamingRefused("not_stoppable", gettext("This charge is not running."))
    if order.state != State.STOPPING:
        order.state, order.stop_requested_at = State.STOPPING, timezone.now()
        order.save(update_fields=["state", "stop_requested_at"])
    task_queue_on_commit("cec.roaming_stop", order.pk)
    return order


def _locked(partner: str, seq: str) -> RoamingOrder | None:
    return RoamingOrder.objects.select_for_update().filter(partner=partner, seq=seq).first()


@transaction.atomic
def roaming_started(event: port.RoamingStarted) -> bool:
    """The partner's start answer: charging (or still starting), or failed with its
    FailReason and the hold released. Late or repeated answers change nothing."""
    order = _locked(event.partner, event.seq)
    if order is None:
        return False
    if order.state not in (State.STARTING, State.STOPPING):
        return True
    at = event.at or timezone.now()
    if not event.accepted:
        order.state, order.fail_reason, order.stopped_at = State.FAILED, event.fail_reason, at
        ledger.wallet_hold_release(key=_hold_key(order))
        order.save(update_fields=["state", "fail_reason", "stopped_at"])
        return True
    if event.charging and order.state == State.STARTING:
        order.state, order.started_at = State.CHARGING, at
        order.save(update_fields=["state", "started_at"])
    return True


@transaction.atomic
def roaming_progress(event: port.RoamingProgress) -> bool:
    """The partner's running figures; an order starting learns it is charging; the
    session ending makes it ``finished`` (the bill follows). When the running total reaches
    what we hold, the partner is asked to stop (the member's money runs out)."""
    order = _locked(event.partner, event.seq)
    if order is None:
        return False
    if order.state not in ACTIVE:
        return True
    order.energy_kwh, order.total_amount = event.energy_kwh, yuan(event.total_yuan)
    order.electricity_amount, order.service_amount = yuan(event.electricity_yuan), yuan(event.service_yuan)
    order.soc_percent, order.last_progress_at = event.soc_percent, event.at
    fields = ["energy_kwh", "total_amount", "electricity_amount", "service_amount",
              "soc_percent", "last_progress_at"]
    if order.state == State.STARTING:
        order.state, order.started_at = State.CHARGING, order.started_at or event.at
        fields += ["state", "started_at"]
    if event.ended:
        order.state, order.stopped_at = State.FINISHED, event.at
        fields += ["state", "stopped_at"]
    elif order.state == State.CHARGING and order.total_amount >= order.hold_amount:
        order.state, order.stop_requested_at = State.STOPPING, event.at
        fields += ["state", "stop_requested_at"]
        task_queue_on_commit("cec.roaming_stop", order.pk)
    order.save(update_fields=fields)
    return True


@transaction.atomic
def roaming_stopped(event: port.RoamingStopped) -> bool:
    """The partner's stop answer: stopped (``finished``, the bill follows) or refused
    because it had already stopped (FailReason 3: also finished); other refusals leave the
    order charging (the driver may try again)."""
    order = _locked(event.partner, event.seq)
    if order is None:
        return False
    if order.state not in ACTIVE:
        return True
    at = event.at or timezone.now()
    if event.accepted or event.fail_reason == 3:
        order.state, order.stopped_at = State.FINISHED, at
        order.save(update_fields=["state", "stopped_at"])
    elif order.state == State.STOPPING:
        order.state = State.CHARGING
        order.save(update_fields=["state"])
    return True


@transaction.atomic
def roaming_bill(bill: port.RoamingBill) -> port.RoamingBillResult:
    """Bill our member once from the partner's final order (see the module docstring)."""
    order = _locked(bill.partner, bill.seq)
    if order is None:
        return port.RoamingBillResult(False, "unknown")
    total = yuan(bill.total_yuan)
    if order.state == State.SETTLED:
        same = order.total_amount == total
        return port.RoamingBillResult(same, "" if same else "changed")
    ledger.roaming_order_charge(
        member=order.member, partner=order.partner, amount=total,
        key=f"roaming:{order.number}:charge",
        hold_key=_hold_key(order) if order.hold_amount else None,
        memo=_memo(order.number), ref=order.number,
    )
    now = timezone.now()
    order.state, order.settled_at = State.SETTLED, now
    order.total_amount = order.paid_amount = total
    order.energy_kwh = bill.energy_kwh
    order.electricity_amount, order.service_amount = yuan(bill.electricity_yuan), yuan(bill.service_yuan)
    order.started_at = order.started_at or bill.started_at
    order.stopped_at = bill.stopped_at or order.stopped_at or now
    order.stop_reason, order.bill = bill.stop_reason, bill.raw
    order.bill_lines = [_bill_line(line) for line in bill.lines]
    order.save()
    return port.RoamingBillResult(True)


def _bill_line(line: port.RoamingBillLine) -> dict:
    """A bill line as stored on the order (see ``RoamingOrder.bill_lines``)."""
    return {
        "start": line.start.astimezone(UTC).isoformat() if line.start else None,
        "end": line.end.astimezone(UTC).isoformat() if line.end else None,
        "energy_kwh": str(line.energy_kwh),
        "electricity_price": str(line.electricity_price),
        "service_price": str(line.service_price),
        "electricity_yuan": str(yuan(line.electricity_yuan)),
        "service_yuan": str(yuan(line.service_yuan)),
    }


# DisputeReason: 1 交易不存在 2 交易金额错误 3 交易电量错误
DISPUTE_UNKNOWN, DISPUTE_MONEY, DISPUTE_ENERGY = 1, 2, 3
# The partner sends TotalPower with 2 decimals: a difference within that is no dispute.
ENERGY_TOLERANCE_KWH = Decimal("0.01")


@transaction.atomic
def roaming_reconcile(check: port.RoamingReconcile) -> tuple[port.RoamingDispute, ...]:
    """Compare the partner's day (``check_charge_orders``) with our settled orders: each
    line we do not have, or have with another total (yuan) or energy (kWh, 2 dp), is
    returned with its DisputeReason and noted on our order; agreeing orders are marked
    reconciled."""
    now = timezone.now()
    disputes = []
    orders = {o.seq: o for o in RoamingOrder.objects.select_for_update()
              .filter(partner=check.partner, seq__in=[line.seq for line in check.lines])}
    for line in check.lines:
        order = orders.get(line.seq)
        if order is None or order.state != State.SETTLED:
            disputes.append(port.RoamingDispute(line, DISPUTE_UNKNOWN))
            continue
        reason = 0
        if order.total_amount != yuan(line.total_yuan):
            reason = DISPUTE_MONEY
        elif abs(order.energy_kwh - line.energy_kwh) > ENERGY_TOLERANCE_KWH:
            reason = DISPUTE_ENERGY
        order.reconciled_at = now
        order.dispute = "" if not reason else (
            f"partner: {line.total_yuan} yuan, {line.energy_kwh} kWh")[:120]
        order.save(update_fields=["reconciled_at", "dispute"])
        if reason:
            disputes.append(port.RoamingDispute(line, reason))
    return tuple(disputes)


def roaming_view(order: RoamingOrder) -> port.RoamingOrderView:
    return port.RoamingOrderView(
        id=order.pk, number=order.number, partner=order.partner, seq=order.seq,
        connector_id=order.connector_code, state=order.state, created_at=order.created_at,
        energy_kwh=order.energy_kwh, total_yuan=order.total_amount, settled_at=order.settled_at,
        stop_requested_at=order.stop_requested_at,
        last_heard_at=order.last_progress_at or order.started_at or order.created_at,
    )


def roaming_orders(query: port.RoamingOrdersQuery) -> tuple[port.RoamingOrderView, ...]:
    orders = RoamingOrder.objects.order_by("pk")
    if query.order_ids is not None:
        orders = orders.filter(pk__in=query.order_ids)
    if query.partner:
        orders = orders.filter(partner=query.partner)
    if query.settled_from is not None:
        orders = orders.filter(settled_at__gte=query.settled_from)
    if query.settled_to is not None:
        orders = orders.filter(settled_at__lt=query.settled_to)
    if query.active:
        orders = orders.filter(state__in=ACTIVE)
    return tuple(roaming_view(o) for o in orders)
