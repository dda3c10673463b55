"""An order from start to settlement through the services and the port (no sockets)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charging import port, services
from charging.models import ChargingOrder, OrderState, TransactionRecord
from charging.state import IllegalTransition
from charging.tests.money import balance, ledger_clean


def _record(order, *, kwh="10.0000", at=None, amount="15.0000", code=0x40, by_period=None,
            reason=port.StopReason.DRIVER):
    at = at or timezone.now()
    return port.TransactionRecord(
        pile_code=order.pile.code,
        connector_no=order.connector.number,
        trade_no=order.trade_no,
        started_at=at - timedelta(minutes=20),
        stopped_at=at,
        meter_start_kwh=Decimal("1000.0000"),
        meter_stop_kwh=Decimal("1000.0000") + Decimal(kwh),
        energy_kwh=Decimal(kwh),
        pile_amount_yuan=Decimal(amount),
        stop_reason=reason,
        protocol_stop_code=code,
        energy_by_period=by_period or {},
        raw_hex="68...",
    )


def _start(member, connector):
    return services.order_start(member=member, connector=connector)


def test_start_holds_funds_and_locks_the_tariff(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    assert order.state == OrderState.STARTING
    assert order.hold_amount == Decimal("100.00")
    assert len(order.trade_no) == 32 and order.trade_no.startswith(connector.pile.code + "01")
    assert order.tariff_snapshot["prices"]
    assert balance(funded_member).available == Decimal("0.00")
    version = tariff.versions.get()
    assert version.locked_at is not None
    assert [t.to_state for t in order.transitions.all()] == ["starting"]


def test_full_journey_settles_once(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    services.order_start_result(
        port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=timezone.now())
    )
    services.order_progress(
        port.Progress(
            order.pile.code, 1, "charging", timezone.now(), trade_no=order.trade_no,
            energy_kwh=Decimal("5.0000"), power_kw=Decimal("60.0"), soc_percent=40,
        )
    )
    order.refresh_from_db()
    assert order.state == OrderState.CHARGING and order.progress["energy_kwh"] == "5.0000"
    services.order_stop(order_id=order.pk, actor="member")
    ack = services.record_store(_record(order))
    assert ack == port.RecordAck(stored=True, duplicate=False)
    record = TransactionRecord.objects.get(trade_no=order.trade_no)
    settled = services.record_settle(record_id=record.pk)
    assert settled.state == OrderState.SETTLED
    # 10 kWh × (1.0 + 0.5) = 15.00, pile agrees
    assert settled.total_amount == Decimal("15.00") and not settled.amount_mismatch
    assert settled.electricity_amount == Decimal("10.00") and settled.service_amount == Decimal("5.00")
    assert balance(funded_member).available == Decimal("85.00")
    # The pile retransmits, a worker retries: nothing moves twice.
    assert services.record_store(_record(order)).duplicate is True
    record.refresh_from_db()
    assert record.duplicates == 1
    services.record_settle(record_id=record.pk)
    assert balance(funded_member).available == Decimal("85.00")
    assert [t.to_state for t in settled.transitions.all()] == [
        "starting", "charging", "stopping", "finished", "settled",
    ]
    ledger_clean()


def test_pile_amount_mismatch_is_flagged(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    services.record_store(_record(order, amount="15.0300"))
    settled = services.record_settle(record_id=TransactionRecord.objects.get().pk)
    assert settled.amount_mismatch is True and settled.total_amount == Decimal("15.00")


def test_refused_start_fails_and_releases(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=False, protocol_code=5))
    order.refresh_from_db()
    assert order.state == OrderState.FAILED and order.pile_stop_code == 5
    assert balance(funded_member).available == Decimal("100.00")


def test_start_timeout_fails_and_releases(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    later = order.start_deadline + timedelta(seconds=1)
    assert services.order_check_start(order_id=order.pk, now=later).state == OrderState.FAILED
    assert balance(funded_member).available == Decimal("100.00")


def test_late_record_of_a_failed_start_is_still_billed(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    services.order_check_start(order_id=order.pk, now=order.start_deadline + timedelta(seconds=1))
    services.record_store(_record(order, kwh="2.0000", amount="3.0000"))
    settled = services.record_settle(record_id=TransactionRecord.objects.get().pk)
    assert settled.state == OrderState.SETTLED and settled.abnormal
    assert balance(funded_member).available == Decimal("97.00")


def test_balance_guard_stops_before_funds_run_out(member, connector, tariff):
    from charging.tests.money import wallet_credit

    wallet_credit(member, Decimal("10.00"))
    order = _start(member, connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=timezone.now() - timedelta(minutes=10)))
    # 6 kWh × 1.5 = 9.00 ≥ 10.00 − 1.00 margin → the platform stops it
    services.order_progress(
        port.Progress(order.pile.code, 1, "charging", timezone.now(), trade_no=order.trade_no, energy_kwh=Decimal("6.0"))
    )
    order.refresh_from_db()
    assert order.state == OrderState.STOPPING and order.stop_reason == "balance"


def test_illegal_transition_raises(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    with pytest.raises(IllegalTransition):
        services.order_transition(order, OrderState.SETTLED, actor="system")


def test_record_for_unknown_trade_creates_flagged_pile_order(connector, tariff):
    event = port.TransactionRecord(
        pile_code=connector.pile.code, connector_no=1, trade_no="9" * 32,
        started_at=timezone.now() - timedelta(minutes=30), stopped_at=timezone.now(),
        meter_start_kwh=Decimal("0"), meter_stop_kwh=Decimal("4"), energy_kwh=Decimal("4"),
        pile_amount_yuan=Decimal("6"), stop_reason=port.StopReason.AT_PILE,
        protocol_stop_code=0x45,
    )
    services.record_store(event)
    order = services.record_settle(record_id=TransactionRecord.objects.get().pk)
    assert order.pile_initiated and order.abnormal and order.member is None
    # Held for review with the pile's figures priced, charged to nobody.
    assert order.state == OrderState.REVIEW and order.total_amount == Decimal("6.00")
    assert "未发起过" in order.review_reason


def test_reconciler_marks_silent_stops_abnormal_and_late_record_settles(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=timezone.now()))
    services.order_stop(order_id=order.pk, actor="member")
    counts = services.orders_reconcile(now=timezone.now() + timedelta(hours=1))
    order.refresh_from_db()
    assert counts["abnormal"] == 1 and order.state == OrderState.ABNORMAL
    services.record_store(_record(order))
    settled = services.record_settle(record_id=TransactionRecord.objects.get().pk)
    assert settled.state == OrderState.SETTLED and balance(funded_member).available == Decimal("85.00")


def test_settle_abnormal_by_staff_needs_reason(funded_member, connector, tariff, django_user_model):
    order = _start(funded_member, connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=timezone.now() - timedelta(minutes=5)))
    services.order_progress(port.Progress(order.pile.code, 1, "charging", timezone.now(), trade_no=order.trade_no, energy_kwh=Decimal("2")))
    services.orders_reconcile(now=timezone.now() + timedelta(hours=1))
    staff = django_user_model.objects.create_user("ops", password="x")
    with pytest.raises(services.OrderRefused):
        services.order_settle_by_staff(order_id=order.pk, user=staff, reason=" ")
    settled = services.order_settle_by_staff(order_id=order.pk, user=staff, reason="pile lost power")
    assert settled.state == OrderState.SETTLED and settled.total_amount == Decimal("3.00")
    assert settled.transitions.last().reason == "pile lost power"


def test_orders_of_one_member_and_one_connector_are_exclusive(funded_member, connector, pile, tariff):
    _start(funded_member, connector)
    with pytest.raises(services.OrderRefused) as exc:
        _start(funded_member, pile.connectors.get(number=2))
    assert exc.value.code == "order_in_progress"
    assert ChargingOrder.objects.count() == 1


def test_settlement_dying_midway_is_retried_and_settles_once(funded_member, connector, tariff, monkeypatch):
    from settlement.models import Posting

    order = _start(funded_member, connector)
    services.record_store(_record(order))
    record = TransactionRecord.objects.get()
    from charging.services import settle

    real = settle.order_transition
    died = []

    def dying(order, to_state, **kwargs):
        if to_state == OrderState.SETTLED and not died:
            died.append(True)
            raise RuntimeError("worker killed")  # after the ledger posting was written
        return real(order, to_state, **kwargs)

    monkeypatch.setattr(settle, "order_transition", dying)
    with pytest.raises(RuntimeError):
        services.record_settle(record_id=record.pk)
    order.refresh_from_db()
    assert order.state == OrderState.STARTING  # the whole settlement rolled back
    assert not Posting.objects.filter(key=f"order:{order.number}:charge").exists()
    settled = services.record_settle(record_id=record.pk)  # Celery's retry
    assert settled.state == OrderState.SETTLED
    assert Posting.objects.filter(key=f"order:{order.number}:charge").count() == 1
    assert balance(funded_member).available == Decimal("85.00")
    ledger_clean()


def test_readings_without_a_session_leave_the_order_alone(funded_member, connector, tariff):
    order = _start(funded_member, connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=timezone.now()))
    services.order_progress(
        port.Progress(order.pile.code, 1, "charging", timezone.now(), trade_no=order.trade_no, energy_kwh=Decimal("3"))
    )
    # After the stop the pile reports the connector idle with a zero trade number.
    assert services.order_progress(
        port.Progress(order.pile.code, 1, "plugged", timezone.now(), trade_no="0" * 32, energy_kwh=Decimal("0"))
    ) is None
    order.refresh_from_db()
    assert order.progress["energy_kwh"] == "3.0000"
