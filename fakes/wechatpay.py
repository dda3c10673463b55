"""Fake api.mch.weixin.qq.com (WeChat Pay APIv3) with real cryptography - a DEVELOPMENT STAND-IN.

Run:  python -m fakes.wechatpay --port 8802 [--host 127.0.0.1] [--key-dir var/fake_wechatpay]
                                [--merchant MCHID:APPID ...] [--auto-refund-seconds N]

What is real here:

* every reply (2xx and errors) is signed with the fake's own RSA-2048 key, PUBLIC-KEY mode:
  ``Wechatpay-Serial`` is the fake's ``PUB_KEY_ID_...``, ``Wechatpay-Signature`` is
  RSA-SHA256 over ``"{timestamp}\\n{nonce}\\n{body}\\n"``;
* every ``/v3`` request must carry a valid ``WECHATPAY2-SHA256-RSA2048`` Authorization made
  with the registered merchant key over ``"{METHOD}\\n{path?query}\\n{ts}\\n{nonce}\\n{body}\\n"``,
  timestamp within 300 s, else 401 ``SIGN_ERROR``;
* notifications are JSON with ``resource`` AEAD_AES_256_GCM-encrypted under the merchant's
  APIv3 key and signed like a reply; ``user_name`` in transfers is RSA-OAEP-decrypted.

Endpoints: JSAPI prepay, query (out-trade-no / id), close, refund + refund query, 商家转账
(transfer-bills create / query by out-bill-no or transfer-bill-no / cancel).
Control endpoints (``/_fake/...``) are described in ``fakes/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fakes._server import (
    FakeServer,
    Handler,
    HTTPError,
    Reply,
    Request,
    Route,
    control_failures,
    json_reply,
    route,
)

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_SECONDS = 300
CST = timezone(timedelta(hours=8))
# WeChat's retry schedule for unanswered notifications (seconds after the previous try).
WECHAT_RETRY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800)


# =========================================================================== crypto helpers
def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    text = pem.strip()
    if not text.startswith("-----BEGIN"):
        text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    key = serialization.load_pem_public_key(text.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    sig = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str, signature_b64: str) -> bool:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
        key.verify(sig, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def aes_gcm_encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
    """Encrypt like WeChat Pay: 12-char ASCII nonce, AEAD_AES_256_GCM, base64 ciphertext+tag."""
    nonce = secrets.token_hex(6)
    ct = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode("utf-8"), associated_data.encode()
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ct).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def signed_headers(
    key: rsa.RSAPrivateKey, serial: str, body: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers WeChat Pay puts on a reply or notification with ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16).upper()
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": rsa_sign(key, f"{ts}\n{nonce}\n{body}\n"),
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


# =========================================================================== key files
@dataclass
class PlatformKey:
    """The fake's own WeChat Pay platform key pair (微信支付公钥 + its ID)."""

    private_key: rsa.RSAPrivateKey
    public_key_id: str

    @property
    def public_key_pem(self) -> str:
        return public_key_pem(self.private_key)


PLATFORM_PRIVATE_FILE = "platform_private_key.pem"
PLATFORM_PUBLIC_FILE = "pub_key.pem"
PLATFORM_ID_FILE = "pub_key_id.txt"


def _public_key_id_for(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digits = str(int.from_bytes(hashlib.sha256(der).digest()[:13], "big")).zfill(30)[:30]
    return f"PUB_KEY_ID_01{digits}"


def load_or_create_platform_key(key_dir: str | os.PathLike[str] | None) -> PlatformKey:
    """Load the fake's key pair from ``key_dir`` (creating it on first use).

    Files: ``platform_private_key.pem`` (the fake's secret), ``pub_key.pem`` and
    ``pub_key_id.txt`` (give these two to the platform as ``public_key`` / ``public_key_id``).
    With ``key_dir=None`` a throw-away key is made in memory.
    """
    if key_dir is None:
        key = generate_private_key()
        return PlatformKey(key, _public_key_id_for(key))
    d = Path(key_dir)
    priv_path = d / PLATFORM_PRIVATE_FILE
    if priv_path.exists():
        key = serialization.load_pem_private_key(priv_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        id_path = d / PLATFORM_ID_FILE
        key_id = id_path.read_text().strip() if id_path.exists() else _public_key_id_for(key)
    else:
        d.mkdir(parents=True, exist_ok=True)
        key = generate_private_key()
        key_id = _public_key_id_for(key)
        _write_private(priv_path, private_key_pem(key))
        (d / PLATFORM_ID_FILE).write_text(key_id + "\n")
    (d / PLATFORM_PUBLIC_FILE).write_text(public_key_pem(key))
    return PlatformKey(key, key_id)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass
class DemoMerchant:
    """Merchant credentials the platform needs, as files under ``merchants/<mchid>/``."""

    mchid: str
    appid: str
    private_key_pem: str
    serial_no: str
    apiv3_key: str

    @property
    def public_key_pem(self) -> str:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return public_key_pem(key)


def load_or_create_demo_merchant(
    key_dir: str | os.PathLike[str], mchid: str, appid: str
) -> DemoMerchant:
    """Make (once) a merchant key pair, cert serial and APIv3 key for development.

    Layout: ``<key_dir>/merchants/<mchid>/apiclient_key.pem`` (merchant private key),
    ``apiclient_public.pem``, ``serial_no.txt``, ``apiv3_key.txt``, ``appid.txt``.
    """
    d = Path(key_dir) / "merchants" / mchid
    d.mkdir(parents=True, exist_ok=True)
    key_path = d / "apiclient_key.pem"
    if key_path.exists():
        pem = key_path.read_text()
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
    else:
        key = generate_private_key()
        pem = private_key_pem(key)
        _write_private(key_path, pem)
    (d / "apiclient_public.pem").write_text(public_key_pem(key))
    serial_path, v3_path = d / "serial_no.txt", d / "apiv3_key.txt"
    if not serial_path.exists():
        serial_path.write_text(secrets.token_hex(20).upper() + "\n")
    if not v3_path.exists():
        _write_private(v3_path, secrets.token_hex(16) + "\n")
    (d / "appid.txt").write_text(appid + "\n")
    return DemoMerchant(
        mchid, appid, pem, serial_path.read_text().strip(), v3_path.read_text().strip()
    )


# =========================================================================== state
def _now_str(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, CST).isoformat(
        timespec="seconds"
    )


def _digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


@dataclass
class Merchant:
    mchid: str
    appids: set[str]
    apiv3_key: str
    public_key: rsa.RSAPublicKey
    serial_no: str
    sp_mchid: str = ""  # a sub-merchant (特约商户): its service provider, whose keys it uses


@dataclass
class Order:
    mchid: str
    appid: str
    out_trade_no: str
    description: str
    notify_url: str
    total: int
    currency: str
    openid: str
    request: dict[str, Any]
    prepay_id: str
    created_at: float
    attach: str | None = None
    time_expire: str | None = None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    refunded: int = 0  # fen reserved by refunds that are not CLOSED/ABNORMAL
    # service-provider mode: mchid/appid are then the sub-merchant's (sub_mchid/sub_appid)
    sp_mchid: str = ""
    sp_appid: str = ""

    def parties(self) -> dict[str, Any]:
        if self.sp_mchid:
            return {"sp_appid": self.sp_appid, "sp_mchid": self.sp_mchid,
                    "sub_appid": self.appid, "sub_mchid": self.mchid}
        return {"appid": self.appid, "mchid": self.mchid}

    def as_transaction(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.parties(),
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": self.trade_state,
            "trade_state_desc": TRADE_STATE_DESC[self.trade_state],
            "payer": {"sub_openid" if self.sp_mchid else "openid": self.openid},
            "amount": {"total": self.total, "currency": self.currency},
        }
        if self.attach is not None:
            data["attach"] = self.attach
        if self.transaction_id:
            data.update(
                transaction_id=self.transaction_id,
                bank_type="OTHERS",
                success_time=self.success_time,
                amount={
                    "total": self.total,
                    "payer_total": self.total,
                    "currency": self.currency,
                    "payer_currency": self.currency,
                },
            )
        return data


TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "转入退款",
    "PAYERROR": "支付失败",
}


@dataclass
class Refund:
    mchid: str
    order: Order
    out_refund_no: str
    refund_id: str
    refund: int
    reason: str | None
    notify_url: str | None
    request: dict[str, Any]
    created_at: float
    status: str = "PROCESSING"
    success_time: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _now_str(self.created_at),
            "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": self.order.total,
                "refund": self.refund,
                "from": [],
                "payer_total": self.order.total,
                "payer_refund": self.refund,
                "settlement_refund": self.refund,
                "settlement_total": self.order.total,
                "discount_refund": 0,
                "currency": self.order.currency,
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if self.success_time:
            data["success_time"] = self.success_time
        return data

    def as_notification(self) -> dict[str, Any]:
        parties = ({"sp_mchid": self.order.sp_mchid, "sub_mchid": self.mchid} if self.order.sp_mchid
                   else {"mchid": self.mchid})
        data: dict[str, Any] = {
            **parties,
            "out_trade_no": self.order.out_trade_no,
            "transaction_id": self.order.transaction_id,
            "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id,
            "refund_status": self.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": self.order.total,
                "refund": self.refund,
                "payer_total": self.order.total,
                "payer_refund": self.refund,
            },
        }
        if self.success_time:
            data["success_time"] = self.success_time
        return data


@dataclass
class Transfer:
    mchid: str
    appid: str
    out_bill_no: str
    transfer_bill_no: str
    transfer_scene_id: str
    openid: str
    transfer_amount: int
    transfer_remark: str
    user_name: str | None
    notify_url: str | None
    request: dict[str, Any]
    package_info: str
    created_at: float
    updated_at: float
    state: str = "WAIT_USER_CONFIRM"
    fail_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mch_id": self.mchid,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "appid": self.appid,
            "state": self.state,
            "transfer_amount": self.transfer_amount,
            "transfer_remark": self.transfer_remark,
            "openid": self.openid,
            "create_time": _now_str(self.created_at),
            "update_time": _now_str(self.updated_at),
        }
        if self.fail_reason:
            data["fail_reason"] = self.fail_reason
        return data

    def as_notification(self) -> dict[str, Any]:
        keys = ("out_bill_no", "transfer_bill_no", "state", "mch_id", "transfer_amount")
        data = {k: v for k, v in self.as_json().items() if k in keys or k == "fail_reason"}
        data.update(
            openid=self.openid,
            create_time=_now_str(self.created_at),
            update_time=_now_str(self.updated_at),
        )
        return data


@dataclass
class Notification:
    id: str
    mchid: str
    url: str
    event_type: str
    plaintext: dict[str, Any]
    body: str
    headers: dict[str, str]
    tamper: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mchid": self.mchid,
            "url": self.url,
            "event_type": self.event_type,
            "resource": self.plaintext,
            "body": self.body,
            "headers": self.headers,
            "tamper": self.tamper,
            "attempts": list(self.attempts),
            "delivered": any(a.get("ok") for a in self.attempts),
        }


class FakePayError(Exception):
    """A WeChat Pay style error: HTTP status, ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _pay_error(status: int, code: str, message: str) -> HTTPError:
    return HTTPError(json_reply(status, {"code": code, "message": message}))


# =========================================================================== server
class WeChatPayServer(FakeServer):
    """Fake api.mch.weixin.qq.com. In-memory, thread-safe (one lock), real crypto."""

    def __init__(
        self,
        address: tuple[str, int] = ("127.0.0.1", 0),
        *,
        platform_key: PlatformKey | None = None,
        key_dir: str | os.PathLike[str] | None = None,
        auto_refund_seconds: float | None = None,
        notify_retry_delays: tuple[float, ...] = (),
        notify_timeout: float = 5.0,
    ) -> None:
        super().__init__(address, Handler)
        self.platform_key = platform_key or load_or_create_platform_key(key_dir)
        self.auto_refund_seconds = auto_refund_seconds
        self.notify_retry_delays = tuple(notify_retry_delays)
        self.notify_timeout = notify_timeout
        self.lock = threading.RLock()
        self.merchants: dict[str, Merchant] = {}
        # 特约商户 of a service provider (itself in ``merchants``), by sub_mchid
        self.sub_merchants: dict[str, Merchant] = {}
        self.orders: dict[tuple[str, str], Order] = {}
        self.refunds: dict[tuple[str, str], Refund] = {}
        self.transfers: dict[tuple[str, str], Transfer] = {}
        self.notifications: dict[str, Notification] = {}
        self.bill_files: dict[str, tuple[str, bytes, bool]] = {}
        # 分账: receivers per merchant {(type, account): {...}}, orders and returns by
        # (mchid, out_order_no) / (mchid, out_return_no), unfrozen transactions.
        self.ps_receivers: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self.ps_orders: dict[tuple[str, str], dict[str, Any]] = {}
        self.ps_returns: dict[tuple[str, str], dict[str, Any]] = {}
        self.ps_unfrozen: set[str] = set()

    @property
    def public_key_id(self) -> str:
        return self.platform_key.public_key_id

    @property
    def public_key_pem(self) -> str:
        return self.platform_key.public_key_pem

    # ------------------------------------------------------------------ Python API
    def register_merchant(
        self,
        mchid: str,
        appids: str | list[str],
        apiv3_key: str,
        *,
        merchant_public_key: str | None = None,
        merchant_certificate: str | None = None,
        merchant_serial_no: str | None = None,
    ) -> Merchant:
        """Register (or replace) a merchant whose requests the fake will accept.

        ``merchant_public_key`` is the PEM of the public half of ``apiclient_key.pem``;
        alternatively pass ``merchant_certificate`` (PEM of ``apiclient_cert.pem``), from which
        the key and the serial number are taken. Raises ``ValueError`` on bad input.
        """
        if not re.fullmatch(r"\d{6,32}", mchid or ""):
            raise ValueError("mchid must be digits")
        if len((apiv3_key or "").encode()) != 32:
            raise ValueError("apiv3_key must be exactly 32 bytes")
        if merchant_certificate:
            cert = x509.load_pem_x509_certificate(merchant_certificate.encode())
            pub = cert.public_key()
            if not isinstance(pub, rsa.RSAPublicKey):
                raise ValueError("certificate key is not RSA")
            serial = merchant_serial_no or format(cert.serial_number, "X")
        elif merchant_public_key:
            pub = load_public_key(merchant_public_key)
            if not merchant_serial_no:
                raise ValueError("merchant_serial_no is required with merchant_public_key")
            serial = merchant_serial_no
        else:
            raise ValueError("merchant_public_key or merchant_certificate is required")
        ids = {appids} if isinstance(appids, str) else set(appids)
        if not ids:
            raise ValueError("at least one appid is required")
        merchant = Merchant(mchid, ids, apiv3_key, pub, serial.upper())
        with self.lock:
            self.merchants[mchid] = merchant
        return merchant

    def register_sub_merchant(self, sp_mchid: str, sub_mchid: str, appids: str | list[str]) -> Merchant:
        """Register (or replace) ``sub_mchid`` as a sub-merchant (特约商户) of service provider
        ``sp_mchid`` (a registered merchant), with the appids (``sub_appid``) it may pay for.
        Partner-mode calls are signed, answered and notified with the provider's keys.
        Raises ``ValueError``."""
        if not re.fullmatch(r"\d{6,32}", sub_mchid or ""):
            raise ValueError("sub_mchid must be digits")
        ids = {appids} if isinstance(appids, str) else set(appids)
        with self.lock:
            sp = self.merchants.get(sp_mchid)
            if sp is None:
                raise ValueError("register the service provider first")
            sub = Merchant(sub_mchid, ids, sp.apiv3_key, sp.public_key, sp.serial_no, sp_mchid=sp_mchid)
            self.sub_merchants[sub_mchid] = sub
        return sub

    def _keys_of(self, mchid: str) -> Merchant:
        """The merchant whose keys notify ``mchid``: itself, or a sub-merchant's provider."""
        with self.lock:
            if mchid in self.merchants:
                return self.merchants[mchid]
            return self.merchants[self.sub_merchants[mchid].sp_mchid]

    def _acting(self, merchant: Merchant, sub_mchid: Any) -> Merchant:
        """The merchant a request acts for: the signer, or (service-provider mode) its
        sub-merchant ``sub_mchid``. 400 when that is not the signer's sub-merchant."""
        if not sub_mchid:
            return merchant
        with self.lock:
            sub = self.sub_merchants.get(str(sub_mchid))
        if sub is None or sub.sp_mchid != merchant.mchid:
            raise _pay_error(400, "NO_AUTH", "sub_mchid 不是该服务商的特约商户")
        return sub

    def order(self, out_trade_no: str, mchid: str | None = None) -> Order:
        with self.lock:
            found = [
                o for (m, no), o in self.orders.items() if no == out_trade_no and mchid in (None, m)
            ]
        if not found:
            raise FakePayError(404, "ORDER_NOT_EXIST", "订单不存在")
        if len(found) > 1:
            raise FakePayError(400, "PARAM_ERROR", "several merchants have it: pass mchid")
        return found[0]

    def mark_paid(
        self,
        out_trade_no: str | None = None,
        *,
        prepay_id: str | None = None,
        mchid: str | None = None,
        trade_state: str = "SUCCESS",
        **notify_options: Any,
    ) -> dict[str, Any]:
        """Simulate the payer paying. Returns ``{"order": ..., "notification": ...}``.

        ``trade_state="PAYERROR"`` marks it failed (no notification, like WeChat).
        ``notify_options`` go to :meth:`notify` (deliver, duplicates, tamper, timestamp_offset).
        Raises FakePayError.
        """
        if prepay_id:
            with self.lock:
                match = [o for o in self.orders.values() if o.prepay_id == prepay_id]
            if not match:
                raise FakePayError(404, "ORDER_NOT_EXIST", "prepay_id 不存在")
            order = match[0]
        elif out_trade_no:
            order = self.order(out_trade_no, mchid)
        else:
            raise FakePayError(400, "PARAM_ERROR", "out_trade_no or prepay_id is required")
        if trade_state not in ("SUCCESS", "PAYERROR"):
            raise FakePayError(400, "PARAM_ERROR", "trade_state must be SUCCESS or PAYERROR")
        with self.lock:
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise FakePayError(400, "ORDERPAID", "该订单已支付")
            if order.trade_state == "CLOSED":
                raise FakePayError(400, "ORDER_CLOSED", "订单已关闭")
            if order.time_expire and _parse_time(order.time_expire) < time.time():
                raise FakePayError(400, "ORDER_CLOSED", "订单已过期 (time_expire)")
            order.trade_state = trade_state
            if trade_state == "SUCCESS":
                order.transaction_id = "4200" + _now_digits() + _digits(10)
                order.success_time = _now_str()
            snapshot = order.as_transaction()
        merchant = self._keys_of(order.mchid)
        result: dict[str, Any] = {"order": snapshot, "notification": None}
        if trade_state == "SUCCESS":
            result["notification"] = self.notify(
                merchant,
                order.notify_url,
                "TRANSACTION.SUCCESS",
                "支付成功",
                "transaction",
                snapshot,
                **notify_options,
            )
        return result

    def complete_refund(
        self, out_refund_no: str, *, mchid: str | None = None, status: str = "SUCCESS", **opts: Any
    ) -> dict[str, Any]:
        """Finish a PROCESSING refund as SUCCESS / ABNORMAL / CLOSED and notify."""
        if status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
            raise FakePayError(400, "PARAM_ERROR", "status must be SUCCESS, ABNORMAL or CLOSED")
        with self.lock:
            found = [
                r
                for (m, no), r in self.refunds.items()
                if no == out_refund_no and mchid in (None, m)
            ]
            if len(found) != 1:
                raise FakePayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            refund = found[0]
            if refund.status != "PROCESSING":
                raise FakePayError(400, "INVALID_REQUEST", f"退款单状态为 {refund.status}")
            refund.status = status
            if status == "SUCCESS":
                refund.success_time = _now_str()
            else:
                refund.order.refunded -= refund.refund  # money goes back to refundable
            snapshot, plain = refund.as_json(), refund.as_notification()
            merchant, url = self._keys_of(refund.mchid), refund.notify_url
        result: dict[str, Any] = {"refund": snapshot, "notification": None}
        if url:
            summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
            result["notification"] = self.notify(
                merchant, url, f"REFUND.{status}", summary[status], "refund", plain, **opts
            )
        return result

    def complete_transfer(
        self,
        out_bill_no: str,
        *,
        mchid: str | None = None,
        state: str = "SUCCESS",
        fail_reason: str | None = None,
        **opts: Any,
    ) -> dict[str, Any]:
        """Simulate the user confirming (SUCCESS) or the transfer failing (FAIL), and notify."""
        if state not in ("SUCCESS", "FAIL"):
            raise FakePayError(400, "PARAM_ERROR", "state must be SUCCESS or FAIL")
        with self.lock:
            transfer = self._find_transfer(out_bill_no, mchid)
            if transfer.state not in ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING"):
                raise FakePayError(400, "INVALID_REQUEST", f"转账单状态为 {transfer.state}")
            transfer.state = state
            transfer.fail_reason = (fail_reason or "TRANSFER_RISK") if state == "FAIL" else None
            transfer.updated_at = time.time()
            snapshot = transfer.as_json()
        return {"transfer": snapshot, "notification": self._notify_transfer(transfer, **opts)}

    # ------------------------------------------------------------------ notifications
    def build_notification(
        self,
        merchant: Merchant,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        plaintext: dict[str, Any],
        *,
        tamper: str | None = None,
        timestamp_offset: int = 0,
    ) -> Notification:
        """Make a signed, encrypted notification (not sent).

        tamper: ``None``; ``"signature"`` (signed over other bytes); ``"body"`` (ciphertext
        altered after signing); ``"apiv3_key"`` (encrypted with a wrong key, correctly signed);
        ``"probe"`` (WeChat's ``WECHATPAY/SIGNTEST/`` signature probe).
        ``timestamp_offset``: seconds added to ``Wechatpay-Timestamp`` (e.g. -600 = stale).
        """
        key = merchant.apiv3_key if tamper != "apiv3_key" else secrets.token_hex(16)
        resource = aes_gcm_encrypt(key, json.dumps(plaintext, ensure_ascii=False), original_type)
        resource["original_type"] = original_type
        nid = str(uuid.uuid4())
        envelope = {
            "id": nid,
            "create_time": _now_str(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
        }
        body = json.dumps(envelope, ensure_ascii=False)
        ts = int(time.time()) + int(timestamp_offset)
        headers = signed_headers(
            self.platform_key.private_key, self.public_key_id, body, timestamp=ts
        )
        if tamper == "signature":
            headers = {
                **headers,
                "Wechatpay-Signature": signed_headers(
                    self.platform_key.private_key, self.public_key_id, body + " ", timestamp=ts
                )["Wechatpay-Signature"],
            }
        elif tamper == "probe":
            headers["Wechatpay-Signature"] = (
                "WECHATPAY/SIGNTEST/" + base64.b64encode(secrets.token_bytes(32)).decode()
            )
        elif tamper == "body":
            ct = bytearray(base64.b64decode(resource["ciphertext"]))
            ct[0] ^= 0x01
            envelope["resource"]["ciphertext"] = base64.b64encode(bytes(ct)).decode()
            body = json.dumps(envelope, ensure_ascii=False)
        elif tamper not in (None, "apiv3_key"):
            raise FakePayError(400, "PARAM_ERROR", f"unknown tamper {tamper!r}")
        headers["Content-Type"] = "application/json"
        return Notification(nid, merchant.mchid, url, event_type, plaintext, body, headers, tamper)

    def notify(
        self,
        merchant: Merchant,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        plaintext: dict[str, Any],
        *,
        deliver: bool = True,
        duplicates: int = 0,
        tamper: str | None = None,
        timestamp_offset: int = 0,
        sync: bool = True,
    ) -> dict[str, Any]:
        """Build a notification, remember it and (unless ``deliver=False``) POST it.

        ``duplicates``: send the same notification that many extra times.
        ``sync``: deliver before returning (default) or from a background thread.
        Undelivered notifications are retried on ``notify_retry_delays``.
        """
        note = self.build_notification(
            merchant,
            url,
            event_type,
            summary,
            original_type,
            plaintext,
            tamper=tamper,
            timestamp_offset=timestamp_offset,
        )
        with self.lock:
            self.notifications[note.id] = note
        if deliver:
            if sync:
                self._deliver_all(note, 1 + int(duplicates))
            else:
                threading.Thread(
                    target=self._deliver_all, args=(note, 1 + int(duplicates)), daemon=True
                ).start()
        with self.lock:
            return note.as_json()

    def redeliver(self, notification_id: str) -> dict[str, Any]:
        with self.lock:
            note = self.notifications.get(notification_id)
        if note is None:
            raise FakePayError(404, "NOT_FOUND", "no such notification")
        self._deliver(note)
        with self.lock:
            return note.as_json()

    def _deliver_all(self, note: Notification, times: int) -> None:
        ok = False
        for _ in range(times):
            ok = self._deliver(note) or ok
        if not ok and self.notify_retry_delays:
            self._schedule_retry(note, 0)

    def _schedule_retry(self, note: Notification, index: int) -> None:
        if index >= len(self.notify_retry_delays) or self.stop_event.is_set():
            return

        def retry() -> None:
            if self.stop_event.is_set():
                return
            if not self._deliver(note):
                self._schedule_retry(note, index + 1)

        timer = threading.Timer(self.notify_retry_delays[index], retry)
        timer.daemon = True
        timer.start()

    def _deliver(self, note: Notification) -> bool:
        attempt: dict[str, Any] = {"at": _now_str()}
        req = urllib.request.Request(
            note.url, data=note.body.encode("utf-8"), headers=note.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.notify_timeout) as resp:  # noqa: S310
                attempt["status"] = resp.status
                attempt["response"] = resp.read(2000).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            attempt["status"] = exc.code
            attempt["response"] = exc.read(2000).decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            attempt["error"] = f"{type(exc).__name__}: {exc}"
        # WeChat counts 200 and 204 as received; anything else is retried.
        attempt["ok"] = attempt.get("status") in (200, 204)
        with self.lock:
            note.attempts.append(attempt)
        return attempt["ok"]

    def _notify_transfer(self, transfer: Transfer, **opts: Any) -> dict[str, Any] | None:
        if not transfer.notify_url:
            return None
        with self.lock:
            merchant = self.merchants[transfer.mchid]
            plain = transfer.as_notification()
        return self.notify(
            merchant,
            transfer.notify_url,
            "MCHTRANSFER.BILL.FINISHED",
            "商家转账单据终态通知",
            "mch_payment",
            plain,
            **opts,
        )

    # ------------------------------------------------------------------ HTTP plumbing
    def default_error_reply(self) -> Reply:
        return json_reply(500, {"code": "SYSTEM_ERROR", "message": "系统错误"})

    def not_found_reply(self, request: Request) -> Reply:
        return json_reply(404, {"code": "NOT_FOUND", "message": f"无此接口 {request.path}"})

    def finish_reply(self, request: Request, reply: Reply) -> Reply:
        if request.path.startswith("/v3/") and reply.content_type.startswith("application/json"):
            body = reply.body.decode("utf-8")
            reply.headers.update(
                signed_headers(self.platform_key.private_key, self.public_key_id, body)
            )
            reply.headers["Request-ID"] = secrets.token_hex(16).upper()
        return reply

    def routes(self) -> list[Route]:
        pay = r"/v3/pay/transactions"
        partner = r"/v3/pay/partner/transactions"
        bills = r"/v3/fund-app/mch-transfer/transfer-bills"
        return [
            route("POST", pay + r"/jsapi", self.h_jsapi),
            route("GET", pay + r"/out-trade-no/(?P<no>[^/]+)", self.h_query),
            route("GET", pay + r"/id/(?P<tid>[^/]+)", self.h_query),
            route("POST", pay + r"/out-trade-no/(?P<no>[^/]+)/close", self.h_close),
            route("POST", partner + r"/jsapi", self.h_partner_jsapi),
            route("GET", partner + r"/out-trade-no/(?P<no>[^/]+)", self.h_partner_query),
            route("GET", partner + r"/id/(?P<tid>[^/]+)", self.h_partner_query),
            route("POST", partner + r"/out-trade-no/(?P<no>[^/]+)/close", self.h_partner_close),
            route("POST", r"/v3/refund/domestic/refunds", self.h_refund),
            route("GET", r"/v3/refund/domestic/refunds/(?P<no>[^/]+)", self.h_refund_query),
            route("POST", bills, self.h_transfer),
            route("GET", bills + r"/out-bill-no/(?P<no>[^/]+)", self.h_transfer_query),
            route("GET", bills + r"/transfer-bill-no/(?P<tno>[^/]+)", self.h_transfer_query),
            route("POST", bills + r"/out-bill-no/(?P<no>[^/]+)/cancel", self.h_transfer_cancel),
            route("GET", r"/v3/certificates", self.h_certificates),
            route("GET", r"/v3/bill/tradebill", self.h_trade_bill),
            route("GET", r"/v3/bill/fundflowbill", self.h_fundflow_bill),
            route("POST", r"/v3/profitsharing/receivers/add", self.h_ps_receiver_add),
            route("POST", r"/v3/profitsharing/orders", self.h_ps_order),
            route("POST", r"/v3/profitsharing/orders/unfreeze", self.h_ps_unfreeze),
            route("GET", r"/v3/profitsharing/orders/(?P<no>[^/?]+)", self.h_ps_order_query),
            route("POST", r"/v3/profitsharing/return-orders", self.h_ps_return),
            route("GET", r"/v3/profitsharing/return-orders/(?P<no>[^/?]+)", self.h_ps_return_query),
            route("GET", r"/v3/profitsharing/transactions/(?P<tid>[^/]+)/amounts", self.h_ps_amounts),
            route("GET", r"/v3/billdownload/file", self.h_bill_download),
            # control endpoints (not WeChat): see fakes/README.md
            route("GET", r"/_fake/health", self.c_health),
            route("GET", r"/_fake/platform-key", self.c_health),
            route("GET", r"/_fake/merchants", self.c_merchants),
            route("POST", r"/_fake/merchants", self.c_merchants),
            route("POST", r"/_fake/sub-merchants", self.c_sub_merchants),
            route("POST", r"/_fake/pay", self.c_pay),
            route("POST", r"/_fake/refund", self.c_refund),
            route("POST", r"/_fake/transfer", self.c_transfer),
            route("GET", r"/_fake/orders", self.c_orders),
            route("GET", r"/_fake/notifications", self.c_notifications),
            route("POST", r"/_fake/notifications/(?P<nid>[^/]+)/redeliver", self.c_redeliver),
            route("POST", r"/_fake/reset", self.c_reset),
            route("GET", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("POST", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("DELETE", r"/_fake/failures", lambda r: control_failures(self, r)),
        ]

    def _authenticate(self, request: Request) -> Merchant:
        """Check the WECHATPAY2-SHA256-RSA2048 Authorization header; 401 SIGN_ERROR if bad."""
        auth = request.headers.get("Authorization", "")
        scheme, _, rest = auth.partition(" ")
        if scheme != SIGNATURE_TYPE:
            raise _pay_error(401, "SIGN_ERROR", "Authorization 缺失或认证类型不正确")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - set(params)
        if missing:
            raise _pay_error(401, "SIGN_ERROR", f"Authorization 缺少 {sorted(missing)}")
        with self.lock:
            merchant = self.merchants.get(params["mchid"])
        if merchant is None:
            raise _pay_error(401, "SIGN_ERROR", "商户号未在 fake 注册 (POST /_fake/merchants)")
        if params["serial_no"].upper() != merchant.serial_no:
            raise _pay_error(401, "SIGN_ERROR", "商户证书序列号不正确")
        try:
            skew = abs(time.time() - int(params["timestamp"]))
        except ValueError:
            raise _pay_error(401, "SIGN_ERROR", "timestamp 格式错误") from None
        if skew > MAX_SKEW_SECONDS:
            raise _pay_error(401, "SIGN_ERROR", "请求时间戳与当前时间相差超过 5 分钟")
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise _pay_error(400, "PARAM_ERROR", "body 不是 UTF-8") from None
        message = (
            f"{request.method}\n{request.target}\n{params['timestamp']}\n"
            f"{params['nonce_str']}\n{body}\n"
        )
        if not rsa_verify(merchant.public_key, message, params["signature"]):
            raise _pay_error(401, "SIGN_ERROR", "签名错误")
        serial = request.headers.get("Wechatpay-Serial")
        if serial and serial != self.public_key_id:
            raise _pay_error(400, "PARAM_ERROR", "Wechatpay-Serial 不是本 fake 的微信支付公钥 ID")
        return merchant

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            data = request.json()
        except ValueError:
            raise _pay_error(400, "PARAM_ERROR", "body 不是合法 JSON") from None
        if not isinstance(data, dict):
            raise _pay_error(400, "PARAM_ERROR", "body 应为 JSON 对象")
        return data

    @staticmethod
    def _require(data: dict[str, Any], *names: str) -> None:
        for name in names:
            if data.get(name) in (None, "", [], {}):
                raise _pay_error(400, "PARAM_ERROR", f"缺少参数 {name}")

    def _check_mchid(self, merchant: Merchant, mchid: Any) -> None:
        if mchid != merchant.mchid:
            raise _pay_error(400, "PARAM_ERROR", "mchid 与请求签名的商户号不一致")

    # ------------------------------------------------------------------ /v3 handlers
    def h_jsapi(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        data = self._body(request)
        self._require(data, "appid", "mchid", "description", "out_trade_no", "notify_url")
        self._require(data, "amount", "payer")
        self._check_mchid(merchant, data["mchid"])
        if data["appid"] not in merchant.appids:
            raise _pay_error(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
        openid = data["payer"].get("openid")
        if not openid:
            raise _pay_error(400, "PARAM_ERROR", "缺少参数 payer.openid")
        return self._jsapi_order(merchant, data, appid=data["appid"], openid=openid)

    def h_partner_jsapi(self, request: Request) -> Reply:
        """服务商 JSAPI 下单: signed by the provider (``sp_mchid``) for its sub-merchant
        ``sub_mchid``; the payer is ``sub_openid`` of ``sub_appid`` (or ``sp_openid``)."""
        sp = self._authenticate(request)
        data = self._body(request)
        self._require(data, "sp_appid", "sp_mchid", "sub_mchid", "description", "out_trade_no")
        self._require(data, "notify_url", "amount", "payer")
        self._check_mchid(sp, data["sp_mchid"])
        if data["sp_appid"] not in sp.appids:
            raise _pay_error(400, "APPID_MCHID_NOT_MATCH", "sp_appid 和 sp_mchid 不匹配")
        sub = self._acting(sp, data["sub_mchid"])
        sub_appid = data.get("sub_appid")
        if sub_appid and sub_appid not in sub.appids:
            raise _pay_error(400, "APPID_MCHID_NOT_MATCH", "sub_appid 和 sub_mchid 不匹配")
        openid = data["payer"].get("sub_openid") if sub_appid else data["payer"].get("sp_openid")
        if not openid:
            raise _pay_error(400, "PARAM_ERROR", "缺少参数 payer.sub_openid" if sub_appid else "缺少参数 payer.sp_openid")
        return self._jsapi_order(sub, data, appid=sub_appid or data["sp_appid"], openid=openid,
                                 sp_mchid=sp.mchid, sp_appid=data["sp_appid"])

    def _jsapi_order(self, merchant: Merchant, data: dict[str, Any], *, appid: str, openid: str,
                     sp_mchid: str = "", sp_appid: str = "") -> Reply:
        """Create (or repeat) the order of ``merchant`` (the merchant of record)."""
        no = data["out_trade_no"]
        if not re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", no):
            raise _pay_error(400, "PARAM_ERROR", "out_trade_no 须为 6-32 位字母数字 _-|*")
        total = data["amount"].get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise _pay_error(400, "PARAM_ERROR", "amount.total 须为正整数 (分)")
        currency = data["amount"].get("currency", "CNY")
        if not str(data["notify_url"]).startswith(("http://", "https://")):
            raise _pay_error(400, "PARAM_ERROR", "notify_url 格式错误")
        with self.lock:
            existing = self.orders.get((merchant.mchid, no))
            if existing is not None:
                if existing.trade_state in ("SUCCESS", "REFUND"):
                    raise _pay_error(400, "ORDERPAID", "该订单已支付")
                if existing.trade_state == "CLOSED":
                    raise _pay_error(400, "ORDER_CLOSED", "订单已关闭")
                if existing.request != data:
                    raise _pay_error(400, "INVALID_REQUEST", "201 商户订单号重复")
                existing.prepay_id = _prepay_id()
                return json_reply(200, {"prepay_id": existing.prepay_id})
            order = Order(
                mchid=merchant.mchid,
                appid=appid,
                out_trade_no=no,
                description=data["description"],
                notify_url=data["notify_url"],
                total=total,
                currency=currency,
                openid=openid,
                request=data,
                prepay_id=_prepay_id(),
                created_at=time.time(),
                attach=data.get("attach"),
                time_expire=data.get("time_expire"),
                sp_mchid=sp_mchid,
                sp_appid=sp_appid,
            )
            self.orders[(merchant.mchid, no)] = order
        return json_reply(200, {"prepay_id": order.prepay_id})

    def h_query(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        self._check_mchid(merchant, request.query.get("mchid"))
        return self._order_query(merchant, request)

    def h_partner_query(self, request: Request) -> Reply:
        sp = self._authenticate(request)
        self._check_mchid(sp, request.query.get("sp_mchid"))
        if not request.query.get("sub_mchid"):
            raise _pay_error(400, "PARAM_ERROR", "缺少参数 sub_mchid")
        return self._order_query(self._acting(sp, request.query["sub_mchid"]), request)

    def _order_query(self, merchant: Merchant, request: Request) -> Reply:
        with self.lock:
            if "no" in request.params:
                order = self.orders.get((merchant.mchid, request.params["no"]))
            else:
                tid = request.params["tid"]
                order = next(
                    (
                        o
                        for o in self.orders.values()
                        if o.mchid == merchant.mchid and o.transaction_id == tid
                    ),
                    None,
                )
            if order is None:
                raise _pay_error(404, "ORDER_NOT_EXIST", "订单不存在")
            return json_reply(200, order.as_transaction())

    def h_close(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        data = self._body(request)
        self._check_mchid(merchant, data.get("mchid"))
        return self._order_close(merchant, request)

    def h_partner_close(self, request: Request) -> Reply:
        sp = self._authenticate(request)
        data = self._body(request)
        self._check_mchid(sp, data.get("sp_mchid"))
        self._require(data, "sub_mchid")
        return self._order_close(self._acting(sp, data["sub_mchid"]), request)

    def _order_close(self, merchant: Merchant, request: Request) -> Reply:
        with self.lock:
            order = self.orders.get((merchant.mchid, request.params["no"]))
            if order is None:
                raise _pay_error(404, "ORDER_NOT_EXIST", "订单不存在")
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise _pay_error(400, "ORDERPAID", "订单已支付，不能关单")
            order.trade_state = "CLOSED"
        return Reply(204)

    def h_refund(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        data = self._body(request)
        merchant = self._acting(merchant, data.get("sub_mchid"))  # service-provider mode
        self._require(data, "out_refund_no", "amount")
        amount = data["amount"]
        refund_fen, total = amount.get("refund"), amount.get("total")
        for name, value in (("refund", refund_fen), ("total", total)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _pay_error(400, "PARAM_ERROR", f"amount.{name} 须为正整数 (分)")
        with self.lock:
            if data.get("transaction_id"):
                order = next(
                    (
                        o
                        for o in self.orders.values()
                        if o.mchid == merchant.mchid and o.transaction_id == data["transaction_id"]
                    ),
                    None,
                )
            elif data.get("out_trade_no"):
                order = self.orders.get((merchant.mchid, data["out_trade_no"]))
            else:
                raise _pay_error(400, "PARAM_ERROR", "缺少参数 transaction_id 或 out_trade_no")
            if order is None:
                raise _pay_error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            key = (merchant.mchid, data["out_refund_no"])
            existing = self.refunds.get(key)
            if existing is not None:
                if existing.request != data:
                    raise _pay_error(400, "INVALID_REQUEST", "退款单号重复，且参数与原请求不一致")
                return json_reply(200, existing.as_json())
            if order.trade_state not in ("SUCCESS", "REFUND"):
                raise _pay_error(400, "INVALID_REQUEST", "订单未支付，不能退款")
            if total != order.total:
                raise _pay_error(400, "INVALID_REQUEST", "amount.total 与原订单金额不一致")
            if order.refunded + refund_fen > order.total:
                raise _pay_error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            refund = Refund(
                mchid=merchant.mchid,
                order=order,
                out_refund_no=data["out_refund_no"],
                refund_id="50" + _now_digits() + _digits(13),
                refund=refund_fen,
                reason=data.get("reason"),
                notify_url=data.get("notify_url"),
                request=data,
                created_at=time.time(),
            )
            order.refunded += refund_fen
            order.trade_state = "REFUND"
            self.refunds[key] = refund
            snapshot = refund.as_json()
        if self.auto_refund_seconds is not None:
            timer = threading.Timer(self.auto_refund_seconds, self._auto_refund, args=(key,))
            timer.daemon = True
            timer.start()
        return json_reply(200, snapshot)

    def _auto_refund(self, key: tuple[str, str]) -> None:
        if self.stop_event.is_set():
            return
        try:
            self.complete_refund(key[1], mchid=key[0])
        except FakePayError:
            pass  # already completed by hand

    def h_refund_query(self, request: Request) -> Reply:
        merchant = self._acting(self._authenticate(request), request.query.get("sub_mchid"))
        with self.lock:
            refund = self.refunds.get((merchant.mchid, request.params["no"]))
            if refund is None:
                raise _pay_error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return json_reply(200, refund.as_json())

    def h_transfer(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        data = self._body(request)
        self._require(
            data, "appid", "out_bill_no", "transfer_scene_id", "openid", "transfer_amount"
        )
        self._require(data, "transfer_remark", "transfer_scene_report_infos")
        if data["appid"] not in merchant.appids:
            raise _pay_error(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
        if not re.fullmatch(r"[0-9A-Za-z]{5,32}", data["out_bill_no"]):
            raise _pay_error(400, "PARAM_ERROR", "out_bill_no 须为 5-32 位字母数字")
        amount = data["transfer_amount"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
            raise _pay_error(400, "PARAM_ERROR", "transfer_amount 须为正整数 (分)")
        user_name = None
        if data.get("user_name"):
            if request.headers.get("Wechatpay-Serial") != self.public_key_id:
                raise _pay_error(400, "PARAM_ERROR", "加密字段须带 Wechatpay-Serial 请求头")
            try:
                user_name = self.platform_key.private_key.decrypt(
                    base64.b64decode(data["user_name"]),
                    padding.OAEP(
                        mgf=padding.MGF1(algorithm=hashes.SHA1()),
                        algorithm=hashes.SHA1(),
                        label=None,
                    ),
                ).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise _pay_error(400, "PARAM_ERROR", "user_name 解密失败") from None
        elif amount >= 200000:
            raise _pay_error(400, "PARAM_ERROR", "转账金额 >= 2000 元时 user_name 必填")
        with self.lock:
            key = (merchant.mchid, data["out_bill_no"])
            existing = self.transfers.get(key)
            if existing is not None:
                same = {k: v for k, v in existing.request.items() if k != "user_name"} == {
                    k: v for k, v in data.items() if k != "user_name"
                }
                if not same:
                    raise _pay_error(400, "INVALID_REQUEST", "商户单号重复，且参数与原请求不一致")
                transfer = existing
            else:
                now = time.time()
                transfer = Transfer(
                    mchid=merchant.mchid,
                    appid=data["appid"],
                    out_bill_no=data["out_bill_no"],
                    transfer_bill_no="1330000" + _now_digits() + _digits(19),
                    transfer_scene_id=str(data["transfer_scene_id"]),
                    openid=data["openid"],
                    transfer_amount=amount,
                    transfer_remark=data["transfer_remark"],
                    user_name=user_name,
                    notify_url=data.get("notify_url"),
                    request=data,
                    package_info=base64.b64encode(secrets.token_bytes(48)).decode(),
                    created_at=now,
                    updated_at=now,
                )
                self.transfers[key] = transfer
            reply = {
                "out_bill_no": transfer.out_bill_no,
                "transfer_bill_no": transfer.transfer_bill_no,
                "create_time": _now_str(transfer.created_at),
                "state": transfer.state,
            }
            if transfer.state == "WAIT_USER_CONFIRM":
                reply["package_info"] = transfer.package_info
        return json_reply(200, reply)

    def _find_transfer(
        self, out_bill_no: str | None, mchid: str | None, transfer_bill_no: str | None = None
    ) -> Transfer:
        """Caller holds the lock."""
        for (m, no), t in self.transfers.items():
            if mchid not in (None, m):
                continue
            if (out_bill_no and no == out_bill_no) or (
                transfer_bill_no and t.transfer_bill_no == transfer_bill_no
            ):
                return t
        raise FakePayError(404, "NOT_FOUND", "记录不存在")

    def h_transfer_query(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        with self.lock:
            try:
                transfer = self._find_transfer(
                    request.params.get("no"), merchant.mchid, request.params.get("tno")
                )
            except FakePayError as exc:
                raise _pay_error(exc.status, exc.code, exc.message) from None
            return json_reply(200, transfer.as_json())

    def h_transfer_cancel(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        with self.lock:
            try:
                transfer = self._find_transfer(request.params["no"], merchant.mchid)
            except FakePayError as exc:
                raise _pay_error(exc.status, exc.code, exc.message) from None
            if transfer.state in ("CANCELING", "CANCELLED"):
                return json_reply(
                    200,
                    {
                        "out_bill_no": transfer.out_bill_no,
                        "transfer_bill_no": transfer.transfer_bill_no,
                        "state": transfer.state,
                        "update_time": _now_str(transfer.updated_at),
                    },
                )
            if transfer.state not in ("ACCEPTED", "WAIT_USER_CONFIRM"):
                raise _pay_error(400, "INVALID_REQUEST", f"转账单状态为 {transfer.state}，不可撤销")
            # WeChat answers CANCELING and later reaches CANCELLED; the fake gets there at once.
            transfer.state = "CANCELLED"
            transfer.updated_at = time.time()
            reply = {
                "out_bill_no": transfer.out_bill_no,
                "transfer_bill_no": transfer.transfer_bill_no,
                "state": "CANCELING",
                "update_time": _now_str(transfer.updated_at),
            }
        threading.Thread(target=self._notify_transfer, args=(transfer,), daemon=True).start()
        return json_reply(200, reply)

    # ------------------------------------------------------------------ bills
    BILL_HEADER = (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
        "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
        "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
        "费率备注"
    )
    BILL_FEE_RATE = 0.006  # 0.60 %, the fee column (rounded half up to the fen)

    def trade_bill(self, mchid: str, bill_date: str) -> str:
        """The merchant's trade bill (bill_type ALL) of one China-time day, as WeChat's CSV:
        a header, one line per successful payment (SUCCESS) and per successful refund
        (REFUND) that day, each field prefixed with a backquote, then the totals. Amounts
        in yuan with two decimals. Raises FakePayError NO_STATEMENT_EXIST when the day has
        no line."""

        def fen(n: int) -> str:
            return f"{n / 100:.2f}"

        def fee(n: int) -> int:
            return int(n * self.BILL_FEE_RATE + 0.5)

        rows, paid, refunded, fees, ordered, asked = [], 0, 0, 0, 0, 0
        with self.lock:
            for order in self.orders.values():
                if order.mchid != mchid or not order.success_time or not order.success_time.startswith(bill_date):
                    continue
                paid, fees, ordered = paid + order.total, fees + fee(order.total), ordered + order.total
                rows.append([order.success_time.replace("T", " ")[:19], order.appid, mchid, "0", "",
                             order.transaction_id, order.out_trade_no, order.openid, "JSAPI",
                             "SUCCESS", "OTHERS", "CNY", fen(order.total), "0.00", "0", "0", "0.00",
                             "0.00", "", "", order.description, order.attach or "",
                             fen(fee(order.total)), "0.60%", fen(order.total), "0.00", ""])
            for refund in self.refunds.values():
                if (refund.mchid != mchid or refund.status != "SUCCESS"
                        or not (refund.success_time or "").startswith(bill_date)):
                    continue
                order = refund.order
                refunded, fees, asked = refunded + refund.refund, fees - fee(refund.refund), asked + refund.refund
                rows.append([refund.success_time.replace("T", " ")[:19], order.appid, mchid, "0", "",
                             order.transaction_id, order.out_trade_no, order.openid, "JSAPI",
                             "REFUND", "OTHERS", "CNY", "0.00", "0.00", refund.refund_id,
                             refund.out_refund_no, fen(refund.refund), "0.00", "ORIGINAL", "SUCCESS",
                             order.description, order.attach or "", fen(-fee(refund.refund)), "0.60%",
                             "0.00", fen(refund.refund), ""])
        if not rows:
            raise FakePayError(400, "NO_STATEMENT_EXIST", "账单不存在 (当日无交易)")
        rows.sort(key=lambda r: r[0])
        lines = [self.BILL_HEADER, *(",".join("`" + v for v in row) for row in rows)]
        lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
        lines.append(",".join("`" + v for v in (str(len(rows)), fen(paid), fen(refunded), "0.00",
                                                fen(fees), fen(ordered), fen(asked))))
        return "\r\n".join(lines) + "\r\n"

    def h_trade_bill(self, request: Request) -> Reply:
        """申请交易账单: ``{hash_type: SHA1, hash_value, download_url}``; the hash is of the
        bill file as downloaded (gzip when tar_type=GZIP). A provider names its sub-merchant
        by ``sub_mchid``."""
        merchant = self._acting(self._authenticate(request), request.query.get("sub_mchid"))
        bill_date = request.query.get("bill_date", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", bill_date):
            raise _pay_error(400, "PARAM_ERROR", "bill_date 格式应为 YYYY-MM-DD")
        if request.query.get("bill_type", "ALL") not in ("ALL", "SUCCESS", "REFUND"):
            raise _pay_error(400, "PARAM_ERROR", "bill_type 不正确")
        try:
            text = self.trade_bill(merchant.mchid, bill_date)
        except FakePayError as exc:
            raise _pay_error(exc.status, exc.code, exc.message) from None
        data = text.encode("utf-8")
        if request.query.get("tar_type") == "GZIP":
            data = gzip.compress(data, mtime=0)
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.bill_files[token] = (merchant.mchid, data, request.query.get("tar_type") == "GZIP")
        return json_reply(200, {
            "hash_type": "SHA1", "hash_value": hashlib.sha1(data).hexdigest(),
            "download_url": f"{self.url}/v3/billdownload/file?token={token}",
        })

    FUNDFLOW_HEADER = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),资金变更提交申请人,备注,业务凭证号"

    def fundflow_bill(self, mchid: str, bill_date: str) -> str:
        """The merchant's fund-flow bill (资金账单, account BASIC) of one China-time day, as
        WeChat's CSV: a header, one line per movement of the basic account that day — 交易
        (收入, a payment), 扣除交易手续费 (支出, its fee), 退款 (支出), 商家转账 (支出, a
        successful transfer), 分账 (支出, each successful profit-sharing receiver), 分账回退
        (收入) — with the running balance, every field prefixed with a backquote, then the
        totals. 业务凭证号 is the merchant's own number (out_trade_no, out_refund_no,
        out_bill_no, out_order_no, out_return_no). Raises FakePayError NO_STATEMENT_EXIST
        when the day has no movement."""

        def fee(n: int) -> int:
            return int(n * self.BILL_FEE_RATE + 0.5)

        moves: list[tuple[str, str, str, str, int, str]] = []  # time, wx no, type, in/out, fen, voucher
        with self.lock:
            for order in self.orders.values():
                if order.mchid == mchid and (order.success_time or "").startswith(bill_date):
                    moves.append((order.success_time, order.transaction_id or "", "交易", "收入",
                                  order.total, order.out_trade_no))
                    moves.append((order.success_time, order.transaction_id or "", "扣除交易手续费",
                                  "支出", fee(order.total), order.out_trade_no))
            for refund in self.refunds.values():
                if (refund.mchid == mchid and refund.status == "SUCCESS"
                        and (refund.success_time or "").startswith(bill_date)):
                    moves.append((refund.success_time, refund.refund_id, "退款", "支出",
                                  refund.refund, refund.out_refund_no))
                    moves.append((refund.success_time, refund.refund_id, "扣除交易手续费", "收入",
                                  fee(refund.refund), refund.out_refund_no))
            for (m, _no), transfer in self.transfers.items():
                stamp = _now_str(transfer.updated_at)
                if m == mchid and transfer.state == "SUCCESS" and stamp.startswith(bill_date):
                    moves.append((stamp, transfer.transfer_bill_no, "商家转账", "支出",
                                  transfer.transfer_amount, transfer.out_bill_no))
            for (m, no), split in self.ps_orders.items():
                for r in split["receivers"] if m == mchid else []:
                    if r.get("result") == "SUCCESS" and (r.get("finish_time") or "").startswith(bill_date):
                        moves.append((r["finish_time"], split["order_id"], "分账", "支出", r["amount"], no))
            for (m, no), ret in self.ps_returns.items():
                if m == mchid and ret["result"] == "SUCCESS" and ret["finish_time"].startswith(bill_date):
                    moves.append((ret["finish_time"], ret["return_id"], "分账回退", "收入", ret["amount"], no))
        if not moves:
            raise FakePayError(400, "NO_STATEMENT_EXIST", "账单不存在 (当日无资金变动)")
        moves.sort(key=lambda m: m[0])
        lines, balance, income, expense = [self.FUNDFLOW_HEADER], 0, 0, 0
        n_in = n_out = 0
        for stamp, wx_no, kind, direction, fen_, voucher in moves:
            if direction == "收入":
                balance, income, n_in = balance + fen_, income + fen_, n_in + 1
            else:
                balance, expense, n_out = balance - fen_, expense + fen_, n_out + 1
            lines.append(",".join("`" + v for v in (
                stamp.replace("T", " ")[:19], wx_no, _digits(20), kind, kind, direction,
                f"{fen_ / 100:.2f}", f"{balance / 100:.2f}", "system", "", voucher)))
        lines.append("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额")
        lines.append(",".join("`" + v for v in (str(len(moves)), str(n_in), f"{income / 100:.2f}",
                                                str(n_out), f"{expense / 100:.2f}")))
        return "\r\n".join(lines) + "\r\n"

    def h_fundflow_bill(self, request: Request) -> Reply:
        """申请资金账单: like the trade bill (hash and download_url), for account_type BASIC."""
        merchant = self._authenticate(request)
        bill_date = request.query.get("bill_date", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", bill_date):
            raise _pay_error(400, "PARAM_ERROR", "bill_date 格式应为 YYYY-MM-DD")
        if request.query.get("account_type", "BASIC") not in ("BASIC", "OPERATION", "FEES"):
            raise _pay_error(400, "PARAM_ERROR", "account_type 不正确")
        try:
            text = self.fundflow_bill(merchant.mchid, bill_date)
        except FakePayError as exc:
            raise _pay_error(exc.status, exc.code, exc.message) from None
        return self._bill_file(merchant, text, gzip_it=request.query.get("tar_type") == "GZIP")

    def _bill_file(self, merchant: Merchant, text: str, *, gzip_it: bool) -> Reply:
        data = text.encode("utf-8")
        if gzip_it:
            data = gzip.compress(data, mtime=0)
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.bill_files[token] = (merchant.mchid, data, gzip_it)
        return json_reply(200, {
            "hash_type": "SHA1", "hash_value": hashlib.sha1(data).hexdigest(),
            "download_url": f"{self.url}/v3/billdownload/file?token={token}",
        })

    def h_bill_download(self, request: Request) -> Reply:
        """下载账单: the file behind a download_url (signed request, unsigned raw reply)."""
        merchant = self._authenticate(request)
        with self.lock:
            found = self.bill_files.get(request.query.get("token", ""))
        if found is None or found[0] != merchant.mchid:
            raise _pay_error(400, "INVALID_REQUEST", "下载地址无效或已过期")
        kind = "application/octet-stream" if found[2] else "text/plain; charset=utf-8"
        return Reply(200, found[1], kind)

    # ------------------------------------------------------------------ 分账 (profit sharing)
    PS_MAX_RATIO = 0.30  # of the order amount, over all of a transaction's profit sharing
    PS_TYPES = ("MERCHANT_ID", "PERSONAL_OPENID", "PERSONAL_SUB_OPENID")

    def _decrypt_field(self, request: Request, value: str, name: str) -> str:
        """A field encrypted with the platform public key (RSA-OAEP, SHA-1), as the SDK sends."""
        if request.headers.get("Wechatpay-Serial") != self.public_key_id:
            raise _pay_error(400, "PARAM_ERROR", "加密字段须带 Wechatpay-Serial 请求头")
        try:
            return self.platform_key.private_key.decrypt(
                base64.b64decode(value),
                padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
            ).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise _pay_error(400, "PARAM_ERROR", f"{name} 解密失败") from None

    def h_ps_receiver_add(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        data = self._body(request)
        self._require(data, "appid", "type", "account", "relation_type")
        if data["appid"] not in merchant.appids:
            raise _pay_error(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
        if data["type"] not in self.PS_TYPES:
            raise _pay_error(400, "PARAM_ERROR", "type 不正确")
        name = self._decrypt_field(request, data["name"], "name") if data.get("name") else None
        if data["type"] == "MERCHANT_ID" and not name:
            raise _pay_error(400, "PARAM_ERROR", "商户类型接收方须填写 name (商户全称)")
        if data["relation_type"] == "CUSTOM" and not data.get("custom_relation"):
            raise _pay_error(400, "PARAM_ERROR", "relation_type 为 CUSTOM 时须填写 custom_relation")
        merchant = self._acting(merchant, data.get("sub_mchid"))  # service-provider mode
        if data.get("sub_appid") and data["sub_appid"] not in merchant.appids:
            raise _pay_error(400, "APPID_MCHID_NOT_MATCH", "sub_appid 和 sub_mchid 不匹配")
        if data["type"] == "PERSONAL_SUB_OPENID" and not data.get("sub_appid"):
            raise _pay_error(400, "PARAM_ERROR", "PERSONAL_SUB_OPENID 须填写 sub_appid")
        receiver = {"type": data["type"], "account": data["account"], "relation_type": data["relation_type"],
                    "custom_relation": data.get("custom_relation"), "name": name}
        with self.lock:
            self.ps_receivers.setdefault(merchant.mchid, {})[(data["type"], data["account"])] = receiver
        reply = {k: v for k, v in receiver.items() if k != "name" and v is not None}
        return json_reply(200, reply)

    def _ps_order_for(self, merchant: Merchant, transaction_id: str) -> Order:
        order = next((o for o in self.orders.values()
                      if o.mchid == merchant.mchid and o.transaction_id == transaction_id), None)
        if order is None:
            raise _pay_error(404, "RESOURCE_NOT_EXISTS", "微信订单号不存在")
        return order

    def ps_shared(self, mchid: str, transaction_id: str) -> int:
        """Fen already split (not returned) from one transaction. Caller holds the lock."""
        return sum(r["amount"] for (m, _no), o in self.ps_orders.items() if m == mchid
                   and o["transaction_id"] == transaction_id for r in o["receivers"]) - sum(
            r["amount"] for (m, _no), r in self.ps_returns.items() if m == mchid
            and r["transaction_id"] == transaction_id and r["result"] == "SUCCESS")

    def h_ps_order(self, request: Request) -> Reply:
        """请求分账: answered PROCESSING with every receiver PENDING; the split is done
        (FINISHED, receivers SUCCESS) when it is next queried — the result must be queried."""
        merchant = self._authenticate(request)
        data = self._body(request)
        self._require(data, "appid", "transaction_id", "out_order_no", "receivers")
        merchant = self._acting(merchant, data.get("sub_mchid"))  # service-provider mode
        if not isinstance(data.get("unfreeze_unsplit"), bool):
            raise _pay_error(400, "PARAM_ERROR", "缺少参数 unfreeze_unsplit")
        no = data["out_order_no"]
        if not re.fullmatch(r"[0-9A-Za-z_\-|*@]{1,64}", no):
            raise _pay_error(400, "PARAM_ERROR", "out_order_no 格式错误")
        receivers = data["receivers"]
        if not isinstance(receivers, list) or not 1 <= len(receivers) <= 50:
            raise _pay_error(400, "PARAM_ERROR", "receivers 须为 1-50 个接收方")
        with self.lock:
            existing = self.ps_orders.get((merchant.mchid, no))
            if existing is not None:
                if existing["request"] != data:
                    raise _pay_error(400, "INVALID_REQUEST", "商户分账单号重复，且参数不一致")
                return json_reply(200, self._ps_order_json(existing))
            order = self._ps_order_for(merchant, data["transaction_id"])
            if order.trade_state not in ("SUCCESS", "REFUND"):
                raise _pay_error(400, "INVALID_REQUEST", "订单未支付，不能分账")
            if not (order.request.get("settle_info") or {}).get("profit_sharing"):
                raise _pay_error(400, "INVALID_REQUEST", "该订单下单时未指定需要分账 (settle_info.profit_sharing)")
            if data["transaction_id"] in self.ps_unfrozen:
                raise _pay_error(400, "INVALID_REQUEST", "订单剩余资金已解冻，不能再分账")
            known = self.ps_receivers.get(merchant.mchid, {})
            total = 0
            for r in receivers:
                amount = r.get("amount")
                if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
                    raise _pay_error(400, "PARAM_ERROR", "receivers.amount 须为正整数 (分)")
                if (r.get("type"), r.get("account")) not in known:
                    raise _pay_error(400, "RECEIVER_INVALID", f"分账接收方 {r.get('account')} 未添加")
                if not r.get("description"):
                    raise _pay_error(400, "PARAM_ERROR", "缺少参数 receivers.description")
                total += amount
            limit = int(order.total * self.PS_MAX_RATIO) - self.ps_shared(merchant.mchid, order.transaction_id)
            if total > limit:
                raise _pay_error(400, "RULE_LIMIT", f"分账金额超出最大分账比例 (剩余可分 {limit} 分)")
            if total > order.total - order.refunded - self.ps_shared(merchant.mchid, order.transaction_id):
                raise _pay_error(400, "NOT_ENOUGH", "分账金额不足")
            now = _now_str()
            made = {
                "transaction_id": order.transaction_id, "out_order_no": no,
                "order_id": "3008" + _now_digits() + _digits(8), "state": "PROCESSING",
                "request": data, "unfreeze_unsplit": data["unfreeze_unsplit"],
                "receivers": [
                    {"amount": r["amount"], "description": r["description"], "type": r["type"],
                     "account": r["account"], "result": "PENDING", "detail_id": "3600" + _digits(24),
                     "create_time": now}
                    for r in receivers
                ],
            }
            self.ps_orders[(merchant.mchid, no)] = made
            if data["unfreeze_unsplit"]:
                self.ps_unfrozen.add(order.transaction_id)
            return json_reply(200, self._ps_order_json(made))

    @staticmethod
    def _ps_order_json(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if k not in ("request", "unfreeze_unsplit")}

    def h_ps_order_query(self, request: Request) -> Reply:
        merchant = self._acting(self._authenticate(request), request.query.get("sub_mchid"))
        with self.lock:
            order = self.ps_orders.get((merchant.mchid, request.params["no"]))
            if order is None or order["transaction_id"] != request.query.get("transaction_id"):
                raise _pay_error(404, "RESOURCE_NOT_EXISTS", "分账单不存在")
            if order["state"] == "PROCESSING":
                order["state"] = "FINISHED"
                for r in order["receivers"]:
                    r["result"], r["finish_time"] = "SUCCESS", _now_str()
            return json_reply(200, self._ps_order_json(order))

    def h_ps_unfreeze(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        data = self._body(request)
        self._require(data, "transaction_id", "out_order_no", "description")
        merchant = self._acting(merchant, data.get("sub_mchid"))
        with self.lock:
            order = self._ps_order_for(merchant, data["transaction_id"])
            self.ps_unfrozen.add(order.transaction_id)
            made = {"transaction_id": order.transaction_id, "out_order_no": data["out_order_no"],
                    "order_id": "3008" + _now_digits() + _digits(8), "state": "FINISHED",
                    "receivers": [], "request": data}
            self.ps_orders.setdefault((merchant.mchid, data["out_order_no"]), made)
            return json_reply(200, self._ps_order_json(self.ps_orders[(merchant.mchid, data["out_order_no"])]))

    def h_ps_return(self, request: Request) -> Reply:
        """请求分账回退: only from a MERCHANT_ID receiver of the split, up to what it got."""
        merchant = self._authenticate(request)
        data = self._body(request)
        self._require(data, "out_return_no", "return_mchid", "amount", "description")
        merchant = self._acting(merchant, data.get("sub_mchid"))
        with self.lock:
            key = (merchant.mchid, data["out_return_no"])
            if key in self.ps_returns:
                return json_reply(200, self._ps_return_json(self.ps_returns[key]))
            order = next((o for (m, no), o in self.ps_orders.items() if m == merchant.mchid and (
                no == data.get("out_order_no") or o["order_id"] == data.get("order_id"))), None)
            if order is None:
                raise _pay_error(404, "RESOURCE_NOT_EXISTS", "分账单不存在")
            got = sum(r["amount"] for r in order["receivers"]
                      if r["type"] == "MERCHANT_ID" and r["account"] == data["return_mchid"])
            if not got:
                raise _pay_error(400, "INVALID_REQUEST", "只能从商户类型的分账接收方回退")
            back = sum(r["amount"] for (m, _no), r in self.ps_returns.items() if m == merchant.mchid
                       and r["out_order_no"] == order["out_order_no"] and r["return_mchid"] == data["return_mchid"])
            if not isinstance(data["amount"], int) or data["amount"] < 1 or data["amount"] > got - back:
                raise _pay_error(400, "NOT_ENOUGH", "回退金额超过分账金额")
            made = {"order_id": order["order_id"], "out_order_no": order["out_order_no"],
                    "out_return_no": data["out_return_no"], "return_id": "3008" + _digits(24),
                    "return_mchid": data["return_mchid"], "amount": data["amount"],
                    "description": data["description"], "result": "SUCCESS", "create_time": _now_str(),
                    "finish_time": _now_str(), "transaction_id": order["transaction_id"]}
            self.ps_returns[key] = made
            return json_reply(200, self._ps_return_json(made))

    @staticmethod
    def _ps_return_json(ret: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in ret.items() if k != "transaction_id"}

    def h_ps_return_query(self, request: Request) -> Reply:
        merchant = self._acting(self._authenticate(request), request.query.get("sub_mchid"))
        with self.lock:
            ret = self.ps_returns.get((merchant.mchid, request.params["no"]))
            if ret is None or ret["out_order_no"] != request.query.get("out_order_no"):
                raise _pay_error(404, "RESOURCE_NOT_EXISTS", "回退单不存在")
            return json_reply(200, self._ps_return_json(ret))

    def h_ps_amounts(self, request: Request) -> Reply:
        merchant = self._authenticate(request)
        with self.lock:
            order = self._ps_order_for(merchant, request.params["tid"])
            left = 0 if order.transaction_id in self.ps_unfrozen else (
                order.total - order.refunded - self.ps_shared(merchant.mchid, order.transaction_id))
            return json_reply(200, {"transaction_id": order.transaction_id, "unsplit_amount": left})

    def h_certificates(self, request: Request) -> Reply:
        self._authenticate(request)
        # Like a merchant opened after 2024-09: public-key mode only, no platform certificates.
        raise _pay_error(500, "SYSTEM_ERROR", "本 fake 只支持微信支付公钥模式 (public_key_id)")

    # ------------------------------------------------------------------ /_fake handlers
    def _control(self, func: Any, *args: Any, **kwargs: Any) -> Reply:
        try:
            return json_reply(200, func(*args, **kwargs))
        except FakePayError as exc:
            return json_reply(exc.status, {"code": exc.code, "message": exc.message})
        except (TypeError, ValueError) as exc:
            return json_reply(400, {"code": "PARAM_ERROR", "message": str(exc)})

    def c_health(self, request: Request) -> Reply:
        return json_reply(
            200,
            {
                "ok": True,
                "fake": "api.mch.weixin.qq.com",
                "public_key_id": self.public_key_id,
                "public_key": self.public_key_pem,
            },
        )

    def c_merchants(self, request: Request) -> Reply:
        if request.method == "POST":
            data = request.json()

            def register() -> dict[str, Any]:
                m = self.register_merchant(
                    str(data.get("mchid", "")),
                    data.get("appids") or data.get("appid") or [],
                    data.get("apiv3_key", ""),
                    merchant_public_key=data.get("merchant_public_key"),
                    merchant_certificate=data.get("merchant_certificate"),
                    merchant_serial_no=data.get("merchant_serial_no"),
                )
                return {
                    "mchid": m.mchid,
                    "appids": sorted(m.appids),
                    "merchant_serial_no": m.serial_no,
                    "public_key_id": self.public_key_id,
                    "public_key": self.public_key_pem,
                }

            return self._control(register)
        with self.lock:
            merchants = [
                {"mchid": m.mchid, "appids": sorted(m.appids), "merchant_serial_no": m.serial_no}
                for m in self.merchants.values()
            ]
        return json_reply(200, {"merchants": merchants})

    def c_sub_merchants(self, request: Request) -> Reply:
        """Register a sub-merchant: ``{sp_mchid, sub_mchid, appids}``."""
        data = request.json()

        def register() -> dict[str, Any]:
            m = self.register_sub_merchant(str(data.get("sp_mchid", "")), str(data.get("sub_mchid", "")),
                                           data.get("appids") or data.get("appid") or [])
            return {"sub_mchid": m.mchid, "sp_mchid": m.sp_mchid, "appids": sorted(m.appids)}

        return self._control(register)

    @staticmethod
    def _notify_opts(data: dict[str, Any]) -> dict[str, Any]:
        keys = ("deliver", "duplicates", "tamper", "timestamp_offset", "sync")
        return {k: data[k] for k in keys if k in data}

    def c_pay(self, request: Request) -> Reply:
        data = request.json()
        if "pay_sign" in data:
            problem = self._check_pay_sign(data)
            if problem:
                return json_reply(400, {"code": "SIGN_ERROR", "message": problem})
        prepay_id = data.get("prepay_id")
        if not prepay_id and str(data.get("package", "")).startswith("prepay_id="):
            prepay_id = data["package"][len("prepay_id=") :]
        return self._control(
            self.mark_paid,
            data.get("out_trade_no"),
            prepay_id=prepay_id,
            mchid=data.get("mchid"),
            trade_state=data.get("trade_state", "SUCCESS"),
            **self._notify_opts(data),
        )

    def _check_pay_sign(self, data: dict[str, Any]) -> str | None:
        """Verify wx.requestPayment params: paySign over appId, timeStamp, nonceStr, package."""
        package = str(data.get("package", ""))
        prepay_id = package[len("prepay_id=") :] if package.startswith("prepay_id=") else None
        with self.lock:
            order = next((o for o in self.orders.values() if o.prepay_id == prepay_id), None)
            merchant = self.merchants.get(order.sp_mchid or order.mchid) if order else None
        if order is None or merchant is None:
            return "package 中的 prepay_id 不存在或已被新的下单请求替换"
        if data.get("appId") != order.appid:
            return "appId 与订单不一致"
        if data.get("signType", "RSA") != "RSA":
            return "signType 须为 RSA"
        message = (
            f"{data.get('appId')}\n{data.get('timeStamp')}\n{data.get('nonceStr')}\n{package}\n"
        )
        if not rsa_verify(merchant.public_key, message, str(data.get("pay_sign"))):
            return "paySign 验签失败"
        return None

    def c_refund(self, request: Request) -> Reply:
        data = request.json()
        return self._control(
            self.complete_refund,
            str(data.get("out_refund_no", "")),
            mchid=data.get("mchid"),
            status=data.get("status", "SUCCESS"),
            **self._notify_opts(data),
        )

    def c_transfer(self, request: Request) -> Reply:
        data = request.json()
        return self._control(
            self.complete_transfer,
            str(data.get("out_bill_no", "")),
            mchid=data.get("mchid"),
            state=data.get("state", "SUCCESS"),
            fail_reason=data.get("fail_reason"),
            **self._notify_opts(data),
        )

    def c_orders(self, request: Request) -> Reply:
        with self.lock:
            return json_reply(
                200,
                {
                    "orders": [o.as_transaction() for o in self.orders.values()],
                    "refunds": [r.as_json() for r in self.refunds.values()],
                    "transfers": [t.as_json() for t in self.transfers.values()],
                },
            )

    def c_notifications(self, request: Request) -> Reply:
        with self.lock:
            notes = [n.as_json() for n in self.notifications.values()]
        return json_reply(200, {"notifications": notes})

    def c_redeliver(self, request: Request) -> Reply:
        return self._control(self.redeliver, request.params["nid"])

    def c_reset(self, request: Request) -> Reply:
        keep_merchants = not request.json().get("merchants", False)
        with self.lock:
            self.orders.clear()
            self.refunds.clear()
            self.transfers.clear()
            self.notifications.clear()
            self.bill_files.clear()
            self.ps_receivers.clear()
            self.ps_orders.clear()
            self.ps_returns.clear()
            self.ps_unfrozen.clear()
            if not keep_merchants:
                self.merchants.clear()
                self.sub_merchants.clear()
        self.failures.clear()
        return json_reply(200, {"ok": True})


def _prepay_id() -> str:
    return "wx" + datetime.now(CST).strftime("%d%H%M%S") + secrets.token_hex(13)


def _now_digits() -> str:
    return datetime.now(CST).strftime("%Y%m%d")


def _parse_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return datetime.now(UTC).timestamp() + 3600  # unparseable: treat as not expired


# =========================================================================== entry points
def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    key_dir: str | os.PathLike[str] | None = None,
    platform_key: PlatformKey | None = None,
    auto_refund_seconds: float | None = None,
    notify_retry_delays: tuple[float, ...] = (),
) -> WeChatPayServer:
    """Start the fake in a daemon thread; use ``server.url``, ``server.public_key_pem``,
    ``server.public_key_id`` and ``server.shutdown()``. ``key_dir=None``: throw-away key."""
    server = WeChatPayServer(
        (host, port),
        key_dir=key_dir,
        platform_key=platform_key,
        auto_refund_seconds=auto_refund_seconds,
        notify_retry_delays=notify_retry_delays,
    )
    return server.start_background()  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.wechatpay",
        description="Fake WeChat Pay APIv3 for development (NOT WeChat Pay).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8802)
    parser.add_argument(
        "--key-dir", default="var/fake_wechatpay", help="where the fake's key pair lives"
    )
    parser.add_argument(
        "--merchant",
        action="append",
        default=[],
        metavar="MCHID:APPID[,APPID]",
        help="make/load demo merchant keys under KEY_DIR/merchants/MCHID and register it",
    )
    parser.add_argument(
        "--auto-refund-seconds",
        type=float,
        default=None,
        help="finish refunds as SUCCESS (and notify) this long after they are created",
    )
    parser.add_argument(
        "--notify-retries",
        default=",".join(str(s) for s in WECHAT_RETRY_SCHEDULE[:5]),
        help="comma-separated seconds between retries of undelivered notifications ('' = none)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    delays = tuple(float(s) for s in args.notify_retries.split(",") if s.strip())
    server = WeChatPayServer(
        (args.host, args.port),
        key_dir=args.key_dir,
        auto_refund_seconds=args.auto_refund_seconds,
        notify_retry_delays=delays,
    )
    server.verbose = args.verbose
    lines = []
    for spec in args.merchant:
        mchid, _, appids = spec.partition(":")
        ids = [a for a in appids.split(",") if a]
        demo = load_or_create_demo_merchant(args.key_dir, mchid, ids[0] if ids else "")
        server.register_merchant(
            mchid,
            ids,
            demo.apiv3_key,
            merchant_public_key=demo.public_key_pem,
            merchant_serial_no=demo.serial_no,
        )
        lines.append(f"  merchant {mchid} ({','.join(ids)}): {args.key_dir}/merchants/{mchid}/")
    key_dir = Path(args.key_dir)
    print(
        "=" * 72,
        "  FAKE api.mch.weixin.qq.com (APIv3) - DEVELOPMENT STAND-IN, NOT WECHAT PAY",
        f"  listening on {server.url}",
        f"  public key id: {server.public_key_id}",
        f"  public key:    {key_dir / PLATFORM_PUBLIC_FILE}",
        *lines,
        "  control: /_fake/merchants /_fake/pay /_fake/refund /_fake/transfer /_fake/failures",
        "=" * 72,
        sep="\n",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop_event.set()
        server.server_close()


if __name__ == "__main__":
    main()
