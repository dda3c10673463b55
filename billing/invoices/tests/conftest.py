"""Fixtures for invoicing: charging's station, pile, tariff and funded member; the fake 诺诺
platform on a real port; the operator's invoicing configured against it; settled orders."""

from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal

import pytest

from charging.tests.conftest import connector, funded_member, pile, station, tariff  # noqa: F401

APP_KEY, APP_SECRET = "demoappkey0001", "demo-app-secret-0001"


def _seller_tax() -> str:
    from billing.invoices.uscc import uscc_check_char

    first17 = "91440101MA5CYF8K2"
    return first17 + uscc_check_char(first17)


def _port() -> int:
    """A free port in this worktree's range (18900-18999)."""
    for port in range(18960, 19000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18960-18999")


@pytest.fixture
def fapiao_server():
    from fakes import fapiao

    server = fapiao.start_in_thread(port=_port(), issue_seconds=0.1)
    server.register_app(APP_KEY, APP_SECRET, _seller_tax())
    yield server
    server.shutdown()


@pytest.fixture
def invoicing(tenant, fapiao_server):
    """The operator's invoicing settings, enabled, auto-issue, against the fake."""
    from billing.invoices.services import invoice_settings

    row = invoice_settings()
    row.enabled, row.auto_issue = True, True
    row.seller_name, row.seller_tax_number = "测试充电运营有限公司", _seller_tax()
    row.clerk = "张三"
    row.electricity_goods_code, row.service_goods_code = "1100101020000000000", "3040502020200000000"
    row.api_url = f"{fapiao_server.url}/open/v1/services"
    row.token_url = f"{fapiao_server.url}/accessToken"
    row.app_key, row.app_secret = APP_KEY, APP_SECRET
    row.save()
    return row


@pytest.fixture
def settle(funded_member, connector, tariff):  # noqa: F811
    """settle(kwh) → a settled wallet order of ``funded_member`` (1.0 + 0.5 yuan/kWh)."""
    from django.utils import timezone

    from charging import port, services
    from charging.models import ChargingOrder, TransactionRecord

    def make(kwh: str = "10") -> ChargingOrder:
        order = services.order_start(member=funded_member, connector=connector)
        now = timezone.now()
        services.record_store(port.TransactionRecord(
            pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
            started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=Decimal("0"),
            meter_stop_kwh=Decimal(kwh), energy_kwh=Decimal(kwh),
            pile_amount_yuan=Decimal(kwh) * Decimal("1.5"),
            stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
        ))
        return services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)

    return make


def wait_issued(server, number: str, status: str = "2", timeout: float = 5.0) -> None:
    from protocols.tests.helpers import wait_for

    wait_for(lambda: any(r["orderNo"] == number and r["status"] == status
                         for r in server.invoices.values()), timeout=timeout)
