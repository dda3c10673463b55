"""A fake Tencent Cloud SMS API (sms.tencentcloudapi.com, version 2021-01-11) for
development, demos and tests.

DEVELOPMENT STAND-IN ONLY — it sends nothing. It checks what the real service checks:

- every call is ``POST /`` with ``X-TC-Action``, ``X-TC-Version: 2021-01-11`` and a TC3-HMAC-SHA256
  ``Authorization`` verified with the registered SecretKey (``AuthFailure.SignatureFailure``);
- ``SendSms``: the ``SmsSdkAppId`` is registered, the ``SignName`` and ``TemplateId`` are the
  app's, at most 200 numbers; each number gets a ``SerialNo`` and ``Fee`` (1 per 70
  characters of the rendered text); a malformed number gets
  ``InvalidParameterValue.IncorrectPhoneNumber``;
- ``PullSmsSendStatus``: the receipts of sent messages, each once: ``SUCCESS``, or ``FAIL``
  for numbers ending in ``4444`` (to exercise undelivered messages).

``GET /_fake/sent`` lists what was sent; ``/_fake/failures`` as the other fakes.
Run: ``python -m fakes.sms --port 8804 --app SDKAPPID:SECRETID:SECRETKEY:SIGN:TEMPLATEID=内容{1}``
(``--app`` again with the same SdkAppId adds a template; the Procfile's ``fake_sms`` is the demo's).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ._server import FakeServer, Handler, Reply, Request, control_failures, json_reply, route

PHONE = re.compile(r"^\+861[3-9]\d{9}$")


def tc3_signature(secret_key: str, *, service: str, date: str, timestamp: str, canonical_request: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class SmsServer(FakeServer):
    def __init__(self, address) -> None:
        super().__init__(address, Handler)
        self.apps: dict[str, dict[str, Any]] = {}  # SdkAppId -> secret_id, secret_key, sign, templates
        self.sent: list[dict[str, Any]] = []
        self.pending_receipts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def register(self, *, sdk_app_id: str, secret_id: str, secret_key: str, sign: str, templates: dict[str, str]) -> None:
        self.apps[sdk_app_id] = {"secret_id": secret_id, "secret_key": secret_key, "sign": sign, "templates": templates}

    def routes(self):
        return [
            route("POST", r"/", self.h_api),
            route("GET", r"/_fake/sent", lambda r: json_reply(200, self.sent)),
            route("GET", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("POST", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("DELETE", r"/_fake/failures", lambda r: control_failures(self, r)),
        ]

    # --- the API --------------------------------------------------------------------------

    def _reply(self, response: dict[str, Any]) -> Reply:
        # exactly "application/json", as the real service answers (the SDK checks for errors only then)
        body = json.dumps({"Response": {**response, "RequestId": secrets.token_hex(8)}}, ensure_ascii=False)
        return Reply(200, body.encode(), "application/json")

    def _error(self, code: str, message: str) -> Reply:
        return self._reply({"Error": {"Code": code, "Message": message}})

    def _ok(self, body: dict[str, Any]) -> Reply:
        return self._reply(body)

    def _authorised(self, request: Request, app: dict[str, Any]) -> bool:
        auth = request.headers.get("Authorization", "")
        m = re.match(r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/(\w+)/tc3_request, "
                     r"SignedHeaders=([\w;-]+), Signature=(\w+)", auth)
        if not m or m.group(1) != app["secret_id"]:
            return False
        secret_id, date, service, signed, signature = m.groups()
        names = signed.split(";")
        headers = "".join(f"{n}:{(request.headers.get(n) or '').strip()}\n" for n in names)
        canonical = "\n".join(["POST", "/", "", headers, signed, hashlib.sha256(request.body).hexdigest()])
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        if datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d") != date:
            return False
        want = tc3_signature(app["secret_key"], service=service, date=date, timestamp=timestamp, canonical_request=canonical)
        return hmac.compare_digest(want, signature)

    def h_api(self, request: Request) -> Reply:
        if request.headers.get("X-TC-Version") != "2021-01-11":
            return self._error("InvalidParameter", "X-TC-Version must be 2021-01-11")
        body = request.json()
        app = self.apps.get(str(body.get("SmsSdkAppId", "")))
        if app is None:
            return self._error("FailedOperation.SmsSdkAppIdVerifyFail", "SdkAppId not found")
        if not self._authorised(request, app):
            return self._error("AuthFailure.SignatureFailure", "signature mismatch")
        action = request.headers.get("X-TC-Action")
        if action == "SendSms":
            return self._send(app, body)
        if action == "PullSmsSendStatus":
            return self._pull(body)
        return self._error("InvalidAction", f"unknown action {action}")

    def _send(self, app: dict[str, Any], body: dict[str, Any]) -> Reply:
        phones = body.get("PhoneNumberSet") or []
        if not phones or len(phones) > 200:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "1 to 200 numbers a call")
        if body.get("SignName") != app["sign"]:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "signature not approved")
        template = app["templates"].get(str(body.get("TemplateId")))
        if template is None:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "template not approved")
        text = f"【{app['sign']}】" + template
        for i, value in enumerate(body.get("TemplateParamSet") or [], start=1):
            text = text.replace("{" + str(i) + "}", str(value))
        fee = -(-len(text) // 70)
        statuses = []
        with self._lock:
            for phone in phones:
                if not PHONE.match(str(phone)):
                    statuses.append({"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": "",
                                     "Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "bad number",
                                     "IsoCode": "CN"})
                    continue
                serial = f"{secrets.randbelow(10**8):08d}:{secrets.token_hex(10)}"
                statuses.append({"SerialNo": serial, "PhoneNumber": phone, "Fee": fee, "SessionContext": "",
                                 "Code": "Ok", "Message": "send success", "IsoCode": "CN"})
                self.sent.append({"phone": phone, "text": text, "serial": serial})
                self.pending_receipts.append({
                    "UserReceiveTime": time.strftime("%Y-%m-%d %H:%M:%S"), "CountryCode": "86",
                    "SubscriberNumber": phone[3:], "PhoneNumber": phone, "SerialNo": serial,
                    "ReportStatus": "FAIL" if phone.endswith("4444") else "SUCCESS",
                    "Description": "用户停机" if phone.endswith("4444") else "用户短信送达成功", "SessionContext": "",
                })
        return self._ok({"SendStatusSet": statuses})

    def _pull(self, body: dict[str, Any]) -> Reply:
        limit = int(body.get("Limit") or 100)
        with self._lock:
            taken, self.pending_receipts = self.pending_receipts[:limit], self.pending_receipts[limit:]
        return self._ok({"PullSmsSendStatusSet": taken})


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> SmsServer:
    """Start the fake in a daemon thread; ``server.url``, ``server.shutdown()``."""
    return SmsServer((host, port)).start_background()  # type: ignore[return-value]


def server_from_args(argv: list[str] | None = None) -> SmsServer:
    """The server the command line describes (not started). ``--app`` may repeat; the same
    SdkAppId again adds a template to that app."""
    parser = argparse.ArgumentParser(prog="python -m fakes.sms", description="Fake Tencent Cloud SMS (NOT Tencent).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8804)
    parser.add_argument("--app", action="append", default=[],
                        metavar="SDKAPPID:SECRETID:SECRETKEY:SIGN:TEMPLATEID=TEXT")
    args = parser.parse_args(argv)
    server = SmsServer((args.host, args.port))
    for spec in args.app:
        app_id, secret_id, secret_key, sign, template = spec.split(":", 4)
        tid, _eq, text = template.partition("=")
        known = server.apps.get(app_id, {}).get("templates", {})
        server.register(sdk_app_id=app_id, secret_id=secret_id, secret_key=secret_key, sign=sign,
                        templates={**known, tid: text})
    return server


def main(argv: list[str] | None = None) -> None:
    server = server_from_args(argv)
    print(f"fake Tencent Cloud SMS on {server.url}")
    server.serve_forever()


if __name__ == "__main__":
    main()
