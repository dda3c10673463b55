"""Stops that arrive: sent again until the pile confirms, never to another session, late
ones billed only up to the request, abnormal only when the pile cannot be reached."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from charging import bus, port, services
from charging.models import MeterSample, OrderState, TransactionRecord
from charging.tests.money import balance, ledger_clean
from stations import live


class FakePile:
    """Stands in for the bus: answers each command with the next prepared result."""

    def __init__(self):
        self.sent: list = []
        self.answers: list[port.CommandResult] = []

    def send(self, schema, command, timeout=10.0):
        self.sent.append(command)
        return self.answers.pop(0) if self.answers else port.CommandResult(ok=True)


@pytest.fixture
def pile_bus(monkeypatch):
    fake = FakePile()
    monkeypatch.setattr(bus, "send", fake.send)
    return fake


@pytest.fixture
def clean_live(tenant):
    r = live.client()
    keys = list(r.scan_iter(f"{live.seen_key(connection.schema_name)}*")) + list(
        r.scan_iter(live.connector_key(connection.schema_name, "*", 0)[:-1] + "*")
    )
    if keys:
        r.delete(*keys)
    yield
    keys = list(r.scan_iter(f"{live.seen_key(connection.schema_name)}*")) + list(
        r.scan_iter(live.connector_key(connection.schema_name, "*", 0)[:-1] + "*")
    )
    if keys:
        r.delete(*keys)


def _charging(member, connector, started=None):
    order = services.order_start(member=member, connector=connector)
    started = started or timezone.now()
    services.order_start_result(
        port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=started)
    )
    order.refresh_from_db()
    return order


def _record(order, *, kwh, started, stopped, code=0x40):
    return port.TransactionRecord(
        pile_code=order.pile.code, connector_no=order.connector.number, trade_no=order.trade_no,
        started_at=started, stopped_at=stopped, meter_start_kwh=Decimal("100"),
        meter_stop_kwh=Decimal("100") + Decimal(kwh), energy_kwh=Decimal(kwh),
        pile_amount_yuan=Decimal(kwh) * Decimal("1.5"), stop_reason=port.StopReason.DRIVER,
        protocol_stop_code=code,
    )


def test_a_lost_stop_is_sent_again_until_the_pile_confirms(
    funded_member, connector, tariff, pile_bus, clean_live
):
    order = _charging(funded_member, connector)
    services.order_stop(order_id=order.pk, actor="member")
    pile_bus.answers = [port.CommandResult(ok=False, error="timeout")] * 2
    assert services.order_stop_send(order_id=order.pk, deadline=time.time() + 60) == "timeout"
    order.refresh_from_db()
    assert (order.stop_attempts, order.stop_result, order.stop_confirmed_at) == (1, "timeout", None)
    assert services.order_check_stop(order_id=order.pk) == "pending"  # not yet due
    later = timezone.now() + timedelta(seconds=services.STOP_RETRY_S)
    assert services.order_check_stop(order_id=order.pk, now=later) == "resent"
    assert services.order_stop_send(order_id=order.pk) == "timeout"
    assert services.order_stop_send(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert order.stop_attempts == 3 and order.stop_confirmed_at is not None
    assert services.order_check_stop(order_id=order.pk, now=later) == "done"
    # Every stop named the order's session.
    assert {c.trade_no for c in pile_bus.sent} == {order.trade_no}


def test_a_repeated_stop_request_sends_the_stop_again(
    funded_member, connector, tariff, django_capture_on_commit_callbacks
):
    order = _charging(funded_member, connector)
    with django_capture_on_commit_callbacks() as first:
        services.order_stop(order_id=order.pk, actor="member", actor_id=funded_member.pk)
    with django_capture_on_commit_callbacks() as again:
        stopped = services.order_stop(order_id=order.pk, actor="member", actor_id=funded_member.pk)
    assert stopped.state == OrderState.STOPPING
    assert len(first) == 1 and len(again) == 1  # the stop command is queued each time
    assert order.transitions.last().reason == "stop requested again: re-sent"


def test_a_stop_past_its_deadline_is_dropped(funded_member, connector, tariff, pile_bus, clean_live):
    order = _charging(funded_member, connector)
    services.order_stop(order_id=order.pk, actor="member")
    assert services.order_stop_send(order_id=order.pk, deadline=time.time() - 1) == "expired"
    assert pile_bus.sent == []


def test_a_late_stop_never_ends_the_next_drivers_session(
    funded_member, connector, tariff, pile_bus, clean_live, tenant
):
    from accounts.models import Member
    from charging.tests.money import wallet_credit

    first = _charging(funded_member, connector)
    services.order_stop(order_id=first.pk, actor="member")
    now = timezone.now()
    services.record_store(_record(first, kwh="2", started=now - timedelta(minutes=10), stopped=now))
    services.record_settle(record_id=TransactionRecord.objects.get(trade_no=first.trade_no).pk)
    other = Member.objects.create(openid="openid-next-driver", nickname="下一位")
    wallet_credit(other, Decimal("50.00"))
    second = _charging(other, connector)
    # The first order's stop task, redelivered after a worker died: nothing is sent.
    assert services.order_stop_send(order_id=first.pk) == "not_stopping"
    # A start that timed out is stopped in case the pile started late, but not once the
    # connector serves someone else.
    first.refresh_from_db()
    assert services.stop_unwanted(first) == "not_stopping"
    assert pile_bus.sent == []
    second.refresh_from_db()
    assert second.state == OrderState.CHARGING


def test_no_stop_when_the_pile_reports_another_session(
    funded_member, connector, tariff, pile_bus, clean_live
):
    order = _charging(funded_member, connector)
    services.order_stop(order_id=order.pk, actor="member")
    live.connector_update(connection.schema_name, order.pile.code, 1, trade_no="9" * 32,
                          status="charging")
    assert services.order_stop_send(order_id=order.pk) == "superseded"
    live.connector_update(connection.schema_name, order.pile.code, 1, trade_no=order.trade_no)
    assert services.order_stop_send(order_id=order.pk) == "sent"


def test_start_timeout_stop_goes_only_to_a_free_connector(
    funded_member, connector, tariff, pile_bus, clean_live
):
    from accounts.models import Member
    from charging.tests.money import wallet_credit

    order = services.order_start(member=funded_member, connector=connector)
    failed = services.order_check_start(order_id=order.pk, now=timezone.now() + timedelta(hours=1))
    assert failed.state == OrderState.FAILED
    assert services.stop_unwanted(failed) == ""
    assert services.order_stop_send(order_id=order.pk) == "sent"
    other = Member.objects.create(openid="openid-next-driver", nickname="下一位")
    wallet_credit(other, Decimal("50.00"))
    _charging(other, connector)
    assert services.order_stop_send(order_id=order.pk) == "superseded"
    assert len(pile_bus.sent) == 1


def test_the_pile_reporting_idle_or_not_charging_confirms_the_stop(
    funded_member, connector, tariff, pile_bus, clean_live
):
    order = _charging(funded_member, connector)
    services.order_stop(order_id=order.pk, actor="member")
    services.order_progress(
        port.Progress(order.pile.code, 1, "plugged", timezone.now(), trade_no="0" * 32)
    )
    order.refresh_from_db()
    assert order.stop_confirmed_at is not None and order.stop_result == "idle"


def test_a_refusal_other_than_not_charging_keeps_the_stop_going(
    funded_member, connector, tariff, pile_bus, clean_live
):
    order = _charging(funded_member, connector)
    services.order_stop(order_id=order.pk, actor="member")
    services.order_stop_result(port.StopResult(
        order.pile.code, 1, accepted=False, refusal=port.StopRefusal.OTHER, protocol_code=3))
    order.refresh_from_db()
    assert order.state == OrderState.STOPPING and order.stop_confirmed_at is None
    services.order_stop_result(port.StopResult(
        order.pile.code, 1, accepted=False, refusal=port.StopRefusal.NOT_CHARGING,
        protocol_code=2))
    order.refresh_from_db()
    assert order.stop_confirmed_at is not None and order.stop_result == "not_charging"


def test_abnormal_only_when_the_pile_is_unreachable(
    funded_member, connector, tariff, pile_bus, clean_live
):
    order = _charging(funded_member, connector)
    services.order_stop(order_id=order.pk, actor="member")
    pile_bus.answers = [port.CommandResult(ok=False, error="timeout")]
    services.order_stop_send(order_id=order.pk)
    past_deadline = timezone.now() + timedelta(seconds=301)
    # The pile still sends frames (heartbeats): keep sending the stop, no abnormal.
    live.pile_seen(connection.schema_name, order.pile.code, at=past_deadline)
    counts = services.orders_reconcile(now=past_deadline)
    order.refresh_from_db()
    assert order.state == OrderState.STOPPING
    assert counts["stops_resent"] == 1 and counts["abnormal"] == 0
    # Silent past the limit: abnormal, and the stop still goes out when it comes back.
    later = past_deadline + timedelta(seconds=services.UNREACHABLE_S + 1)
    counts = services.orders_reconcile(now=later)
    order.refresh_from_db()
    assert order.state == OrderState.ABNORMAL and counts["abnormal"] == 1
    counts = services.orders_reconcile(now=later + timedelta(minutes=5))
    assert counts["stops_resent"] == 1
    assert services.order_stop_send(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert order.stop_confirmed_at is not None
    assert services.orders_reconcile(now=later + timedelta(minutes=10))["stops_resent"] == 0


def test_a_stop_that_took_effect_late_is_billed_to_the_drivers_stop_time(
    funded_member, connector, tariff, pile_bus, clean_live
):
    started = timezone.now() - timedelta(hours=1)
    order = _charging(funded_member, connector, started=started)
    where = {"order": order, "pile_code": order.pile.code, "connector_no": 1}
    MeterSample.objects.create(**where, at=started + timedelta(minutes=20), energy_kwh=Decimal("8"))
    MeterSample.objects.create(**where, at=started + timedelta(minutes=40), energy_kwh=Decimal("16"))
    services.order_stop(order_id=order.pk, actor="member")
    requested = started + timedelta(minutes=30)
    type(order).objects.filter(pk=order.pk).update(stop_requested_at=requested)
    services.record_store(_record(order, kwh="24", started=started, stopped=started + timedelta(hours=1)))
    settled = services.record_settle(record_id=TransactionRecord.objects.get().pk)
    assert settled.state == OrderState.SETTLED
    # 12 kWh (halfway between the samples) × 1.5 = 18.00, not 24 kWh × 1.5 = 36.00
    assert settled.total_amount == Decimal("18.00")
    assert settled.energy_kwh == Decimal("24")  # what the pile delivered stays on record
    assert settled.abnormal and "12.0000 kWh after it not billed" in settled.review_reason
    assert balance(funded_member).available == Decimal("82.00")
    ledger_clean()


def test_a_prompt_stop_bills_the_whole_record(funded_member, connector, tariff, pile_bus, clean_live):
    started = timezone.now() - timedelta(minutes=30)
    order = _charging(funded_member, connector, started=started)
    services.order_stop(order_id=order.pk, actor="member")
    order.refresh_from_db()
    services.record_store(
        _record(order, kwh="10", started=started, stopped=order.stop_requested_at + timedelta(seconds=5))
    )
    settled = services.record_settle(record_id=TransactionRecord.objects.get().pk)
    assert settled.total_amount == Decimal("15.00") and not settled.review_reason
