"""A driver's whole journey through the public HTTP API and WebSocket only.

Log in (fake WeChat), top up (fake WeChat Pay), scan a connector, start, watch live
progress, stop after a chosen energy, read the bill and the new balance; optionally ask for
the e-invoice of the order and download its PDF. Used by
``manage.py demo_session`` against `make run`, and by the end-to-end test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import websockets


class JourneyError(Exception):
    """A step of the journey failed; the message says which and what the server said."""


@dataclass
class Journey:
    api_url: str  # e.g. http://127.0.0.1:8000
    pay_url: str  # the fake WeChat Pay server, e.g. http://127.0.0.1:8802
    tenant: str = "demo"
    driver: str = "alice"
    top_up: Decimal = Decimal("100.00")
    stop_at_kwh: Decimal = Decimal("2.0")
    connector_code: str | None = None
    timeout_s: float = 120.0
    say: Callable[[str], None] = print
    marketing: bool = False  # buy SVIP and claim a coupon before charging (the bill shows both)
    token: str = ""
    perks: dict = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)

    # --- HTTP -------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        headers = {"X-Tenant": self.tenant}
        if self.token:
            headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=f"{self.api_url}/api/app/v1", headers=headers, timeout=15)

    def _call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs) -> dict:
        with self._client() as client:
            response = client.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise JourneyError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    def _until(self, what: str, check: Callable[[], dict | None]) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.3)
        raise JourneyError(f"timed out waiting for {what}")

    # --- the steps ----------------------------------------------------------------------

    def login(self) -> dict:
        body = self._call(
            "POST", "/auth/wechat-login", json={"code": f"demo-{self.driver}#{secrets.token_hex(4)}"}
        )
        self.token = body["access"]
        self.say(f"登录成功 / logged in as member {body['member']['id']} ({self.driver})")
        return body

    def wallet(self) -> dict:
        return self._call("GET", "/wallet")

    def top_up_and_pay(self) -> dict:
        start = self._call("POST", "/wallet/top-ups", expect=(201,), json={"amount": str(self.top_up)})
        out_trade_no = start["payment"]["out_trade_no"]
        self.say(f"充值 / top-up ¥{self.top_up}: prepay {out_trade_no}, paying in the fake WeChat Pay")
        paid = httpx.post(
            f"{self.pay_url}/_fake/pay", json={"out_trade_no": out_trade_no, **start["pay_params"]}, timeout=15
        )
        if paid.status_code >= 300:
            raise JourneyError(f"fake pay: {paid.status_code} {paid.text[:300]}")
        return self._until(
            "the top-up to be credited",
            lambda: (p := self._call("GET", f"/wallet/payments/{out_trade_no}"))["status"] == "paid" and p,
        )

    def pick_connector(self) -> dict:
        if self.connector_code:
            return self._call("GET", f"/connectors/by-code/{self.connector_code}")
        stations = self._call("GET", "/stations", params={"lat": "23.1291", "lng": "113.2644", "radius": "50000"})
        for row in stations["results"]:
            detail = self._call("GET", f"/stations/{row['id']}")
            for pile in detail.get("piles", []):
                for connector in pile.get("connectors", []):
                    state = (connector.get("live") or {}).get("status") or connector.get("status")
                    if state == "plugged":
                        return {"connector": connector, "pile": pile, "station": detail,
                                "price_now": detail["price_now"]}
        raise JourneyError("no plugged-in connector is free: are the simulated piles running?")

    def start(self, connector: dict) -> dict:
        # By the scanned QR value when given, else by the id the station's page shows.
        if self.connector_code:
            body, on = {"connector_code": self.connector_code}, self.connector_code
        else:
            gun = connector["connector"]
            body, on = {"connector_id": gun["id"]}, f"{connector['station']['name']} #{gun['number']}"
        order = self._call("POST", "/orders", expect=(202,), json=body)
        self.say(f"启动充电 / starting order {order['number']} on {on}")
        return order

    async def _watch(self, order_id: int) -> dict:
        ws_url = self.api_url.replace("http", "ws", 1) + f"/ws/app/orders/{order_id}/"
        stop_sent = False
        auth = {"Authorization": f"Bearer {self.token}"}  # never in the URL
        async with websockets.connect(ws_url, open_timeout=10, additional_headers=auth) as ws:
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                except TimeoutError:
                    continue
                order = message["order"]
                self.log.append(order)
                progress = order.get("progress") or {}
                if progress:
                    self.say(
                        f"  {order['state']:9} {progress.get('energy_kwh', '0')} kWh  "
                        f"¥{progress.get('amount_yuan', '0')}  {progress.get('power_kw') or '-'} kW  "
                        f"SOC {progress.get('soc_percent') or '-'}%  {progress.get('elapsed_min', 0)} min"
                    )
                else:
                    self.say(f"  {order['state']}")
                if order["state"] in ("settled", "failed"):
                    return order
                energy = Decimal(progress.get("energy_kwh") or "0")
                if not stop_sent and order["state"] == "charging" and energy >= self.stop_at_kwh:
                    await asyncio.to_thread(self._call, "POST", f"/orders/{order_id}/stop", (202,))
                    self.say(f"停止充电 / stop requested at {energy} kWh")
                    stop_sent = True
        raise JourneyError("timed out watching the order")

    def invoice(self, order_number: str, pdf_dir: Path | None = None) -> dict:
        """Ask for a personal e-invoice (电子发票) of the order, wait until the provider has
        issued it, and download its PDF (into ``pdf_dir`` if given). Returns the invoice body
        with ``pdf`` (bytes)."""
        body = self._call("POST", "/invoices", expect=(201,), json={
            "order_numbers": [order_number], "title_kind": "personal",
            "title_name": f"{self.driver}（演示）", "email": f"{self.driver}@example.com",
        })
        self.say(f"开票申请 / invoice requested {body['number']}: ¥{body['total']} "
                 f"(税额 tax ¥{body['tax']})")
        done = self._until(
            "the invoice to be issued",
            lambda: (b := self._call("GET", f"/invoices/{body['id']}"))["status"] in ("issued", "failed") and b,
        )
        if done["status"] != "issued":
            raise JourneyError(f"invoice {done['number']} failed: {done['last_error']}")
        with self._client() as client:
            pdf = client.get(f"/invoices/{body['id']}/pdf")
        if pdf.status_code != 200 or not pdf.content.startswith(b"%PDF"):
            raise JourneyError(f"invoice PDF: {pdf.status_code}")
        line = f"发票已开具 / invoice issued: No. {done['invoice_no']}, PDF {len(pdf.content)} bytes"
        if pdf_dir is not None:
            pdf_dir.mkdir(parents=True, exist_ok=True)
            path = pdf_dir / f"{done['invoice_no']}.pdf"
            path.write_bytes(pdf.content)
            line += f" → {path}"
        self.say(line)
        return {**done, "pdf": pdf.content}

    def run(self) -> dict:
        """The whole journey; returns {"order", "before", "after"} (API bodies)."""
        self.login()
        before = self.wallet()
        self.say(f"余额 / balance ¥{before['available']}")
        self.top_up_and_pay()
        if self.marketing:
            self.perks = self.marketing_perks()
        topped = self.wallet()
        self.say(f"余额 / balance after top-up ¥{topped['available']}")
        connector = self.pick_connector()
        order = self.start(connector)
        final = asyncio.run(self._watch(order["id"]))
        if final["state"] != "settled":
            raise JourneyError(f"order ended {final['state']}")
        order = self._call("GET", f"/orders/{order['id']}")
        self.say("账单 / bill:")
        self._say_bill(order)
        after = self.wallet()
        self.say(f"余额 / balance now ¥{after['available']}")
        return {"order": order, "before": topped, "after": after}

    def marketing_perks(self) -> dict:
        """Buy the first SVIP plan on sale from the wallet and claim the first claimable coupon."""
        svip = self._call("GET", "/svip")
        bought = None
        if not svip["active"] and svip["plans"]:
            plan = svip["plans"][0]
            bought = self._call("POST", "/svip/purchases", expect=(201,), json={"plan_id": plan["id"]})
            self.say(f"开通 / SVIP {plan['name']} ¥{plan['price']} (服务费 {plan['service_discount_percent']}% off)")
        claimed = None
        for template in self._call("GET", "/coupons/claimable")[:1]:
            claimed = self._call("POST", "/coupons/claim", expect=(201,), json={"template_id": template["id"]})
            self.say(f"领券 / coupon {template['name']}")
        return {"svip": bought, "coupon": claimed}

    def _say_bill(self, order: dict) -> None:
        for line in order["bill_lines"]:
            self.say(
                f"  {','.join(line['periods'] or [])}: {line['energy_kwh']} kWh  "
                f"电费 ¥{line['electricity_yuan']}  服务费 ¥{line['service_yuan']}"
            )
        for line in order.get("discount_lines", []):
            self.say(f"  优惠 / {line['kind']} {line['name']}: -¥{line['amount']}")
        self.say(f"  合计 / total ¥{order['total_amount']} for {order['energy_kwh']} kWh")
