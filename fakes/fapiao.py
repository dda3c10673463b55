"""A fake 诺诺 open platform (e-invoice provider) for development, demos and tests.

DEVELOPMENT STAND-IN ONLY — it issues nothing real. It speaks the protocol the platform's
adapter (``billing.invoices.nuonuo``) speaks, with real checks:

- ``POST /accessToken`` (form ``client_id``, ``client_secret``, ``grant_type``) → token.
- ``POST /open/v1/services?senid&nonce&timestamp&appkey``: ``X-Nuonuo-Sign`` (HMAC-SHA1,
  Base64) verified with the app's secret, ``accessToken`` must be current, ``userTax`` must
  be the app's seller tax number, ``method`` one of:
  * ``nuonuo.OpeMplatform.requestBillingNew``: checks every line (``taxIncludedAmount`` =
    ``taxExcludedAmount`` + ``tax``; ``|taxExcludedAmount · taxRate − tax| ≤ 0.06``), a red
    invoice's reference to an issued, unreversed blue one of the same total; refuses a repeated
    ``orderNo`` with ``E9106``. Accepted requests are issued after ``issue_seconds`` (status
    20 → 2) and the outcome is POSTed to ``callBackUrl`` (form field ``content``, JSON).
    A buyer named ``拒开`` is failed (status 22) to exercise failures.
  * ``nuonuo.OpeMplatform.queryInvoiceResult``: by ``orderNos``.
- ``GET /_fake/pdf/<serial>``: a PDF; ``GET /_fake/invoices``; ``/_fake/failures`` as the
  other fakes (timeouts, resets, errors, ``apply`` for "done but the answer lost").

Run: ``python -m fakes.fapiao --port 8803 --app APPKEY:SECRET:TAXNUM [--issue-seconds 2]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlencode

from ._server import FakeServer, Handler, Reply, Request, control_failures, json_reply, route

ISSUE = "nuonuo.OpeMplatform.requestBillingNew"
QUERY = "nuonuo.OpeMplatform.queryInvoiceResult"


def _sign(secret: str, app_key: str, senid: str, nonce: str, timestamp: str, content: str) -> str:
    message = f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={content}"
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha1).digest()).decode()


def _answer(code: str, describe: str, result: Any = None) -> Reply:
    return json_reply(200, {"code": code, "describe": describe, "result": result})


class FapiaoServer(FakeServer):
    def __init__(self, address, *, issue_seconds: float = 1.0, token_ttl: int = 86400) -> None:
        super().__init__(address, Handler)
        self.issue_seconds = issue_seconds
        self.token_ttl = token_ttl
        self.apps: dict[str, tuple[str, str]] = {}  # appkey -> (secret, seller tax number)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appkey, expires)
        self.invoices: dict[tuple[str, str], dict[str, Any]] = {}  # (taxnum, orderNo) -> record
        self.callbacks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._serial = 0

    def register_app(self, app_key: str, secret: str, tax_number: str) -> None:
        self.apps[app_key] = (secret, tax_number)

    def routes(self):
        return [
            route("POST", r"/accessToken", self.h_token),
            route("POST", r"/open/v1/services", self.h_services),
            route("GET", r"/_fake/pdf/(?P<serial>\w+)", self.h_pdf),
            route("GET", r"/_fake/invoices", lambda r: json_reply(200, list(self.invoices.values()))),
            route("GET", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("POST", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("DELETE", r"/_fake/failures", lambda r: control_failures(self, r)),
        ]

    # --- endpoints ------------------------------------------------------------------------

    def h_token(self, request: Request) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        app = self.apps.get(form.get("client_id", ""))
        if app is None or app[0] != form.get("client_secret") or form.get("grant_type") != "client_credentials":
            return json_reply(400, {"error": "invalid_client", "error_description": "bad client"})
        token = secrets.token_hex(16)
        self.tokens[token] = (form["client_id"], time.time() + self.token_ttl)
        return json_reply(200, {"access_token": token, "expires_in": self.token_ttl})

    def h_services(self, request: Request) -> Reply:
        q = request.query
        app_key = q.get("appkey", "")
        app = self.apps.get(app_key)
        if app is None:
            return _answer("070302", "appkey 不存在")
        secret, tax_number = app
        content = request.body.decode("utf-8")
        expected = _sign(secret, app_key, q.get("senid", ""), q.get("nonce", ""), q.get("timestamp", ""), content)
        if not hmac.compare_digest(expected, request.headers.get("X-Nuonuo-Sign", "")):
            return _answer("070303", "签名错误")
        token = self.tokens.get(request.headers.get("accessToken", ""))
        if token is None or token[0] != app_key or token[1] < time.time():
            return _answer("070301", "accessToken 无效或已过期")
        if request.headers.get("userTax") != tax_number:
            return _answer("070304", "userTax 与应用不符")
        try:
            payload = json.loads(content)
        except ValueError:
            return _answer("E9000", "报文不是 JSON")
        method = request.headers.get("method", "")
        if method == ISSUE:
            return self._issue(tax_number, payload.get("order") or {})
        if method == QUERY:
            with self._lock:
                rows = [self.invoices[(tax_number, n)] for n in payload.get("orderNos") or []
                        if (tax_number, n) in self.invoices]
            return _answer("E0000", "查询成功", [self._public(r) for r in rows])
        return _answer("070305", f"未知方法 {method}")

    def h_pdf(self, request: Request) -> Reply:
        serial = request.params["serial"]
        if not any(r["serialNo"] == serial for r in self.invoices.values()):
            return json_reply(404, {"error": "no such invoice"})
        body = b"%PDF-1.4\n% fake fapiao " + serial.encode() + b"\n%%EOF\n"
        return Reply(200, body, "application/pdf")

    # --- the work -------------------------------------------------------------------------

    def _issue(self, tax_number: str, order: dict[str, Any]) -> Reply:
        number = str(order.get("orderNo") or "")
        if not number:
            return _answer("E9101", "orderNo 不能为空")
        if order.get("salerTaxNum") != tax_number:
            return _answer("E9102", "销方税号与授权不符")
        problem = self._check_lines(order)
        if problem:
            return _answer("E9103", problem)
        red = order.get("invoiceType") == "2"
        with self._lock:
            if (tax_number, number) in self.invoices:
                return _answer("E9106", "订单编号不能重复")
            blue = None
            if red:
                blue = next(
                    (r for r in self.invoices.values()
                     if r["taxNum"] == tax_number and r["invoiceNo"] == order.get("invoiceNum")
                     and r["status"] == "2" and r["invoiceType"] == "1"),
                    None,
                )
                if blue is None or blue.get("reversedBy"):
                    return _answer("E9107", "对应蓝票不存在或已冲红")
                if self._total(order) != -Decimal(blue["total"]):
                    return _answer("E9108", "红票金额须与蓝票相反")
                blue["reversedBy"] = number
            self._serial += 1
            serial = f"{time.strftime('%y%m%d')}{self._serial:08d}{secrets.randbelow(10**4):04d}"
            record = {
                "taxNum": tax_number, "orderNo": number, "serialNo": serial, "status": "20",
                "statusMsg": "开票中", "failCause": "", "invoiceType": "2" if red else "1",
                "buyerName": order.get("buyerName", ""), "total": str(self._total(order)),
                "invoiceNo": "", "invoiceCode": "", "pdfUrl": "", "invoiceTime": None,
                "callBackUrl": order.get("callBackUrl") or "",
            }
            self.invoices[(tax_number, number)] = record
        timer = threading.Timer(self.issue_seconds, self._finish, args=(record,))
        timer.daemon = True
        timer.start()
        return _answer("E0000", "开票提交成功", {"invoiceSerialNum": serial})

    @staticmethod
    def _total(order: dict[str, Any]) -> Decimal:
        return sum((Decimal(d["taxIncludedAmount"]) for d in order.get("invoiceDetail") or []), Decimal("0"))

    @staticmethod
    def _check_lines(order: dict[str, Any]) -> str:
        details = order.get("invoiceDetail") or []
        if not details:
            return "invoiceDetail 不能为空"
        try:
            for d in details:
                incl, ex, tax = (Decimal(d[k]) for k in ("taxIncludedAmount", "taxExcludedAmount", "tax"))
                rate = Decimal(d["taxRate"])
                if not d.get("goodsCode"):
                    return f"{d.get('goodsName')}: goodsCode 不能为空"
                if incl != ex + tax:
                    return f"{d.get('goodsName')}: 价税合计不等于金额加税额"
                if abs(ex * rate - tax) > Decimal("0.06"):
                    return f"{d.get('goodsName')}: 税额误差超过 0.06"
        except (KeyError, InvalidOperation, TypeError) as exc:
            return f"明细字段错误: {exc}"
        return ""

    def _finish(self, record: dict[str, Any]) -> None:
        with self._lock:
            if record["buyerName"] == "拒开":
                record.update(status="22", statusMsg="开票失败", failCause="购方名称不合规")
            else:
                record.update(
                    status="2", statusMsg="开票完成",
                    invoiceNo=f"26{secrets.randbelow(10**18):018d}",
                    pdfUrl=f"{self.url}/_fake/pdf/{record['serialNo']}",
                    invoiceTime=int(time.time() * 1000),
                )
            public = self._public(record)
        url = record["callBackUrl"]
        if not url:
            return
        body = urlencode({"operater": "callback", "orderno": record["orderNo"],
                          "content": json.dumps(public, ensure_ascii=False)}).encode()
        for delay in (0, 1, 3):
            time.sleep(delay)
            try:
                req = urllib.request.Request(url, data=body, method="POST", headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
                with urllib.request.urlopen(req, timeout=5) as reply:
                    ok = reply.status == 200
            except OSError:
                ok = False
            self.callbacks.append({"orderNo": record["orderNo"], "url": url, "ok": ok})
            if ok:
                return

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        keys = ("orderNo", "serialNo", "status", "statusMsg", "failCause", "invoiceNo",
                "invoiceCode", "pdfUrl", "invoiceTime", "buyerName")
        out = {k: record[k] for k in keys}
        out["allElectronicInvoiceNumber"] = record["invoiceNo"]
        return out


def start_in_thread(host: str = "127.0.0.1", port: int = 0, *, issue_seconds: float = 0.2) -> FapiaoServer:
    """Start the fake in a daemon thread; ``server.url``, ``server.shutdown()``."""
    return FapiaoServer((host, port), issue_seconds=issue_seconds).start_background()  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.fapiao",
                                     description="Fake 诺诺 e-invoice platform (NOT a tax platform).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8803)
    parser.add_argument("--app", action="append", default=[], metavar="APPKEY:SECRET:TAXNUM")
    parser.add_argument("--issue-seconds", type=float, default=2.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    server = FapiaoServer((args.host, args.port), issue_seconds=args.issue_seconds)
    server.verbose = args.verbose
    for spec in args.app:
        key, secret, tax = spec.split(":", 2)
        server.register_app(key, secret, tax)
    print(f"fake 诺诺 e-invoice platform (DEVELOPMENT STAND-IN, issues nothing real) at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
