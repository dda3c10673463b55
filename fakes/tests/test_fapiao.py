"""The fake 诺诺 platform checks what the real one checks: signature, token, seller, line
arithmetic, unique orderNo; it issues later and calls back."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest

from fakes import fapiao

KEY, SECRET, TAX = "k1", "s1", "91350100M000100Y43"


def _port() -> int:
    """A free local port: tries 18900-18939 first, then any."""
    import socket

    for port in range(18900, 18940):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return 0


@pytest.fixture
def server():
    s = fapiao.start_in_thread(port=_port(), issue_seconds=0.05)
    s.register_app(KEY, SECRET, TAX)
    yield s
    s.shutdown()


def _token(server) -> str:
    r = httpx.post(f"{server.url}/accessToken", data={
        "client_id": KEY, "client_secret": SECRET, "grant_type": "client_credentials"})
    return r.json()["access_token"]


def _call(server, method, payload, *, token=None, secret=SECRET, tax=TAX):
    content = json.dumps(payload, ensure_ascii=False)
    q = {"senid": "s", "nonce": "1", "timestamp": str(int(time.time())), "appkey": KEY}
    sign = fapiao._sign(secret, KEY, q["senid"], q["nonce"], q["timestamp"], content)
    headers = {"X-Nuonuo-Sign": sign, "accessToken": token or _token(server), "userTax": tax,
               "method": method, "Content-Type": "application/json"}
    return httpx.post(f"{server.url}/open/v1/services", params=q, content=content.encode(), headers=headers).json()


def _order(number, callback="", ex="13.27", tax="1.73", incl="15.00"):
    return {"order": {"orderNo": number, "salerTaxNum": TAX, "buyerName": "李四", "invoiceType": "1",
                      "callBackUrl": callback, "invoiceDetail": [{
                          "goodsName": "电费", "goodsCode": "1100101020000000000", "taxRate": "0.13",
                          "taxExcludedAmount": ex, "tax": tax, "taxIncludedAmount": incl}]}}


class _Receiver(ThreadingHTTPServer):
    def __init__(self):
        self.got: queue.Queue = queue.Queue()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.put(parse_qs(body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", _port()), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_refuses_bad_signature_token_and_seller(server):
    assert _call(server, fapiao.ISSUE, _order("A1"), secret="wrong")["code"] == "070303"
    assert _call(server, fapiao.ISSUE, _order("A1"), token="nope")["code"] == "070301"
    assert _call(server, fapiao.ISSUE, _order("A1"), tax="91110000802100433B")["code"] == "070304"
    assert not server.invoices


def test_checks_line_arithmetic_and_unique_order_number(server):
    assert _call(server, fapiao.ISSUE, _order("A1", incl="15.01"))["code"] == "E9103"
    assert _call(server, fapiao.ISSUE, _order("A1", ex="10.00", tax="5.00"))["code"] == "E9103"
    first = _call(server, fapiao.ISSUE, _order("A1"))
    assert first["code"] == "E0000" and first["result"]["invoiceSerialNum"]
    assert _call(server, fapiao.ISSUE, _order("A1"))["code"] == "E9106"


def test_issues_later_and_calls_back(server):
    receiver = _Receiver()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/cb"
    _call(server, fapiao.ISSUE, _order("B1", callback=url))
    pending = _call(server, fapiao.QUERY, {"orderNos": ["B1"]})["result"][0]
    assert pending["status"] in ("20", "2")
    posted = receiver.got.get(timeout=5)
    content = json.loads(posted["content"][0])
    assert content["orderNo"] == "B1" and content["status"] == "2" and content["invoiceNo"]
    assert _call(server, fapiao.QUERY, {"orderNos": ["B1", "nope"]})["result"][0]["status"] == "2"
    receiver.shutdown()
