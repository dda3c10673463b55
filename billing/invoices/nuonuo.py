"""诺诺开放平台 (Nuonuo open platform, open.nuonuo.com) adapter of :class:`FapiaoProvider`.

Protocol, as the platform's open SDK speaks it:

- Token (商家自用应用): ``POST {token_url}`` form ``client_id``=appKey,
  ``client_secret``=appSecret, ``grant_type=client_credentials`` → ``{"access_token",
  "expires_in"}`` (seconds, typically 24 h). Kept encrypted on the settings row.
- A call: ``POST {api_url}?senid=&nonce=&timestamp=&appkey=`` with the JSON ``content`` as
  body and headers ``X-Nuonuo-Sign``, ``accessToken``, ``userTax`` (seller tax number),
  ``method``. ``X-Nuonuo-Sign`` = Base64(HMAC-SHA1(appSecret,
  ``a=services&l=v1&p=open&k={appKey}&i={senid}&n={nonce}&t={timestamp}&f={content}``)).
  The answer is ``{"code": "E0000", "describe", "result"}``; any other code is a refusal.
- ``nuonuo.OpeMplatform.requestBillingNew`` ``{"order": {...}}`` issues (``invoiceType`` 1
  blue, 2 red with ``invoiceCode``/``invoiceNum`` of the blue); ``result.invoiceSerialNum``.
  Our request number is ``orderNo``: the platform refuses a second request with the same
  ``orderNo`` (code ``E9106``), which we answer by querying.
- ``nuonuo.OpeMplatform.queryInvoiceResult`` ``{"orderNos": [...]}`` → ``result[]`` with
  ``status`` 2 issued, 22/31 failed (``failCause``), 20/21/24 in progress; ``pdfUrl``,
  ``invoiceCode``, ``invoiceNo`` (数电: ``allElectronicInvoiceNumber``), ``invoiceTime`` (ms).
- The platform posts the outcome to ``callBackUrl``; the body names ``orderNo`` inside a
  JSON ``content`` (form field or JSON body). It is not signed, so we only use it as a
  prompt to query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx

from .provider import FAILED, ISSUED, PENDING, IssueRequest, IssueResult, ProviderError

__all__ = ["NuonuoProvider", "nuonuo_sign", "OK", "DUPLICATE_ORDER"]

OK = "E0000"
DUPLICATE_ORDER = "E9106"
ISSUE = "nuonuo.OpeMplatform.requestBillingNew"
QUERY = "nuonuo.OpeMplatform.queryInvoiceResult"
_ISSUED_STATES = {"2"}
_FAILED_STATES = {"22", "31"}


def nuonuo_sign(*, app_secret: str, app_key: str, senid: str, nonce: str, timestamp: str, content: str) -> str:
    """``X-Nuonuo-Sign`` of one call (see the module docstring)."""
    message = f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={content}"
    digest = hmac.new(app_secret.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class NuonuoProvider:
    """One operator's 诺诺 account. ``token_get``/``token_put`` read and store the access
    token (the caller keeps it encrypted); ``timeout`` in seconds."""

    def __init__(
        self, *, api_url: str, token_url: str, app_key: str, app_secret: str, seller_tax_number: str,
        token_get, token_put, timeout: float = 10.0,
    ) -> None:
        self.api_url, self.token_url = api_url, token_url
        self.app_key, self.app_secret = app_key, app_secret
        self.seller_tax_number = seller_tax_number
        self._token_get, self._token_put = token_get, token_put
        self.timeout = timeout

    # --- FapiaoProvider ---------------------------------------------------------------

    def issue(self, request: IssueRequest) -> IssueResult:
        try:
            result = self._call(ISSUE, {"order": self._order(request)})
        except ProviderError as exc:
            if exc.code == DUPLICATE_ORDER:
                found = self.query(request.number)
                if found is not None:
                    return found
            raise
        return IssueResult(PENDING, serial=str((result or {}).get("invoiceSerialNum") or ""))

    def query(self, number: str) -> IssueResult | None:
        result = self._call(QUERY, {"orderNos": [number], "isOfferInvoiceDetail": "0"})
        rows = [r for r in (result or []) if str(r.get("orderNo")) == number]
        if not rows:
            return None
        row = rows[0]
        state = str(row.get("status", ""))
        status = ISSUED if state in _ISSUED_STATES else FAILED if state in _FAILED_STATES else PENDING
        issued_at = None
        if row.get("invoiceTime"):
            issued_at = datetime.fromtimestamp(int(row["invoiceTime"]) / 1000, tz=UTC)
        return IssueResult(
            status,
            serial=str(row.get("serialNo") or ""),
            invoice_code=str(row.get("invoiceCode") or ""),
            invoice_no=str(row.get("allElectronicInvoiceNumber") or row.get("invoiceNo") or ""),
            pdf_url=str(row.get("pdfUrl") or ""),
            issued_at=issued_at,
            message=str(row.get("failCause") or row.get("statusMsg") or ""),
            raw=row,
        )

    def callback_number(self, body: bytes, content_type: str) -> str | None:
        try:
            text = body.decode("utf-8")
            if "json" in content_type:
                data = json.loads(text)
            else:
                data = {k: v[-1] for k, v in parse_qs(text).items()}
            content = data.get("content", data)
            if isinstance(content, str):
                content = json.loads(content)
        except (UnicodeDecodeError, ValueError):
            return None
        number = content.get("orderNo") if isinstance(content, dict) else None
        return str(number) if number else None

    # --- protocol ---------------------------------------------------------------------

    def _order(self, r: IssueRequest) -> dict[str, Any]:
        sign = -1 if r.red else 1
        order: dict[str, Any] = {
            "buyerName": r.buyer.name,
            "buyerTaxNum": r.buyer.tax_number,
            "buyerTel": r.buyer.phone,
            "buyerAddress": r.buyer.address,
            "buyerAccount": r.buyer.bank_account,
            "email": r.buyer.email,
            "salerTaxNum": r.seller.tax_number,
            "salerTel": r.seller.phone,
            "salerAddress": r.seller.address,
            "salerAccount": r.seller.bank_account,
            "orderNo": r.number,
            "invoiceDate": r.issued_on.strftime("%Y-%m-%d %H:%M:%S"),
            "clerk": r.clerk,
            "pushMode": "0" if r.buyer.email else "-1",
            "invoiceType": "2" if r.red else "1",
            "invoiceLine": r.invoice_line,
            "callBackUrl": r.callback_url,
            "remark": r.remark,
            "invoiceDetail": [
                {
                    "goodsName": line.goods_name,
                    "goodsCode": line.goods_code,
                    "withTaxFlag": "1",
                    "price": _money(abs(line.amount)),
                    "num": str(sign),
                    "unit": "",
                    "taxRate": str(line.tax_rate.normalize()),
                    "taxExcludedAmount": _money(line.amount_ex_tax),
                    "tax": _money(line.tax),
                    "taxIncludedAmount": _money(line.amount),
                }
                for line in r.lines
            ],
        }
        if r.red and r.red_of:
            order["invoiceCode"], order["invoiceNum"] = r.red_of
        return order

    def _token(self, *, fresh: bool = False) -> str:
        token = None if fresh else self._token_get()
        if token:
            return token
        try:
            reply = httpx.post(
                self.token_url,
                data={"client_id": self.app_key, "client_secret": self.app_secret,
                      "grant_type": "client_credentials"},
                timeout=self.timeout,
            )
            data = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"token: {exc}", unclear=True) from exc
        if reply.status_code != 200 or not data.get("access_token"):
            raise ProviderError(f"token refused: {data}", code="token_refused")
        self._token_put(data["access_token"], int(data.get("expires_in") or 86400))
        return data["access_token"]

    def _call(self, method: str, payload: dict[str, Any], *, retry_token: bool = True) -> Any:
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        senid = secrets.token_hex(16)
        nonce = str(secrets.randbelow(10**8))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Nuonuo-Sign": nuonuo_sign(
                app_secret=self.app_secret, app_key=self.app_key, senid=senid, nonce=nonce,
                timestamp=timestamp, content=content,
            ),
            "accessToken": self._token(),
            "userTax": self.seller_tax_number,
            "method": method,
        }
        params = {"senid": senid, "nonce": nonce, "timestamp": timestamp, "appkey": self.app_key}
        try:
            reply = httpx.post(
                self.api_url, params=params, content=content.encode(), headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"{method}: {type(exc).__name__}: {exc}", unclear=True) from exc
        if reply.status_code >= 500:
            raise ProviderError(f"{method}: HTTP {reply.status_code}", unclear=True)
        try:
            data = reply.json()
        except ValueError as exc:
            raise ProviderError(f"{method}: not JSON (HTTP {reply.status_code})", unclear=True) from exc
        code = str(data.get("code") or "")
        if code == "070301" and retry_token:  # access token expired or revoked
            self._token(fresh=True)
            return self._call(method, payload, retry_token=False)
        if code != OK:
            raise ProviderError(f"{code} {data.get('describe', '')}".strip(), code=code)
        return data.get("result")
