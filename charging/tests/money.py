"""Money helpers for charging tests: put cash in a wallet, read it, check the ledger."""

from datetime import timedelta
from decimal import Decimal

from settlement import selectors, services


def wallet_credit(member, amount: Decimal) -> None:
    """Cash in ``member``'s wallet as a paid top-up would leave it (WeChat clearing → cash)."""
    import uuid

    services.wallet_top_up(member=member, amount=amount, key=f"test-top-up:{uuid.uuid4().hex}")


def balance(member):
    return selectors.wallet_balance(member)


def ledger_clean() -> None:
    report = selectors.ledger_check()
    assert not report.drift and not report.unbalanced, report


def prepaid_order_settled(fake, member, connector, *, deliver, prepay: str = "50"):
    """A pay-per-order order paid at the fake WeChat Pay (its notification handed to
    ``deliver``, which returns the response) and settled: 10 kWh, electricity 10.00 +
    service 5.00. Returns (order, its ProfitShare or None)."""
    from django.utils import timezone

    from billing.payments.models import Payment, ProfitShare
    from charging import port
    from charging import services as charging
    from charging.models import PaymentMode, TransactionRecord

    number, _params = charging.order_prepay_create(member=member, connector=connector,
                                                   amount=Decimal(prepay))
    payment = Payment.objects.get(order_ref=number)
    assert deliver(fake.paid_notification(payment.out_trade_no)).status_code == 204
    order = charging.order_start(member=member, connector=connector, mode=PaymentMode.PREPAY,
                                 prepay_ref=number)
    now = timezone.now()
    charging.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=Decimal("0"),
        meter_stop_kwh=Decimal("10"), energy_kwh=Decimal("10"), pile_amount_yuan=Decimal("15"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    order = charging.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    return order, ProfitShare.objects.filter(order_ref=order.number).first()


def profit_share_due(share) -> None:
    """Make ``share`` sendable now (WeChat takes a split no sooner than a minute after payment)."""
    from django.utils import timezone

    from billing.payments.models import ProfitShare

    ProfitShare.objects.filter(pk=share.pk).update(not_before=timezone.now() - timedelta(seconds=1))
