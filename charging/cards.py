"""Starts requested at the pile by card or VIN (YKC 0x31 → 0x32)."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from evplatform.queue import task_queue_on_commit
from stations.models import Connector

from . import funds, port
from .models import (
    ACTIVE_STATES,
    ChargingOrder,
    ChargingPolicy,
    MemberCredential,
    OrderState,
    OrderTransition,
    PaymentMode,
)

# YKC 0x32 失败原因 (reference §4.3)
ACCOUNT_UNKNOWN = 0x01
ACCOUNT_FROZEN = 0x02
INSUFFICIENT_BALANCE = 0x03
UNSETTLED_BILL = 0x04
PILE_DISABLED = 0x05
VIN_UNKNOWN = 0x09


def card_start_decide(request: port.CardStartRequest) -> port.CardStartDecision:
    """Find the member by bound card or VIN; authorise with their balance (and create the
    order, ``starting``) or refuse with the protocol's reason."""
    from billing.tariffs import selectors as tariff_selectors
    from billing.tariffs import services as tariff_services

    from .services import _new_order_number, _new_trade_no, order_transition

    kind, value = (
        (MemberCredential.Kind.VIN, request.vin) if request.start_mode == "vin" else (MemberCredential.Kind.CARD, request.card_no)
    )
    credential = (
        MemberCredential.objects.select_related("member").filter(kind=kind, value=value, enabled=True).first()
    )
    if credential is None:
        return port.CardStartDecision(
            accepted=False, reason_code=VIN_UNKNOWN if kind == "vin" else ACCOUNT_UNKNOWN
        )
    member = credential.member
    if not member.is_active:
        return port.CardStartDecision(accepted=False, reason_code=ACCOUNT_FROZEN)
    connector = (
        Connector.objects.select_related("pile__station")
        .filter(pile__code=request.pile_code, number=request.connector_no)
        .first()
    )
    if connector is None or not connector.pile.enabled:
        return port.CardStartDecision(accepted=False, reason_code=PILE_DISABLED)
    now = timezone.now()
    locked = tariff_selectors.snapshot_for_connector(connector, now)
    if locked is None:
        return port.CardStartDecision(accepted=False, reason_code=PILE_DISABLED)
    with transaction.atomic():
        if ChargingOrder.objects.filter(member=member, state__in=ACTIVE_STATES).exists():
            return port.CardStartDecision(accepted=False, reason_code=UNSETTLED_BILL)
        order = ChargingOrder(
            number=_new_order_number(now),
            member=member,
            connector=connector,
            pile=connector.pile,
            station=connector.pile.station,
            trade_no=_new_trade_no(connector.pile, connector.number, now),
            mode=PaymentMode.CARD,
            tariff_version_id=locked[0].pk,
            tariff_snapshot=locked[1].to_dict(),
            card_no=request.card_no,
            vin=request.vin,
            pile_initiated=True,
            start_deadline=now + timedelta(seconds=ChargingPolicy.current().start_timeout_s),
        )
        try:
            with transaction.atomic():
                order.save()
        except IntegrityError:
            return port.CardStartDecision(accepted=False, reason_code=UNSETTLED_BILL)
        held = funds.hold_for_order(order)
        if held is None:
            transaction.set_rollback(True)
            return port.CardStartDecision(accepted=False, reason_code=INSUFFICIENT_BALANCE)
        order.hold_amount = held
        order_transition(
            order,
            OrderState.STARTING,
            actor=OrderTransition.Actor.PILE,
            reason=f"{kind} start at the pile",
            fields=("hold_amount",),
        )
        tariff_services.tariff_version_lock(version=locked[0])
        task_queue_on_commit("charging.order_check_start", order.pk, countdown=ChargingPolicy.current().start_timeout_s + 1)
    return port.CardStartDecision(
        accepted=True,
        trade_no=order.trade_no,
        card_no=f"{member.pk:016d}",
        balance_yuan=held,
    )
