"""The demo operator's invoicing: the seller, the tax codes, and a 诺诺 account on the fake
platform (``python -m fakes.fapiao``, started by ``make run``). Development wiring only."""

from __future__ import annotations

import os

DEMO_FAPIAO_URL = os.environ.get("FAKE_FAPIAO_URL", "http://127.0.0.1:8803")
DEMO_FAPIAO_APP = ("demofapiaokey01", "demo-fapiao-secret")
DEMO_SELLER_TAX = "91440101MA5CYF8K2F"  # a made-up code with a correct check character
# Common codes for these lines; each operator's tax adviser confirms its own.
ELECTRICITY_CODE = "1100101020000000000"
SERVICE_CODE = "3040502020200000000"


def demo_invoicing_configure(*, fapiao_url: str = DEMO_FAPIAO_URL, callback_base_url: str) -> None:
    """Point the current operator's invoicing at the fake platform (inside its schema)."""
    from billing.invoices.services import invoice_settings

    row = invoice_settings()
    row.enabled, row.auto_issue = True, True
    row.seller_name = "广州绿源充电科技有限公司（演示）"
    row.seller_tax_number = DEMO_SELLER_TAX
    row.seller_address, row.seller_phone = "广州市天河区珠江新城演示路 1 号", "020-00000000"
    row.clerk = "演示开票员"
    row.electricity_goods_code, row.service_goods_code = ELECTRICITY_CODE, SERVICE_CODE
    row.api_url = f"{fapiao_url.rstrip('/')}/open/v1/services"
    row.token_url = f"{fapiao_url.rstrip('/')}/accessToken"
    row.app_key, row.app_secret = DEMO_FAPIAO_APP
    row.access_token, row.token_expires_at = "", None
    row.callback_base_url = callback_base_url
    row.save()
