"""Our small gateway over wechatpayv3 (APIv3, public-key mode), one per operator, cached.

Amounts cross this boundary in fen (``int``); the services convert with
``evplatform.money``. Every call returns WeChat's JSON or raises :class:`PayError`, whose
``unclear`` says whether WeChat may have acted anyway (network error, timeout, 5xx): then
the caller must QUERY before trying again, and must never mint a new outbound id.

Notifications go to ``{notify_base}/api/pay/notify/<operator slug>/<kind>``
(``kind``: ``payment``, ``refund``, ``transfer``); ``parse_notification`` verifies the
signature with the WeChat Pay public key, refuses stale timestamps and SIGNTEST probes,
and decrypts the resource with the APIv3 key.

Two modes, one gateway: a **direct merchant** (the default: the mini-program's own mchid and
keys) or, for an operator in service-provider mode, a **sub-merchant** (特约商户) of the
platform's service provider (``tenants.ServiceProvider``): the SDK in ``partner_mode`` with the
provider's mchid, appid and keys, every call naming the operator's ``sub_mchid`` (and the
mini-program's appid as ``sub_appid``), the payer by ``sub_openid``. Partner-mode
notifications come to ``…/<kind>/sp`` and are verified and decrypted with the provider's
keys, so a payment keeps its mode even if the operator switches later.
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
from django.utils import translation
from django.utils.translation import gettext as _
from wechatpayv3 import WeChatPay, WeChatPayType

from tenants.models import MiniProgram, ServiceProvider

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

    @property
    def text(self) -> str:
        """What a person reads of this error (the admin's error fields: a bill check, a
        payment's or a refund's last error), in the platform's language whatever the
        caller's (a worker has none): no exception class name, no bare HTTP body. WeChat's
        own ``message`` (Chinese) is kept, with its code for support. The technical form
        stays ``str(error)``, for the logs."""
        with translation.override(settings.LANGUAGE_CODE):
            if self.code == "NETWORK":
                return _("WeChat Pay could not be reached (network error)")
            if self.code == "BAD_REPLY":
                return _("WeChat Pay's answer could not be read or its signature did not verify")
            if self.code == "BILL_HASH_MISMATCH":
                return _("The downloaded bill does not match its checksum")
            if self.code.startswith("HTTP_"):
                return _("WeChat Pay answered with HTTP status %(status)s") % {
                    "status": self.code[5:]}
            if self.message:
                return _("WeChat Pay refused: %(message)s (%(code)s)") % {
                    "message": self.message, "code": self.code}
            return _("WeChat Pay refused (%(code)s)") % {"code": self.code}


class NotifyRejected(Exception):
    """A notification that must not be trusted (answer 4xx)."""


class PayNotConfigured(Exception):
    """The merchant settings are incomplete. ``code``: ``pay_not_configured``, or in
    service-provider mode ``sp_not_configured`` / ``sub_mchid_missing``."""

    def __init__(self, what: str, code: str = "pay_not_configured"):
        super().__init__(what)
        self.code = code


def notify_url(mini_program: MiniProgram, kind: str, *, partner: bool = False) -> str:
    base = mini_program.notify_base_url or (
        f"{settings.SITE_SCHEME}://{settings.PUBLIC_HOST}:{settings.SITE_PORT}"
    )
    tail = "/sp" if partner else ""
    return f"{base.rstrip('/')}/api/pay/notify/{mini_program.operator.slug}/{kind}{tail}"


@dataclass
class Gateway:
    """WeChat Pay for one operator: its own merchant, or (``sub_mchid`` set) a sub-merchant
    of the platform's service provider ``sp_mchid``."""

    mini_program: MiniProgram
    client: WeChatPay
    public_key_id: str = ""
    sub_mchid: str = ""
    sp_mchid: str = ""
    sp_name: str = ""  # the provider's registered name (its profit-sharing receiver)

    @property
    def partner(self) -> bool:
        return bool(self.sub_mchid)

    @property
    def appid(self) -> str:
        """The payer's appid: the mini-program's (``sub_appid`` in partner mode)."""
        return self.mini_program.appid

    @property
    def mchid(self) -> str:
        """The merchant of record: the operator's own, or its ``sub_mchid``."""
        return self.sub_mchid or self.mini_program.mchid

    def _sub(self, *, appid: bool = False) -> dict[str, str]:
        """The partner-mode arguments of a call (none for a direct merchant)."""
        if not self.partner:
            return {}
        return {"sub_mchid": self.sub_mchid, **({"sub_appid": self.appid} if appid else {})}

    def _notify(self, kind: str) -> str:
        return notify_url(self.mini_program, kind, partner=self.partner)

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
            "pay", **extra, **self._sub(appid=True),
            description=description,
            out_trade_no=out_trade_no,
            amount={"total": total_fen, "currency": "CNY"},
            payer={"sub_openid" if self.partner else "openid": openid},
            time_expire=expires_at.astimezone(CST).isoformat(timespec="seconds"),
            attach=attach or None,
            notify_url=self._notify("payment"),
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
            return self._call("query", out_trade_no=out_trade_no, **self._sub())
        except PayError as exc:
            if exc.code in ("ORDER_NOT_EXIST", "ORDERNOTEXIST"):
                return None
            raise

    def close(self, out_trade_no: str) -> None:
        self._call("close", out_trade_no=out_trade_no, **self._sub())

    def refund(
        self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> dict[str, Any]:
        return self._call(
            "refund",
            out_refund_no=out_refund_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=out_trade_no,
            reason=reason,
            notify_url=self._notify("refund"),
            **self._sub(),
        )

    def refund_query(self, out_refund_no: str) -> dict[str, Any] | None:
        try:
            return self._call("query_refund", out_refund_no=out_refund_no, **self._sub())
        except PayError as exc:
            if exc.code in ("RESOURCE_NOT_EXISTS", "NOT_FOUND"):
                return None
            raise

    def transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, scene_id: str,
        report_infos: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """商家转账 (transfer-bills) of ``amount_fen`` to ``openid``; ``report_infos`` are the
        scene's report fields (default: the wallet-withdrawal scene's). A sub-merchant has
        no 商家转账 through the provider: refused (``PARTNER_NO_TRANSFER``), never sent from
        the provider's own account."""
        self._no_transfer_in_partner_mode()
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
            notify_url=self._notify("transfer"),
        )

    def _no_transfer_in_partner_mode(self) -> None:
        if self.partner:
            raise PayError("PARTNER_NO_TRANSFER", "merchant transfers need the operator's own merchant")

    def transfer_query(self, out_bill_no: str) -> dict[str, Any] | None:
        self._no_transfer_in_partner_mode()
        try:
            return self._call("mch_transfer_bills_query", out_bill_no=out_bill_no)
        except PayError as exc:
            if exc.code in ("NOT_FOUND", "RESOURCE_NOT_EXISTS"):
                return None
            raise

    def transfer_cancel(self, out_bill_no: str) -> dict[str, Any]:
        self._no_transfer_in_partner_mode()
        return self._call("mch_transfer_bills_cancel", out_bill_no=out_bill_no)

    # ------------------------------------------------------------------ 分账 (profit sharing)
    def profit_sharing_receiver_add(self, *, openid: str, relation_type: str = "PARTNER",
                                    name: str | None = None) -> dict[str, Any]:
        """Add a person (``openid`` of this appid) as a receiver; ``name`` is sent encrypted
        with the platform public key (the SDK does it). Idempotent at WeChat. In partner mode
        the openid is the sub-merchant's appid's (``PERSONAL_SUB_OPENID``)."""
        return self._call("profitsharing_add_receiver", account_type=self.person_type,
                          account=openid, relation_type=relation_type, name=name,
                          **self._sub(appid=True))

    @property
    def person_type(self) -> str:
        return "PERSONAL_SUB_OPENID" if self.partner else "PERSONAL_OPENID"

    def profit_sharing_provider_add(self) -> dict[str, Any]:
        """Add the service provider itself (MERCHANT_ID ``sp_mchid``, relation
        SERVICE_PROVIDER, its registered name encrypted) as a receiver of the sub-merchant's
        splits: the platform's commission. Partner mode only. Idempotent at WeChat."""
        return self._call("profitsharing_add_receiver", account_type="MERCHANT_ID",
                          account=self.sp_mchid, relation_type="SERVICE_PROVIDER",
                          name=self.sp_name, **self._sub(appid=True))

    def profit_sharing_order(
        self, *, transaction_id: str, out_order_no: str,
        receivers: list[tuple[str, int, str]], unfreeze_unsplit: bool = True,
        merchants: list[tuple[str, int, str]] = (),
    ) -> dict[str, Any]:
        """请求分账 of one paid transaction: ``receivers`` are people (openid, fen,
        description), ``merchants`` merchants (mchid, fen, description). The answer is
        PROCESSING; the result must be queried (``profit_sharing_query``)."""
        return self._call(
            "profitsharing_order", transaction_id=transaction_id, out_order_no=out_order_no,
            receivers=[
                *({"type": "MERCHANT_ID", "account": mchid, "amount": fen,
                   "description": description[:80]} for mchid, fen, description in merchants),
                *({"type": self.person_type, "account": openid, "amount": fen,
                   "description": description[:80]} for openid, fen, description in receivers),
            ],
            unfreeze_unsplit=unfreeze_unsplit, **self._sub(appid=True),
        )

    def profit_sharing_query(self, *, transaction_id: str, out_order_no: str) -> dict[str, Any] | None:
        try:
            return self._call("profitsharing_order_query", transaction_id=transaction_id,
                              out_order_no=out_order_no, **self._sub())
        except PayError as exc:
            if exc.code in ("RESOURCE_NOT_EXISTS", "NOT_FOUND"):
                return None
            raise

    def profit_sharing_unfreeze(self, *, transaction_id: str, out_order_no: str,
                                description: str) -> dict[str, Any]:
        """解冻剩余资金: release what is still frozen for splitting to the merchant."""
        return self._call("profitsharing_unfreeze", transaction_id=transaction_id,
                          out_order_no=out_order_no, description=description[:80], **self._sub())

    def profit_sharing_return(self, *, out_return_no: str, out_order_no: str, return_mchid: str,
                              amount_fen: int, description: str) -> dict[str, Any]:
        """分账回退: take ``amount_fen`` back from merchant receiver ``return_mchid`` of split
        ``out_order_no`` (only merchant receivers can be returned from). SUCCESS, PROCESSING
        (query it) or FAILED; a repeat with the same ``out_return_no`` is the same return."""
        return self._call("profitsharing_return", out_return_no=out_return_no,
                          return_mchid=return_mchid, amount=amount_fen, description=description[:80],
                          out_order_no=out_order_no, **self._sub())

    def profit_sharing_return_query(self, *, out_order_no: str, out_return_no: str) -> dict[str, Any] | None:
        try:
            return self._call("profitsharing_return_query", out_order_no=out_order_no,
                              out_return_no=out_return_no, **self._sub())
        except PayError as exc:
            if exc.code in ("RESOURCE_NOT_EXISTS", "NOT_FOUND"):
                return None
            raise

    def profit_sharing_unsplit(self, transaction_id: str) -> int:
        """Fen of the transaction still frozen for splitting."""
        return int(self._call("profitsharing_amount_query", transaction_id=transaction_id)["unsplit_amount"])

    # ------------------------------------------------------------------ bills
    def trade_bill(self, bill_date: str) -> str | None:
        """The trade bill (type ALL) of one China-time day ``YYYY-MM-DD``, downloaded (gzip),
        checked against its SHA1 and decoded: WeChat's CSV text. None when WeChat has no
        bill for the day (NO_STATEMENT_EXIST: nothing happened). Raises PayError (code
        ``BILL_HASH_MISMATCH`` when the file does not match its hash)."""
        return self._bill("trade_bill", bill_date=bill_date, bill_type="ALL", tar_type="GZIP",
                          **self._sub())

    def fundflow_bill(self, bill_date: str) -> str | None:
        """The fund-flow bill (资金账单) of the basic account for one China-time day
        ``YYYY-MM-DD``: every movement of the merchant's money (payments in, fees, refunds,
        transfers, 分账 out), downloaded, SHA1-checked and decoded as for ``trade_bill``. None
        when WeChat has no bill for the day. Raises PayError (``PARTNER_NO_FUNDFLOW`` for a
        sub-merchant: its money moves in the provider's books, not a bill of its own here)."""
        if self.partner:
            raise PayError("PARTNER_NO_FUNDFLOW", "no fund-flow bill of a sub-merchant through this gateway")
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
        if serial != self.public_key_id:
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


def gateway_for(mini_program: MiniProgram, *, partner: bool | None = None) -> Gateway:
    """The cached gateway of this mini-program's merchant (rebuilt when its settings change):
    in service-provider mode (``partner``; default: the operator's switch) the provider's
    keys with the operator's ``sub_mchid``.

    Raises PayNotConfigured (its ``code`` says what is missing).
    """
    operator = mini_program.operator
    partner = operator.wechatpay_partner_mode if partner is None else partner
    base_url = settings.WECHATPAY_API_BASE_URL.rstrip("/")
    if partner:
        sp = ServiceProvider.current()
        if sp is None or not sp.pay_configured:
            raise PayNotConfigured("service provider", "sp_not_configured")
        if not operator.wechatpay_sub_mchid:
            raise PayNotConfigured(mini_program.appid, "sub_mchid_missing")
        source, sub_mchid = sp, operator.wechatpay_sub_mchid
        mchid, appid, stamp = sp.sp_mchid, sp.sp_appid, sp.updated_at
    else:
        if not mini_program.pay_configured or not mini_program.wechatpay_public_key_id:
            raise PayNotConfigured(mini_program.appid)
        source, sub_mchid = mini_program, ""
        mchid, appid, stamp = mini_program.mchid, mini_program.appid, mini_program.updated_at
    key = (mini_program.pk, partner, mini_program.updated_at, stamp, sub_mchid, base_url)
    with _lock:
        gateway = _gateways.get(key)
        if gateway is None:
            client = WeChatPay(
                wechatpay_type=WeChatPayType.MINIPROG,
                mchid=mchid,
                private_key=source.merchant_private_key,
                cert_serial_no=source.merchant_cert_serial,
                appid=appid,
                apiv3_key=source.apiv3_key,
                notify_url=notify_url(mini_program, "payment", partner=partner),
                public_key=source.wechatpay_public_key,
                public_key_id=source.wechatpay_public_key_id,
                partner_mode=partner,
                timeout=(5, settings.WECHAT_HTTP_TIMEOUT),
                logger=None,
            )
            client._core._gate_way = base_url  # the SDK's only gateway knob
            for stale in [k for k in _gateways if k[:2] == (mini_program.pk, partner)]:
                del _gateways[stale]
            gateway = _gateways[key] = Gateway(
                mini_program, client, public_key_id=source.wechatpay_public_key_id,
                sub_mchid=sub_mchid, sp_mchid=mchid if partner else "",
                sp_name=sp.merchant_name if partner else "",
            )
    return gateway
