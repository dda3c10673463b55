"""Must show (issue 16): the demo driver journey, then an e-invoice of that order issued
through the fake 诺诺 platform (worker → provider → call-back to the web → query) with a PDF
the driver downloads; a refund of the order red-reverses it and re-issues what remains."""

import socket
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from demo.invoicing import DEMO_FAPIAO_APP, DEMO_SELLER_TAX, demo_invoicing_configure
from demo.journey import Journey
from fakes import fapiao
from protocols.tests.helpers import committed, wait_for

pytestmark = pytest.mark.django_db


def _port() -> int:
    for port in range(18940, 18960):  # this worktree's range
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def fapiao_server(platform):
    server = fapiao.start_in_thread(port=_port(), issue_seconds=0.3)
    server.register_app(*DEMO_FAPIAO_APP, DEMO_SELLER_TAX)

    def configure():
        with schema_context(platform.operator.schema_name):
            demo_invoicing_configure(fapiao_url=server.url, callback_base_url=platform.web.url)

    committed(configure)
    yield server
    server.shutdown()


def test_demo_session_then_invoice_then_refund_red_reverses(platform, fapiao_server, tmp_path):
    journey = Journey(api_url=platform.web.url, pay_url=platform.pay.url, driver="carol",
                      stop_at_kwh=Decimal("1.0"), timeout_s=60, say=lambda _: None)
    order = journey.run()["order"]
    issued = journey.invoice(order["number"], pdf_dir=tmp_path)
    assert issued["status"] == "issued" and Decimal(issued["total"]) == Decimal(order["total_amount"])
    assert sum(Decimal(line["amount"]) for line in issued["lines"]) == Decimal(order["total_amount"])
    assert (tmp_path / f"{issued['invoice_no']}.pdf").read_bytes().startswith(b"%PDF")
    # The provider called back to the web (not a poll of ours).
    assert any(c["orderNo"] == issued["number"] and c["ok"] for c in fapiao_server.callbacks)

    # Staff refund part of the order: red-letter reversal, then a new invoice for the rest.
    refund = (Decimal(order["total_amount"]) / 2).quantize(Decimal("0.01"))

    def refund_part():
        from django.contrib.auth import get_user_model

        from charging.services import order_refund_partial

        with schema_context(platform.operator.schema_name):
            staff = get_user_model().objects.get(username="demo-admin")
            order_refund_partial(order_id=order["id"], amount=refund, user=staff, reason="演示退款")

    committed(refund_part)

    def settled():
        body = journey._call("GET", "/invoices")["results"]
        states = {(i["kind"], i["status"]) for i in body}
        return body if {("blue", "reversed"), ("red", "issued"), ("blue", "issued")} <= states else None

    invoices = wait_for(settled, timeout=30, interval=0.3)
    red = next(i for i in invoices if i["kind"] == "red")
    again = next(i for i in invoices if i["kind"] == "blue" and i["status"] == "issued")
    assert Decimal(red["total"]) == -Decimal(issued["total"])
    assert Decimal(again["total"]) == Decimal(order["total_amount"]) - refund
    pdf = httpx.get(f"{platform.web.url}/api/app/v1/invoices/{again['id']}/pdf",
                    headers={"Authorization": f"Bearer {journey.token}"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # What the operator sees: the invoice list in the admin, in a real browser.
    from playwright.sync_api import sync_playwright

    from demo.seed import DEMO_ADMIN, demo_host

    host, port = demo_host(), platform.web.port
    shots = Path(settings.BASE_DIR) / "var" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=[f"--host-resolver-rules=MAP {host} 127.0.0.1"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 800}, locale="zh-CN")
        page.goto(f"http://{host}:{port}/admin/login/?next=/admin/billing/invoice/")
        page.fill("#id_username", DEMO_ADMIN[0])
        page.fill("#id_password", DEMO_ADMIN[1])
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/billing/invoice/")
        page.screenshot(path=str(shots / "admin_invoices.png"), full_page=True)
        text = page.inner_text("#result_list")
        assert issued["number"] in text and red["number"] in text and again["number"] in text
        assert "已红冲" in text and "已开具" in text
        page.goto(f"http://{host}:{port}/admin/billing/invoicesettings/")
        page.click("#result_list tbody th a")
        page.wait_for_url("**/change/")
        assert page.input_value("#id_seller_tax_number") == DEMO_SELLER_TAX
        page.screenshot(path=str(shots / "admin_invoice_settings.png"), full_page=True)
        assert DEMO_FAPIAO_APP[1] not in page.content()
        browser.close()

