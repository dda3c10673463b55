from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from charging import port, services
from charging.models import TransactionRecord


def settled_order(member, connector, kwh="10", order_hook=None):
    """Start, record and settle an order of ``kwh`` (flat tariff: 1.0 + 0.5 yuan/kWh)."""
    order = services.order_start(member=member, connector=connector)
    if order_hook:
        order_hook(order)
    now = timezone.now()
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=connector.number, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=Decimal("0"),
        meter_stop_kwh=Decimal(kwh), energy_kwh=Decimal(kwh), pile_amount_yuan=Decimal(kwh) * Decimal("1.5"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    return services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
