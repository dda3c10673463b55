"""Fixtures: the fake WeChat Pay server (real HTTP, real crypto), the Django app served
over real HTTP for notifications, tenant-a's merchant configured for the fake."""

from __future__ import annotations

from django.test import Client

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
