"""Fixtures: fake servers on free ports, a merchant key made here, a notification receiver.

Run with ``pytest -p no:django fakes``: these tests need no Django settings.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from fakes import wechat_api, wechatpay

APPID = "wx1234567890abcdef"
SECRET = "s3cr3t-for-the-fake"
MCHID = "1900000109"


@pytest.fixture
def api_server() -> Iterator[wechat_api.WeChatApiServer]:
    server = wechat_api.start_in_thread(permissive=False)
    server.register_app(APPID, SECRET)
    yield server
    server.shutdown()


@dataclass
class MerchantKeys:
    private_pem: str
    public_pem: str
    serial_no: str
    apiv3_key: str


@pytest.fixture(scope="session")
def merchant_keys() -> MerchantKeys:
    key = wechatpay.generate_private_key()
    return MerchantKeys(
        wechatpay.private_key_pem(key),
        wechatpay.public_key_pem(key),
        secrets.token_hex(20).upper(),
        secrets.token_hex(16),
    )


@pytest.fixture(scope="session")
def platform_key(tmp_path_factory: pytest.TempPathFactory) -> wechatpay.PlatformKey:
    return wechatpay.load_or_create_platform_key(tmp_path_factory.mktemp("fake_wechatpay"))


@pytest.fixture
def pay_server(
    platform_key: wechatpay.PlatformKey, merchant_keys: MerchantKeys
) -> Iterator[wechatpay.WeChatPayServer]:
    server = wechatpay.start_in_thread(platform_key=platform_key)
    server.register_merchant(
        MCHID,
        [APPID],
        merchant_keys.apiv3_key,
        merchant_public_key=merchant_keys.public_pem,
        merchant_serial_no=merchant_keys.serial_no,
    )
    yield server
    server.shutdown()


class Receiver(ThreadingHTTPServer):
    """The merchant's notify_url: verifies and decrypts with ``WeChatPay.callback()``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.wxpay: WeChatPay | None = None
        self.accepted: queue.Queue[dict[str, Any]] = queue.Queue()
        self.rejected: queue.Queue[dict[str, Any]] = queue.Queue()
        self.fail_next = 0  # answer this many notifications with 500, as if we were down

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/pay/notify/"

    def next_accepted(self, timeout: float = 5) -> dict[str, Any]:
        return self.accepted.get(timeout=timeout)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items()}
        assert self.server.wxpay is not None
        result = self.server.wxpay.callback(headers, body)
        if self.server.fail_next > 0:
            self.server.fail_next -= 1
            self.send_response(500)
            payload = b'{"code": "FAIL", "message": "down"}'
        elif result is None:
            self.server.rejected.put({"headers": headers, "body": body})
            self.send_response(401)
            payload = json.dumps({"code": "FAIL", "message": "bad signature"}).encode()
        else:
            self.server.accepted.put(result)
            self.send_response(204)
            payload = b""
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def make_wxpay(
    server: wechatpay.WeChatPayServer,
    keys: MerchantKeys,
    notify_url: str,
    *,
    private_pem: str | None = None,
    public_key: str | None = None,
    timeout: Any = None,
) -> WeChatPay:
    """What the platform does: public-key mode, gateway pointed at the fake."""
    wxpay = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=MCHID,
        private_key=private_pem or keys.private_pem,
        cert_serial_no=keys.serial_no,
        appid=APPID,
        apiv3_key=keys.apiv3_key,
        notify_url=notify_url,
        public_key=public_key or server.public_key_pem,
        public_key_id=server.public_key_id,
        timeout=timeout,
    )
    wxpay._core._gate_way = server.url
    return wxpay


@pytest.fixture
def wxpay(
    pay_server: wechatpay.WeChatPayServer, merchant_keys: MerchantKeys, receiver: Receiver
) -> WeChatPay:
    client = make_wxpay(pay_server, merchant_keys, receiver.url)
    receiver.wxpay = client
    return client
