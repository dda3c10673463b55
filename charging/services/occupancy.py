"""Occupancy after charging (占位费): the tariff's fee for a car left on the connector.

The fee runs from the session's stop (the pile's record, ``order.stopped_at``) to the moment
the pile reports the car gone — the connector *idle* (YKC 0x13 是否插枪 = 0 with 状态 idle;
OCPP StatusNotification ``Available`` after ``Finishing``) — priced by the order's tariff
snapshot (:func:`billing.tariffs.pricing.occupancy_fee`: whole minutes, the first
``grace_minutes`` free, ``per_minute`` yuan after, at most ``cap``).

It is charged **once per order, after the charge itself**, as a follow-up posting keyed
``order:<number>:occupancy`` (wallet: taken from the balance, the rest booked as arrears;
partner orders: the partner's receivable). The order's bill gains the fee and its basis,
``occupancy_amount``, ``total_amount`` and ``paid_amount`` grow by it. A car that leaves
before the order is settled is charged the moment the order settles (the same posting);
one that leaves after, when the pile reports it. The driver therefore sees one bill with
an occupancy line, complete once the car has left.

Edge cases, in the driver's favour when the platform cannot know:

- the pile goes offline while the car may still be there: the fee runs to the moment it
  went offline (the last time the car was known to be plugged), basis ``pile_offline``;
- the pile never reports the car leaving: after ``REPORT_WAIT`` or once another session
  starts on the connector, the order is closed ``unreported`` and nothing is charged;
- an order rejected in review is ``waived``; refunds may give the fee back
  (:func:`charging.services.staff.order_refund_partial` reverses the charge, then this).

Locks: the order's row (``common._lock``), as settlement takes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from billing.tariffs import pricing
from evplatform import money
from evplatform.queue import task_queue_on_commit

from ..models import ChargingOrder, OccupancyState, PaymentMode
from .common import S, _lock

OS = OccupancyState
ZERO = Decimal("0.00")

# Past this long after its stop, an order whose car was never reported gone is closed
# ``unreported`` (nothing charged).
REPORT_WAIT = timedelta(hours=24)

# Orders whose car may still be on the connector: charged or stopping on the pile's side.
_AFTER_START = (S.CHARGING, S.STOPPING, S.FINISHED, S.REVIEW, S.SETTLED)


def _key(order: ChargingOrder) -> str:
    return f"order:{order.number}:occupancy"


def occupancy_minutes(order: ChargingOrder) -> int | None:
    """Whole minutes (rounded down) from the stop to the unplug; None while either is
    unknown; 0 when the car left first."""
    if order.stopped_at is None or order.unplugged_at is None:
        return None
    return max(0, int((order.unplugged_at - order.stopped_at).total_seconds() // 60))


def _latest_open_of(pile_codes: list[str], *, numbered: bool = False) -> dict[str, list]:
    """The latest order on each connector of the piles ``pile_codes``, when its car is not
    known gone yet (an unplug before its start is ignored later), in one statement
    (DISTINCT ON): pile code → order ids (``numbered``: (order id, connector number)),
    piles without any left out."""
    latest = (ChargingOrder.objects.filter(connector__pile__code__in=pile_codes)
              .order_by("connector_id", "-created_at", "-pk").distinct("connector_id")
              .values_list("pk", "state", "unplugged_at", "occupancy_state",
                           "connector__pile__code", "connector__number"))
    found: dict[str, list] = {}
    for pk, state, unplugged_at, occupancy, code, number in latest:
        if state in _AFTER_START and unplugged_at is None and not occupancy:
            found.setdefault(code, []).append((pk, number) if numbered else pk)
    return found


def occupancy_unplugged(*, pile_code: str, connector_no: int, at: datetime) -> ChargingOrder | None:
    """The pile reports connector ``connector_no`` idle (no car) at ``at``: the latest
    session on it gets its unplug time and, if settled, its fee is charged now. Returns the
    order touched, or None (no session waiting for its car to leave). Idempotent: the first
    report counts. The batch of one of :func:`occupancy_connectors_unplugged`."""
    return occupancy_connectors_unplugged(reports=[(pile_code, connector_no, at)])[0]


def occupancy_connectors_unplugged(*, reports: list[tuple[str, int, datetime]]
                                   ) -> list[ChargingOrder | None]:
    """:func:`occupancy_unplugged` for many ``(pile code, connector no, at)`` (a storm: the
    first real-time reports of the piles logged in within a moment), in the order given:
    the connectors' latest orders read in one statement; only an order waiting for its car
    costs more (its own locked transaction, as alone). Returns the order each report
    touched, or None."""
    if not reports:
        return []
    latest: dict[tuple[str, int], int] = {}
    found = _latest_open_of(sorted({code for code, _no, _at in reports}), numbered=True)
    for code, orders in found.items():
        for pk, number in orders:
            latest[(code, number)] = pk
    touched: list[ChargingOrder | None] = []
    for code, no, at in reports:
        pk = latest.get((code, no))
        touched.append(None if pk is None else _unplugged(pk, at, basis="unplugged"))
    return touched


def occupancy_pile_offline(*, pile_code: str, at: datetime) -> list[ChargingOrder]:
    """The pile went offline at ``at``: sessions it had stopped whose car had not left
    are charged up to ``at`` (the last moment the car was known plugged). Sessions still
    running are left alone (their record and unplug come after the reconnection). The
    batch of one of :func:`occupancy_piles_offline`."""
    return occupancy_piles_offline(marks=[(pile_code, at)])


def occupancy_piles_offline(*, marks: list[tuple[str, datetime]]) -> list[ChargingOrder]:
    """:func:`occupancy_pile_offline` for many ``(pile code, at)`` (a code given twice
    counts with its latest time): the piles' latest orders read in one statement; only an
    order waiting for its car costs more (its own locked transaction, as alone)."""
    latest: dict[str, datetime] = {}
    for code, at in marks:
        latest[code] = max(at, latest.get(code, at))
    if not latest:
        return []
    touched = []
    for code, ids in sorted(_latest_open_of(sorted(latest)).items()):
        for pk in ids:
            order = _unplugged(pk, latest[code], basis="pile_offline", stopped_only=True)
            if order is not None:
                touched.append(order)
    return touched


def _unplugged(order_id: int, at: datetime, *, basis: str,
               stopped_only: bool = False) -> ChargingOrder | None:
    with transaction.atomic():
        order = _lock(order_id)
        if order.unplugged_at is not None or order.occupancy_state:
            return None
        if order.started_at is not None and at < order.started_at:
            return None
        if stopped_only and order.state in (S.CHARGING, S.STOPPING):
            return None
        order.unplugged_at = at
        order.unplug_basis = basis
        order.save(update_fields=["unplugged_at", "unplug_basis"])
        if order.state == S.SETTLED:
            occupancy_settle(order=order)
            if order.occupancy_state == OS.CHARGED:  # the driver's bill grows: tell the app
                from .. import realtime

                transaction.on_commit(lambda: realtime.order_push(order))
        return order


def occupancy_settle(*, order: ChargingOrder, waive: bool = False) -> ChargingOrder:
    """Charge the occupancy fee of a settled ``order`` (locked by the caller, inside its
    transaction) once its car is known gone; ``waive`` closes it uncharged (a rejected
    review). Does nothing while the car may still be there or when already closed."""
    if order.occupancy_state or order.state != S.SETTLED:
        return order
    if waive:
        order.occupancy_state = OS.WAIVED
        order.save(update_fields=["occupancy_state"])
        return order
    minutes = occupancy_minutes(order)
    if minutes is None:
        return order
    snapshot = pricing.TariffSnapshot.from_dict(order.tariff_snapshot) if order.tariff_snapshot else None
    fee = pricing.occupancy_fee(snapshot, minutes) if snapshot else ZERO
    bill = dict(order.bill or {})
    terms = snapshot.occupancy if snapshot else None
    bill["occupancy"] = {
        "minutes": minutes,
        "from": order.stopped_at.isoformat(),
        "to": order.unplugged_at.isoformat(),
        "basis": order.unplug_basis or "unplugged",
        "grace_minutes": terms.grace_minutes if terms else None,
        "per_minute": None if terms is None else str(terms.per_minute),
        "cap": None if terms is None or terms.cap is None else str(terms.cap),
        "yuan": str(fee),
    }
    fields = ["bill", "occupancy_state"]
    if fee > 0 and (order.member_id is not None or order.mode == PaymentMode.PARTNER):
        _post(order, fee)
        bill["occupancy_yuan"] = str(fee)
        if "total_yuan" in bill:
            bill["total_yuan"] = str(money.yuan(Decimal(bill["total_yuan"]) + fee))
        order.occupancy_amount = fee
        order.total_amount += fee
        order.paid_amount += fee
        order.occupancy_state = OS.CHARGED
        fields += ["occupancy_amount", "total_amount", "paid_amount"]
        task_queue_on_commit("analytics.order_update", order.pk)
    else:
        order.occupancy_state = OS.FREE
    order.bill = bill
    order.save(update_fields=fields)
    return order


def _post(order: ChargingOrder, fee: Decimal) -> None:
    from settlement import services as ledger

    from ..funds import _memo

    if order.mode == PaymentMode.PARTNER:
        ledger.partner_order_charge(
            partner=order.partner, amount=fee, key=_key(order), ref=order.number,
            memo=_memo(gettext_noop("Occupancy fee %(ref)s"), order.number))
        return
    ledger.order_charge(member=order.member, amount=fee, key=_key(order),
                        memo=_memo(gettext_noop("Occupancy fee %(ref)s"), order.number),
                        ref=order.number)


def occupancy_charged(order: ChargingOrder) -> Decimal:
    """The occupancy fee charged as a follow-up posting on ``order`` (yuan; 0 if none)."""
    return order.occupancy_amount if order.occupancy_state == OS.CHARGED else ZERO


def occupancy_tick(*, now: datetime | None = None) -> dict:
    """The periodic pass (part of the scheduling tick): settled orders whose car left
    before settlement are charged (a lost hook), and orders whose car was never reported
    gone — another session started on the connector since, or ``REPORT_WAIT`` passed —
    are closed ``unreported`` (nothing charged). Returns counts."""
    now = now or timezone.now()
    charged = 0
    for pk in ChargingOrder.objects.filter(state=S.SETTLED, occupancy_state="",
                                           unplugged_at__isnull=False).values_list("pk", flat=True):
        with transaction.atomic():
            order = occupancy_settle(order=_lock(pk))
            charged += order.occupancy_state == OS.CHARGED
    unreported = 0
    stale = ChargingOrder.objects.filter(
        occupancy_state="", unplugged_at__isnull=True,
        state=S.SETTLED,
    ).filter(Q(stopped_at__lt=now - REPORT_WAIT)
             | Q(stopped_at__isnull=True, created_at__lt=now - REPORT_WAIT))
    for order in stale.only("pk", "connector_id", "created_at"):
        unreported += ChargingOrder.objects.filter(pk=order.pk, occupancy_state="").update(
            occupancy_state=OS.UNREPORTED)
    superseded = ChargingOrder.objects.filter(
        occupancy_state="", unplugged_at__isnull=True, state=S.SETTLED)
    for order in superseded.only("pk", "connector_id", "created_at"):
        if ChargingOrder.objects.filter(connector_id=order.connector_id,
                                        created_at__gt=order.created_at).exists():
            unreported += ChargingOrder.objects.filter(pk=order.pk, occupancy_state="").update(
                occupancy_state=OS.UNREPORTED)
    return {"occupancy_charged": charged, "occupancy_unreported": unreported}
