"""Starts requested at the pile by card or VIN (YKC 0x31 → 0x32, OCPP Authorize).

The credential names the member; the order is then created by the same path as an app
start (``services.order_create``), with the same rules. Refusals are answered in the
port's neutral terms; each protocol maps them to its own codes at its edge.
"""

from __future__ import annotations

from stations.models import Connector

from . import port, services
from .models import ACTIVE_STATES, ChargingOrder, MemberCredential, PaymentMode


def card_start_decide(request: port.CardStartRequest) -> port.CardStartDecision:
    """Find the member by bound card or VIN and start an order for them (``starting``,
    their funds held), or refuse with a :class:`port.StartRefusal`: credential_unknown,
    connector_unknown, or any refusal of :func:`services.order_create`."""
    vin_start = request.start_mode == "vin"
    kind = MemberCredential.Kind.VIN if vin_start else MemberCredential.Kind.CARD
    value = request.vin if vin_start else request.card_no
    credential = (
        MemberCredential.objects.select_related("member")
        .filter(kind=kind, value=value, enabled=True)
        .first()
    )
    if credential is None:
        return _refused(port.StartRefusal.CREDENTIAL_UNKNOWN)
    connector = Connector.objects.filter(
        pile__code=request.pile_code, number=request.connector_no
    ).first()
    if connector is None:
        return _refused(port.StartRefusal.CONNECTOR_UNKNOWN)
    member = credential.member
    try:
        order = services.order_create(
            member=member,
            connector=connector,
            mode=PaymentMode.CARD,
            at_pile=True,
            card_no=request.card_no,
            vin=request.vin,
        )
    except services.OrderRefused as refused:
        return _refused(port.StartRefusal(refused.code))
    return port.CardStartDecision(
        accepted=True,
        trade_no=order.trade_no,
        card_no=f"{member.pk:016d}",
        balance_yuan=order.hold_amount,
    )


def credential_check(query: port.CredentialQuery) -> port.CredentialDecision:
    """Whether card / tag ``query.card_no`` may start on the pile (OCPP Authorize): an
    enabled card bound to an active member with no order in progress. Creates nothing; the
    start itself (:func:`card_start_decide`) applies every rule again."""
    credential = (
        MemberCredential.objects.select_related("member")
        .filter(kind=MemberCredential.Kind.CARD, value=query.card_no, enabled=True)
        .first()
    )
    if credential is None:
        return port.CredentialDecision(False, port.StartRefusal.CREDENTIAL_UNKNOWN)
    if not credential.member.is_active:
        return port.CredentialDecision(False, port.StartRefusal.MEMBER_DISABLED)
    if ChargingOrder.objects.filter(member=credential.member, state__in=ACTIVE_STATES).exists():
        return port.CredentialDecision(False, port.StartRefusal.ORDER_IN_PROGRESS)
    return port.CredentialDecision(True)


def _refused(refusal: port.StartRefusal) -> port.CardStartDecision:
    return port.CardStartDecision(accepted=False, refusal=refusal)
