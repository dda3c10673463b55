"""The occupancy fee after charging (占位费): from the pile's stop to the unplug it reports,
charged once through the ledger, shown on the bill; the next driver in the queue is
offered the connector when the car leaves."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.tariffs import pricing
from charging import handlers, port, services
from charging.models import ChargingOrder, OccupancyState, OrderState, TransactionRecord
from charging.tests.money import balance, ledger_clean
from charging.tests.test_order_flow import _record

D = Decimal


@pytest.fixture
def operator_admin(tenant):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="admin")


def _driver(openid: str, cash: str):
    from accounts.models import Member
    from charging.tests.money import wallet_credit

    member = Member.objects.create(openid=openid, nickname=openid)
    wallet_credit(member, D(cash))
    return member


@pytest.fixture
def occupancy_tariff(station):
    """1.0 + 0.5 yuan/kWh; occupancy 0.50 yuan/min after 15 free minutes, at most 20.00."""
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )
    from charging.tests.conftest import LONG_AGO as since

    tariff = tariff_create(name="占位", draft=pricing.flat_tariff(
        D("1.0"), D("0.5"), occupancy=pricing.OccupancyFee(D("0.50"), 15, D("20.00"))))
    tariff_version_publish(tariff=tariff, effective_from=since)
    station_tariff_assign(stations=[station], tariff=tariff)
    return tariff


def _charged(member, connector, *, stopped_at, settle=True):
    """An order that charged 10 kWh (15.00 yuan) and stopped at ``stopped_at``."""
    order = services.order_start(member=member, connector=connector)
    services.order_start_result(port.StartResult(order.pile.code, connector.number, order.trade_no,
                                                 accepted=True, at=stopped_at - timedelta(minutes=20)))
    services.record_store(_record(order, at=stopped_at))
    if settle:
        services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    order.refresh_from_db()
    return order


def _unplug(order, at):
    handlers.handle(port.ConnectorStatusChanged(order.pile.code, order.connector.number,
                                                port.ConnectorStatus.IDLE, at))
    order.refresh_from_db()
    return order


def _postings(order):
    from settlement.models import Posting

    return sorted(Posting.objects.filter(key__startswith=f"order:{order.number}:")
                  .values_list("key", flat=True))


def test_unplug_after_settlement_charges_the_fee_once(funded_member, connector, occupancy_tariff):
    stop = timezone.now() - timedelta(minutes=40)
    order = _charged(funded_member, connector, stopped_at=stop)
    assert order.state == OrderState.SETTLED and order.total_amount == D("15.00")
    assert order.occupancy_state == "" and balance(funded_member).available == D("85.00")
    # 35 min 59 s plugged after the stop: 35 whole minutes, 20 after the grace → 10.00
    _unplug(order, stop + timedelta(minutes=35, seconds=59))
    assert order.occupancy_state == OccupancyState.CHARGED
    assert order.occupancy_amount == D("10.00")
    assert order.total_amount == D("25.00") and order.paid_amount == D("25.00")
    assert order.bill["occupancy_yuan"] == "10.00" and order.bill["total_yuan"] == "25.00"
    assert order.bill["occupancy"]["minutes"] == 35
    assert order.bill["occupancy"]["basis"] == "unplugged"
    assert balance(funded_member).available == D("75.00")
    # The status repeats, the tick runs: nothing moves twice.
    _unplug(order, stop + timedelta(minutes=50))
    services.scheduling_tick(now=timezone.now())
    order.refresh_from_db()
    assert order.occupancy_amount == D("10.00") and balance(funded_member).available == D("75.00")
    assert _postings(order) == [f"order:{order.number}:charge", f"order:{order.number}:occupancy"]
    ledger_clean()


def test_fee_is_capped(funded_member, connector, occupancy_tariff):
    stop = timezone.now() - timedelta(hours=3)
    order = _unplug(_charged(funded_member, connector, stopped_at=stop), stop + timedelta(hours=2))
    # 120 − 15 = 105 min × 0.50 = 52.50, capped at 20.00
    assert order.occupancy_amount == D("20.00") and order.total_amount == D("35.00")
    assert balance(funded_member).available == D("65.00")


def test_leaving_within_the_grace_minutes_is_free(funded_member, connector, occupancy_tariff):
    stop = timezone.now() - timedelta(minutes=20)
    order = _unplug(_charged(funded_member, connector, stopped_at=stop), stop + timedelta(minutes=15))
    assert order.occupancy_state == OccupancyState.FREE
    assert order.occupancy_amount == D("0.00") and order.total_amount == D("15.00")
    assert order.bill["occupancy"]["yuan"] == "0.00"
    assert _postings(order) == [f"order:{order.number}:charge"]


def test_car_gone_before_settlement_is_billed_with_the_order(funded_member, connector,
                                                               occupancy_tariff):
    stop = timezone.now() - timedelta(minutes=40)
    order = _charged(funded_member, connector, stopped_at=stop, settle=False)
    _unplug(order, stop + timedelta(minutes=25))
    assert order.unplugged_at is not None and order.occupancy_state == ""
    services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    order.refresh_from_db()
    # 25 − 15 = 10 min × 0.50 = 5.00 on the same bill
    assert order.state == OrderState.SETTLED and order.occupancy_amount == D("5.00")
    assert order.total_amount == D("20.00") and balance(funded_member).available == D("80.00")
    ledger_clean()


def test_unplug_while_charging_is_no_occupancy(funded_member, connector, occupancy_tariff):
    """The driver pulls the plug to stop: the car left with the stop, nothing to pay."""
    stop = timezone.now() - timedelta(minutes=5)
    order = services.order_start(member=funded_member, connector=connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True,
                                                 at=stop - timedelta(minutes=20)))
    _unplug(order, stop - timedelta(seconds=2))
    services.record_store(_record(order, at=stop, reason=port.StopReason.UNPLUGGED))
    services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    order.refresh_from_db()
    assert order.occupancy_state == OccupancyState.FREE and order.bill["occupancy"]["minutes"] == 0
    assert order.total_amount == D("15.00")


def test_pile_offline_counts_to_the_moment_it_went_offline(funded_member, connector,
                                                            occupancy_tariff):
    stop = timezone.now() - timedelta(hours=1)
    order = _charged(funded_member, connector, stopped_at=stop)
    handlers.handle(port.PileOffline(order.pile.code, stop + timedelta(minutes=21)))
    order.refresh_from_db()
    assert order.unplug_basis == "pile_offline" and order.bill["occupancy"]["basis"] == "pile_offline"
    assert order.occupancy_amount == D("3.00")  # 21 − 15 = 6 min × 0.50
    # Back online, the pile reports the connector idle: already closed, nothing more.
    _unplug(order, stop + timedelta(minutes=50))
    assert order.occupancy_amount == D("3.00") and balance(funded_member).available == D("82.00")


def test_pile_offline_while_charging_leaves_the_session_alone(funded_member, connector,
                                                              occupancy_tariff):
    order = services.order_start(member=funded_member, connector=connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True,
                                                 at=timezone.now()))
    handlers.handle(port.PileOffline(order.pile.code, timezone.now()))
    order.refresh_from_db()
    assert order.unplugged_at is None and order.occupancy_state == ""


def test_never_reported_is_closed_uncharged(funded_member, connector, occupancy_tariff):
    stop = timezone.now() - timedelta(hours=1)
    order = _charged(funded_member, connector, stopped_at=stop)
    services.scheduling_tick(now=timezone.now())
    order.refresh_from_db()
    assert order.occupancy_state == ""  # still waiting for the car to leave
    result = services.scheduling_tick(now=stop + timedelta(hours=25))
    order.refresh_from_db()
    assert result["occupancy_unreported"] == 1
    assert order.occupancy_state == OccupancyState.UNREPORTED and order.total_amount == D("15.00")
    # A late report charges nothing.
    _unplug(order, timezone.now())
    assert order.occupancy_amount == D("0.00") and balance(funded_member).available == D("85.00")


def test_a_new_session_on_the_connector_closes_the_old_one_unreported(
        funded_member, connector, occupancy_tariff):
    stop = timezone.now() - timedelta(hours=2)
    first = _charged(funded_member, connector, stopped_at=stop)
    other = _driver("openid-second", "50.00")
    second = _charged(other, connector, stopped_at=timezone.now() - timedelta(minutes=30))
    services.scheduling_tick(now=timezone.now())
    first.refresh_from_db()
    assert first.occupancy_state == OccupancyState.UNREPORTED
    # The unplug belongs to the latest session only.
    second = _unplug(second, timezone.now())
    first.refresh_from_db()
    assert first.unplugged_at is None and second.occupancy_amount == D("7.50")  # 30 − 15 min


def test_refund_gives_back_the_charge_then_the_fee(funded_member, connector, occupancy_tariff,
                                                   operator_admin):
    stop = timezone.now() - timedelta(minutes=40)
    order = _unplug(_charged(funded_member, connector, stopped_at=stop), stop + timedelta(minutes=35))
    assert order.paid_amount == D("25.00")
    services.order_refund_partial(order_id=order.pk, amount=D("12.00"), user=operator_admin,
                                  reason="故障补偿")
    assert balance(funded_member).available == D("87.00")
    # 3.00 left on the charge, then 10.00 of the fee: 13.00 more in one refund
    services.order_refund_partial(order_id=order.pk, amount=D("13.00"), user=operator_admin,
                                  reason="全额退款")
    order.refresh_from_db()
    assert order.refunded_amount == D("25.00") and balance(funded_member).available == D("100.00")
    from charging.services.common import OrderRefused

    with pytest.raises(OrderRefused) as refused:
        services.order_refund_partial(order_id=order.pk, amount=D("0.01"), user=operator_admin,
                                      reason="再退")
    assert refused.value.code == "refund_exceeds"
    ledger_clean()


def test_rejected_review_waives_the_fee(funded_member, connector, occupancy_tariff, operator_admin):
    stop = timezone.now() - timedelta(minutes=40)
    order = _charged(funded_member, connector, stopped_at=stop, settle=False)
    ChargingOrder.objects.filter(pk=order.pk).update(state=OrderState.REVIEW)
    _unplug(order, stop + timedelta(minutes=35))
    services.order_review_reject(order_id=order.pk, user=operator_admin, reason="读数异常")
    order.refresh_from_db()
    assert order.occupancy_state == OccupancyState.WAIVED and order.total_amount == D("0.00")
    assert balance(funded_member).available == D("100.00")


def test_the_next_driver_is_offered_the_connector_when_the_car_leaves(
        funded_member, connector, occupancy_tariff, django_capture_on_commit_callbacks, monkeypatch):
    from charging.models import QueueEntry
    from evplatform.queue import app
    from stations.models import Connector

    queued = []
    monkeypatch.setattr(app, "send_task", lambda name, args=(), **kw: queued.append((name, args)))
    stop = timezone.now() - timedelta(minutes=30)
    order = _charged(funded_member, connector, stopped_at=stop)
    Connector.objects.filter(pile=connector.pile).update(status=Connector.Status.FINISHING)
    waiting = _driver("openid-waiting", "50.00")
    entry = QueueEntry.objects.create(station=connector.pile.station, member=waiting,
                                      joined_at=timezone.now())
    assert services.queue_offer(station_id=connector.pile.station_id) == []  # car still there
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _unplug(order, timezone.now())
    assert order.occupancy_amount == D("7.50")
    station_id = connector.pile.station_id
    assert ("charging.station_schedule", (station_id, "connector idle")) in queued
    with django_capture_on_commit_callbacks(execute=True):
        services.station_schedule(station_id=station_id, reason="connector idle")  # the worker
    entry.refresh_from_db()
    assert entry.state == QueueEntry.State.OFFERED and entry.reservation.connector == connector
    assert ("charging.queue_offer_notify", (entry.pk,)) in queued


def test_order_api_shows_the_occupancy(funded_member, connector, occupancy_tariff, member_api):
    stop = timezone.now() - timedelta(minutes=40)
    order = _unplug(_charged(funded_member, connector, stopped_at=stop), stop + timedelta(minutes=35))
    body = member_api.get(f"/api/app/v1/orders/{order.pk}").json()
    assert body["occupancy_amount"] == "10.00" and body["total_amount"] == "25.00"
    assert body["occupancy"]["state"] == "charged" and body["occupancy"]["minutes"] == 35
    assert body["occupancy"]["grace_minutes"] == 15 and body["occupancy"]["cap"] == "20.00"
