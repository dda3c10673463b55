"""A retransmitted record with other content: the first is kept and bills, the copy is
stored, the order flagged for review; the pile is acknowledged either way."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from charging import port, services
from charging.models import TransactionRecord, TransactionRecordConflict
from charging.tests.money import balance


def _record(order, kwh, at):
    return port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=at - timedelta(minutes=20), stopped_at=at,
        meter_start_kwh=Decimal("100"), meter_stop_kwh=Decimal("100") + Decimal(kwh),
        energy_kwh=Decimal(kwh), pile_amount_yuan=Decimal(kwh) * Decimal("1.5"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40, raw_hex=f"68{kwh}",
    )


def test_a_conflicting_repeat_is_kept_apart_and_flags_the_order(funded_member, connector, tariff,
                                                                django_user_model):
    order = services.order_start(member=funded_member, connector=connector)
    at = timezone.now()
    assert services.record_store(_record(order, "10", at)) == port.RecordAck(True, False)
    # The same repeat is a plain duplicate: nothing to review.
    assert services.record_store(_record(order, "10", at)) == port.RecordAck(True, True)
    assert not TransactionRecordConflict.objects.exists()
    # The pile sends the trade again with other figures: acknowledged, kept apart.
    assert services.record_store(_record(order, "12", at)) == port.RecordAck(True, True)
    record = TransactionRecord.objects.get()
    conflict = record.conflicts.get()
    assert conflict.data["energy_kwh"] == "12" and conflict.raw_hex == "6812"
    assert record.energy_kwh == Decimal("10") and record.duplicates == 2
    order.refresh_from_db()
    assert order.abnormal and "energy_kwh" in order.review_reason
    assert "meter_stop_kwh" in order.review_reason
    settled = services.record_settle(record_id=record.pk)
    assert settled.total_amount == Decimal("15.00")  # the first record bills
    assert settled.abnormal and settled.review_reason.startswith("conflicting copy")
    # Which copy is right is for staff to say: held, nothing charged until approved.
    assert settled.state == "review" and balance(funded_member).available == Decimal("0.00")
    user = django_user_model.objects.create_user("reviewer")
    services.order_review_approve(order_id=order.pk, user=user, reason="first copy is right")
    assert balance(funded_member).available == Decimal("85.00")
