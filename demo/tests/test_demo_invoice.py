"""Must show (issue 16): the demo driver journey, then an e-invoice of that order issued
through the fake 诺诺 platform (worker → provider → call-back to the web → query) with a PDF
the driver downloads; a refund of the order red-reverses it and re-issues what remains."""

import socket
from decimal import Decimal

import httpx
import pytest
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
