"""Card / VIN starts at the pile (``port.CardStartRequest`` → ``port.CardStartDecision``)
go through the same order creation as an app start: the same rules, each refusal in the
port's neutral terms, and a refused start leaves nothing behind."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Member
from charging import cards, port, services
from charging.models import ChargingOrder, MemberCredential, OrderState, Reservation
from charging.tests.money import balance, wallet_credit
from stations.models import Connector, Station

CARD = "00000000D14B0A54"
VIN = "LGAG4PY33S6013235"
R = port.StartRefusal


@pytest.fixture
def card_member(funded_member):
    MemberCredential.objects.create(member=funded_member, kind="card", value=CARD)
    MemberCredential.objects.create(member=funded_member, kind="vin", value=VIN)
    return funded_member


def _swipe(connector, *, card=CARD, vin=""):
    return cards.card_start_decide(port.CardStartRequest(
        pile_code=connector.pile.code, connector_no=connector.number,
        start_mode="vin" if vin else "card", card_no="" if vin else card, vin=vin))


def _refused_and_nothing_left(decision, refusal, member):
    assert decision == port.CardStartDecision(accepted=False, refusal=refusal)
    assert not ChargingOrder.objects.exists()
    if member is not None:
        assert balance(member).available == Decimal("100.00")


def test_card_start_creates_the_order_like_an_app_start(card_member, connector, tariff):
    decision = _swipe(connector)

    order = ChargingOrder.objects.get()
    assert decision == port.CardStartDecision(accepted=True, trade_no=order.trade_no,
                                              card_no=f"{card_member.pk:016d}",
                                              balance_yuan=Decimal("100.00"))
    assert (order.state, order.mode, order.pile_initiated, order.card_no) == (
        OrderState.STARTING, "card", True, CARD)
    assert order.tariff_snapshot["prices"] and order.hold_amount == Decimal("100.00")
    assert balance(card_member).available == Decimal("0.00")
    transition = order.transitions.get()
    assert (transition.actor, transition.reason) == ("pile", "card start at the pile")


def test_vin_start(card_member, connector, tariff):
    assert _swipe(connector, vin=VIN).accepted
    assert ChargingOrder.objects.get().vin == VIN


def test_unknown_or_disabled_credential_is_refused(card_member, connector, tariff):
    _refused_and_nothing_left(_swipe(connector, card="0000000000000001"),
                              R.CREDENTIAL_UNKNOWN, card_member)
    _refused_and_nothing_left(_swipe(connector, vin="LGAG4PY33S0000000"),
                              R.CREDENTIAL_UNKNOWN, card_member)
    MemberCredential.objects.filter(kind="card").update(enabled=False)
    _refused_and_nothing_left(_swipe(connector), R.CREDENTIAL_UNKNOWN, card_member)


def test_unknown_connector_is_refused(card_member, connector, tariff):
    decision = cards.card_start_decide(port.CardStartRequest(
        pile_code=connector.pile.code, connector_no=9, start_mode="card", card_no=CARD))
    _refused_and_nothing_left(decision, R.CONNECTOR_UNKNOWN, card_member)


def test_refused_on_a_connector_reserved_for_another_member(card_member, connector, tariff):
    other = Member.objects.create(openid="other-driver")
    wallet_credit(other, Decimal("10"))
    services.reservation_create(member=other, connector=connector)

    _refused_and_nothing_left(_swipe(connector), R.CONNECTOR_RESERVED, card_member)


def test_own_reservation_is_used_by_the_card_start(card_member, connector, tariff):
    reservation = services.reservation_create(member=card_member, connector=connector)
    assert _swipe(connector).accepted
    reservation.refresh_from_db()
    assert reservation.state == Reservation.State.USED
    assert reservation.order == ChargingOrder.objects.get()


def test_refused_on_a_faulted_connector(card_member, connector, tariff):
    Connector.objects.filter(pk=connector.pk).update(status=Connector.Status.FAULT)
    _refused_and_nothing_left(_swipe(connector), R.CONNECTOR_FAULT, card_member)


def test_refused_at_a_closed_station(card_member, connector, tariff):
    Station.objects.filter(pk=connector.pile.station_id).update(status=Station.Status.CLOSED)
    _refused_and_nothing_left(_swipe(connector), R.STATION_CLOSED, card_member)


def test_refused_on_a_disabled_pile(card_member, connector, tariff):
    connector.pile.__class__.objects.filter(pk=connector.pile_id).update(enabled=False)
    _refused_and_nothing_left(_swipe(connector), R.PILE_DISABLED, card_member)


def test_refused_when_not_plugged_or_busy(card_member, connector, tariff):
    Connector.objects.filter(pk=connector.pk).update(status=Connector.Status.IDLE)
    _refused_and_nothing_left(_swipe(connector), R.CONNECTOR_NOT_PLUGGED, card_member)
    Connector.objects.filter(pk=connector.pk).update(status=Connector.Status.CHARGING)
    _refused_and_nothing_left(_swipe(connector), R.CONNECTOR_BUSY, card_member)


def test_refused_without_a_tariff(card_member, connector):
    _refused_and_nothing_left(_swipe(connector), R.TARIFF_MISSING, card_member)


def test_refused_for_a_disabled_member(card_member, connector, tariff):
    Member.objects.filter(pk=card_member.pk).update(status=Member.Status.DISABLED)
    _refused_and_nothing_left(_swipe(connector), R.MEMBER_DISABLED, card_member)


def test_refused_with_an_order_in_progress(card_member, connector, tariff):
    first = services.order_start(member=card_member, connector=connector)
    other_connector = connector.pile.connectors.get(number=2)

    decision = _swipe(other_connector)

    assert decision == port.CardStartDecision(accepted=False, refusal=R.ORDER_IN_PROGRESS)
    assert list(ChargingOrder.objects.all()) == [first]


def test_refused_with_too_little_money(member, connector, tariff):
    MemberCredential.objects.create(member=member, kind="card", value=CARD)
    _refused_and_nothing_left(_swipe(connector), R.INSUFFICIENT_BALANCE, None)
    assert balance(member).available == Decimal("0.00")


def test_credential_check_creates_nothing(card_member, connector, tariff):
    """OCPP Authorize: the card is checked (bound, enabled, member active, no order in
    progress) and no order is created."""
    card = MemberCredential.objects.filter(member=card_member, kind="card").first().value
    query = port.CredentialQuery(pile_code=connector.pile.code, card_no=card)
    assert cards.credential_check(query) == port.CredentialDecision(True)
    assert not ChargingOrder.objects.exists()
    assert cards.credential_check(port.CredentialQuery(connector.pile.code, "NOPE")) == \
        port.CredentialDecision(False, port.StartRefusal.CREDENTIAL_UNKNOWN)
    Member.objects.filter(pk=card_member.pk).update(status=Member.Status.DISABLED)
    assert cards.credential_check(query).refusal == port.StartRefusal.MEMBER_DISABLED
