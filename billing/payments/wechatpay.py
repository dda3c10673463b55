"""Our small gateway over wechatpayv3 (APIv3, public-key mode), one per operator, cached.

Amounts cross this boundary in fen (``int``); the services convert with
``evplatform.money``. Every call returns WeChat's JSON or raises :class:`PayError`, whose
``unclear`` says whether WeChat may have acted anyway (network error, timeout, 5xx): then
the caller must QUERY before trying again, and must never mint a new outbound id.

Notifications go to ``{notify_base}/api/pay/notify/<operator slug>/<kind>``
(``kind``: ``payment``, ``refund``, ``transfer``); ``parse_notification`` verifies the
signature with the WeChat Pay public key, refuses stale timestamps and SIGNTEST probes,
and decrypts the resource with the APIv3 key.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from wechatpayv3 import WeChatPay, WeChatPayType

from tenants.models import MiniProgram

logger = logging.getLogger(__name__)

CST = ZoneInfo("Asia/Shanghai")
MAX_NOTIFY_SKEW = 300  # seconds, Wechatpay-Timestamp freshness (the SDK does not check it)


class PayError(Exception):
    """WeChat Pay refused or could not be reached.

    ``code`` is WeChat's code (``ORDERPAID``, ``NOT_FOUND``…) or ``NETWORK``/``BAD_REPLY``;
    ``status`` the HTTP status (0 when there was no answer); ``unclear`` True when WeChat
    may have done it anyway.
    """

    def __init__(self, code: str, message: str, *, status: int = 0, unclear: bool = False):
        super().__init__(f"{status} {code}: {message}")
        self.code, self.message, self.status, self.unclear = code, message, status, unclear


class NotifyRejected(Exception):
    """A notification that must not be trusted (answer 4xx)."""


class PayNotConfigured(Exception):
    pass


def notify_url(mini_program: MiniProgram, kind: str) -> str:
    base = mini_program.notify_base_url or (
        f"{settings.SITE_SCHEME}://{settings.PUBLIC_HOST}:{settings.SITE_PORT}"
    )
    return f"{base.rstrip('/')}/api/pay/notify/{mini_program.operator.slug}/{kind}"


@dataclass
class Gateway:
    """WeChat Pay for one operator's merchant."""

    mini_program: MiniProgram
    client: WeChatPay

    @property
    def appid(self) -> str:
        return self.mini_program.appid

    @property
    def mchid(self) -> str:
        return self.mini_program.mchid

    # ------------------------------------------------------------------ calls
    def _call(self, _method: str, *args, **kwargs) -> dict[str, Any]:
        try:
            status, text = getattr(self.client, _method)(*args, **kwargs)
        except requests.RequestException as exc:
            raise PayError("NETWORK", exc.__class__.__name__, unclear=True) from exc
        except Exception as exc:  # the SDK raises bare Exception for bad reply signatures
            raise PayError("BAD_REPLY", str(exc)[:150], unclear=True) from exc
        data = _json(text)
        if 200 <= status < 300:
            return data
        code = data.get("code") or f"HTTP_{status}"
        raise PayError(code, str(data.get("message", ""))[:150], status=status, unclear=status >= 500)

    def jsapi_prepay(
        self, *, out_trade_no: str, description: str, total_fen: int, openid: str,
        expires_at: datetime, attach: str = "", profit_sharing: bool = False,
    ) -> str:
        """Create (or repeat, same body) the JSAPI order; returns the prepay_id. With
        ``profit_sharing`` the funds are frozen for 分账 (``settle_info.profit_sharing``)."""
        extra = {"settle_info": {"profit_sharing": True}} if profit_sharing else {}
        data = self._call(
            "pay", **extra,
            description=description,
            out_trade_no=out_trade_no,
            amount={"total": total_fen, "currency": "CNY"},
            payer={"openid": openid},
            time_expire=expires_at.astimezone(CST).isoformat(timespec="seconds"),
            attach=attach or None,
            notify_url=notify_url(self.mini_program, "payment"),
            pay_type=WeChatPayType.MINIPROG,
        )
        return data["prepay_id"]

    def request_payment_params(self, prepay_id: str) -> dict[str, str]:
        """What the mini-program passes to ``wx.requestPayment`` (RSA-signed)."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        sign = self.client.sign([self.appid, timestamp, nonce, package])
        return {
            "appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce,
            "package": package, "signType": "RSA", "paySign": sign,
        }

    def query(self, out_trade_no: str) -> dict[str, Any] | None:
        """The transaction, or None if WeChat does not know it."""
        try:
            return self._call("query", out_trade_no=out_trade_no)
        except PayError as exc:
            if exc.code in ("ORDER_NOT_EXIST", "ORDERNOTEXIST"):
                return None
            raise

    def close(self, out_trade_no: str) -> None:
        self._call("close", out_trade_no=out_trade_no)

    def refund(
        self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> dict[str, Any]:
        return self._call(
            "refund",
            out_refund_no=out_refund_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=out_trade_no,
            reason=reason,
            notify_url=notify_url(self.mini_program, "refund"),
        )

    def refund_query(self, out_refund_no: str) -> dict[str, Any] | None:
        try:
            return self._call("query_refund", out_refund_no=out_refund_no)
        except PayError as exc:
            if exc.code in ("RESOURCE_NOT_EXISTS", "NOT_FOUND"):
                return None
            raise

    def transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, scene_id: str,
        report_infos: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """商家转账 (transfer-bills) of ``amount_fen`` to ``openid``; ``report_infos`` are the
        scene's report fields (default: the wallet-withdrawal scene's)."""
        return self._call(
            "mch_transfer_bills",
            out_bill_no=out_bill_no,
            transfer_scene_id=scene_id,
            openid=openid,
            transfer_amount=amount_fen,
            transfer_remark=remark,
            transfer_scene_report_infos=report_infos or [
                {"info_type": "活动名称", "info_content": "钱包余额提现"},
                {"info_type": "奖励说明", "info_content": "用户申请提现钱包余额"},
            ],
            notify_url=notify_url(self.mini_program, "transfer"),
        )

    def transfer_query(self, out_bill_no: str) -> dict[str, Any] | None:
        try:
            return self._call("mch_transfer_bills_query", out_bill_no=out_bill_no)
        except PayError as exc:
            if exc.code in ("NOT_FOUND", "RESOURCE_NOT_EXISTS"):
                return None
            raise

    def transfer_cancel(self, out_bill_no: str) -> dict[str, Any]:
        return self._call("mch_transfer_bills_cancel", out_bill_no=out_bill_no)

    # ------------------------------------------------------------------ 分账 (profit sharing)
    def profit_sharing_receiver_add(self, *, openid: str, relation_type: str = "PARTNER",
                                    name: str | None = None) -> dict[str, Any]:
        """Add a person (``openid`` of this appid) as a receiver; ``name`` is sent encrypted
        with the platform public key (the SDK does it). Idempotent at WeChat."""
        return self._call("profitsharing_add_receiver", account_type="PERSONAL_OPENID",
                          account=openid, relation_type=relation_type, name=name)

    def profit_sharing_order(
        self, *, transaction_id: str, out_order_no: str,
        receivers: list[tuple[str, int, str]], unfreeze_unsplit: bool = True,
    ) -> dict[str, Any]:
        """请求分账 of one paid transaction: ``receivers`` are (openid, fen, description).
        The answer is PROCESSING; the result must be queried (``profit_sharing_query``)."""
        return self._call(
            "profitsharing_order", transaction_id=transaction_id, out_order_no=out_order_no,
            receivers=[{"type": "PERSONAL_OPENID", "account": openid, "amount": fen,
                        "description": description[:80]} for openid, fen, description in receivers],
            unfreeze_unsplit=unfreeze_unsplit,
        )

    def profit_sharing_query(self, *, transaction_id: str, out_order_no: str) -> dict[str, Any] | None:
        try:
            return self._call("profitsharing_order_query", transaction_id=transaction_id,
                              out_order_no=out_order_no)
        except PayError as exc:
            if exc.code in ("RESOURCE_NOT_EXISTS", "NOT_FOUND"):
                return None
            raise

    def profit_sharing_unfreeze(self, *, transaction_id: str, out_order_no: str,
                                description: str) -> dict[str, Any]:
        """解冻剩余资金: release what is still frozen for splitting to the merchant."""
        return self._call("profitsharing_unfreeze", transaction_id=transaction_id,
                          out_order_no=out_order_no, description=description[:80])

    def profit_sharing_unsplit(self, transaction_id: str) -> int:
        """Fen of the transaction still frozen for splitting."""
        return int(self._call("profitsharing_amount_query", transaction_id=transaction_id)["unsplit_amount"])

    # ------------------------------------------------------------------ bills
    def trade_bill(self, bill_date: str) -> str | None:
        """The trade bill (type ALL) of one China-time day ``YYYY-MM-DD``, downloaded (gzip),
        checked against its SHA1 and decoded: WeChat's CSV text. None when WeChat has no
        bill for the day (NO_STATEMENT_EXIST: nothing happened). Raises PayError (code
        ``BILL_HASH_MISMATCH`` when the file does not match its hash)."""
        return self._bill("trade_bill", bill_date=bill_date, bill_type="ALL", tar_type="GZIP")

    def fundflow_bill(self, bill_date: str) -> str | None:
        """The fund-flow bill (资金账单) of the basic account for one China-time day
        ``YYYY-MM-DD``: every movement of the merchant's money (payments in, fees, refunds,
        transfers, 分账 out), downloaded, SHA1-checked and decoded as for ``trade_bill``. None
        when WeChat has no bill for the day. Raises PayError."""
        return self._bill("fundflow_bill", bill_date=bill_date, account_type="BASIC", tar_type="GZIP")

    def _bill(self, method: str, **kwargs: Any) -> str | None:
        try:
            meta = self._call(method, **kwargs)
        except PayError as exc:
            if exc.code == "NO_STATEMENT_EXIST":
                return None
            raise
        try:
            status, body = self.client.download_bill(meta["download_url"])
        except requests.RequestException as exc:
            raise PayError("NETWORK", exc.__class__.__name__, unclear=True) from exc
        if not 200 <= status < 300 or not isinstance(body, bytes):
            raise PayError(f"HTTP_{status}", "bill download failed", status=status, unclear=True)
        if hashlib.sha1(body).hexdigest() != str(meta.get("hash_value", "")).lower():
            raise PayError("BILL_HASH_MISMATCH", "the bill does not match its SHA1")
        return gzip.decompress(body).decode("utf-8")

    # ------------------------------------------------------------------ notifications
    def parse_notification(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """Verify and decrypt; returns ``{event_type, resource: {...}, ...}``.

        ``headers``: Django's ``request.headers`` (case-insensitive). Raises NotifyRejected.
        """
        signature = headers.get("Wechatpay-Signature", "")
        serial = headers.get("Wechatpay-Serial", "")
        if not signature or signature.startswith("WECHATPAY/SIGNTEST/"):
            raise NotifyRejected("signature probe or missing signature")
        if serial != self.mini_program.wechatpay_public_key_id:
            # Never let the SDK go fetch platform certificates for a serial we do not know.
            raise NotifyRejected("unknown Wechatpay-Serial")
        try:
            stamp = int(headers.get("Wechatpay-Timestamp", ""))
        except ValueError:
            raise NotifyRejected("bad timestamp") from None
        if abs(time.time() - stamp) > MAX_NOTIFY_SKEW:
            raise NotifyRejected("stale timestamp")
        plain = {
            "Wechatpay-Signature": signature,
            "Wechatpay-Timestamp": str(stamp),
            "Wechatpay-Nonce": headers.get("Wechatpay-Nonce", ""),
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": headers.get("Wechatpay-Signature-Type", ""),
        }
        try:
            data = self.client.callback(plain, body)
        except Exception as exc:  # bad signature type, bad JSON, bad algorithm
            raise NotifyRejected(f"unreadable: {exc.__class__.__name__}") from exc
        if not data or not isinstance(data.get("resource"), dict):
            raise NotifyRejected("bad signature or cannot decrypt")
        return data


def _json(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {"message": text[:150]}
    return data if isinstance(data, dict) else {}


_gateways: dict[tuple, Gateway] = {}
_lock = threading.Lock()


def gateway_for(mini_program: MiniProgram) -> Gateway:
    """The cached gateway of this mini-program's merchant (rebuilt when its settings change).

    Raises PayNotConfigured when the merchant settings are incomplete.
    """
    if not mini_program.pay_configured or not mini_program.wechatpay_public_key_id:
        raise PayNotConfigured(mini_program.appid)
    base_url = settings.WECHATPAY_API_BASE_URL.rstrip("/")
    key = (mini_program.pk, mini_program.updated_at, base_url)
    with _lock:
        gateway = _gateways.get(key)
        if gateway is None:
            client = WeChatPay(
                wechatpay_type=WeChatPayType.MINIPROG,
                mchid=mini_program.mchid,
                private_key=mini_program.merchant_private_key,
                cert_serial_no=mini_program.merchant_cert_serial,
                appid=mini_program.appid,
                apiv3_key=mini_program.apiv3_key,
                notify_url=notify_url(mini_program, "payment"),
                public_key=mini_program.wechatpay_public_key,
                public_key_id=mini_program.wechatpay_public_key_id,
                timeout=(5, settings.WECHAT_HTTP_TIMEOUT),
                logger=None,
            )
            client._core._gate_way = base_url  # the SDK's only gateway knob
            for stale in [k for k in _gateways if k[0] == mini_program.pk]:
                del _gateways[stale]
            gateway = _gateways[key] = Gateway(mini_program, client)
    return gateway
