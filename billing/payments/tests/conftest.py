"""Fixtures: the fake WeChat Pay server (real HTTP, real crypto), the Django app served
over real HTTP for notifications, tenant-a's merchant configured for the fake."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

# The fixtures themselves (fake, pay_fake, live_app) are registered in the root conftest.
from fakes.pytest_wechatpay import TENANT_A_MCHID, PayFake  # noqa: F401


def notify(note: dict, kind: str = "payment", slug: str = "tenant-a"):
    """Post a notification built by the fake into the app (test client, same transaction)."""
    return Client().post(
        f"/api/pay/notify/{slug}/{kind}",
        data=note["body"].encode(),
        content_type="application/json",
        headers={k: v for k, v in note["headers"].items() if k.lower() != "content-type"},
    )


@pytest.fixture
def clean_fake(fake):
    """The session's fake without other tests' money movements (rolled back on our side):
    for reconciliation tests, whose bills list everything the fake holds."""
    with fake.server.lock:
        fake.server.orders.clear()
        fake.server.refunds.clear()
        fake.server.transfers.clear()
        fake.server.ps_orders.clear()
        fake.server.ps_returns.clear()
    return fake


def operator_today():
    """Today in the operator's zone (the day bills are drawn up for)."""
    from settlement.statements import operator_zone

    return timezone.now().astimezone(operator_zone()).date()


def top_up_paid(fake, member, amount: str, *, notified: bool = True):
    """A wallet top-up of ``amount`` yuan paid at the fake; its notification delivered
    (unless ``notified`` is False). Returns the Payment as stored."""
    from billing.payments import services
    from billing.payments.models import Payment

    started = services.top_up_create(member=member, amount=Decimal(amount))
    note = fake.paid_notification(started.payment.out_trade_no)
    if notified:
        assert notify(note).status_code == 204
    return Payment.objects.get(pk=started.payment.pk)
