"""T/CEC 102.4 envelope, encryption and signature. Pure: no Django, no I/O.

- ``Data``: the business JSON (UTF-8), AES-128-CBC with PKCS#7 padding, key ``DataSecret``
  and IV ``DataSecretIV`` taken as their ASCII bytes (16 each), standard one-line base64.
- ``Sig``: HMAC-MD5 keyed with ``SigSecret`` over ``OperatorID + Data + TimeStamp + Seq``
  (request) or ``Ret + Msg + Data`` (response), 32 uppercase hex; compared case-insensitively.
- ``Ret``: 0 ok, 4001 signature, 4002 token, 4003 envelope, 4004 business parameter or
  undecryptable ``Data``, 500 system error, -1 busy.

Source: ``shared/reference/cec-t102-2016.md`` §1–3 (test vectors V3–V7 in §6).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

RET_OK = 0
RET_BUSY = -1
RET_SIGNATURE = 4001
RET_TOKEN = 4002
RET_ENVELOPE = 4003
RET_PARAMETER = 4004
RET_SYSTEM = 500

ENVELOPE_FIELDS = ("OperatorID", "Data", "TimeStamp", "Seq", "Sig")


class CecError(Exception):
    """A request or response the standard says to refuse with ``ret`` (4001–4004, 500)."""

    def __init__(self, ret: int, msg: str) -> None:
        super().__init__(msg)
        self.ret = ret
        self.msg = msg


@dataclass(frozen=True)
class Secrets:
    """One secret set (the serving side's): 16-character DataSecret and DataSecretIV, the
    SigSecret (any length), and the OperatorSecret used only inside ``query_token``."""

    data_secret: str
    data_iv: str
    sig_secret: str
    operator_secret: str = ""


_MARK = "\x00"
_MARKED = re.compile(r'"\\u0000(-?[0-9.]+)\\u0000"')


def _decimals_marked(data: Any) -> Any:
    if isinstance(data, Decimal):
        return f"{_MARK}{data:f}{_MARK}"
    if isinstance(data, dict):
        return {k: _decimals_marked(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_decimals_marked(v) for v in data]
    return data


def dumps(data: Any) -> str:
    """Business JSON: compact, Chinese text kept as is, each Decimal a JSON number with
    exactly its places (some regulators check the literal: ``1.2000``, ``0.50``)."""
    text = json.dumps(_decimals_marked(data), ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(lambda m: m.group(1), text)


def encrypt(plain: str, key: str, iv: str) -> str:
    """AES-128-CBC/PKCS#7 of ``plain`` (UTF-8 bytes) → base64. Raises ValueError for a key
    or IV that is not 16 bytes."""
    key_b, iv_b = key.encode(), iv.encode()
    if len(key_b) != 16 or len(iv_b) != 16:
        raise ValueError("DataSecret and DataSecretIV must be 16 ASCII characters")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key_b), modes.CBC(iv_b)).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode()


def decrypt(data: str, key: str, iv: str) -> str:
    """The inverse of :func:`encrypt` (line breaks in the base64 tolerated). Raises
    CecError(4004) when ``data`` is not base64, not whole blocks, badly padded or not UTF-8."""
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
        if not raw or len(raw) % 16:
            raise ValueError("not whole AES blocks")
        dec = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        padded = dec.update(raw) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise CecError(RET_PARAMETER, "Data cannot be decrypted") from exc


def sign(message: str, sig_secret: str) -> str:
    """HMAC-MD5 of ``message`` keyed with ``sig_secret``, 32 uppercase hex."""
    return hmac.new(sig_secret.encode(), message.encode(), hashlib.md5).hexdigest().upper()


def _same(sig: str, expected: str) -> bool:
    return hmac.compare_digest(sig.upper().encode(), expected.encode())


def timestamp(at: datetime) -> str:
    """``yyyyMMddHHmmss`` of ``at`` (pass a China-time datetime)."""
    return at.strftime("%Y%m%d%H%M%S")


def request_build(
    operator_id: str, data: Any, secrets: Secrets, *, at: datetime, seq: str = "0001"
) -> dict[str, str]:
    """The request envelope from the caller ``operator_id``: ``data`` (a JSON-able object)
    encrypted and the envelope signed with the callee's ``secrets``."""
    cipher = encrypt(dumps(data), secrets.data_secret, secrets.data_iv)
    stamp = timestamp(at)
    return {
        "OperatorID": operator_id,
        "Data": cipher,
        "TimeStamp": stamp,
        "Seq": seq,
        "Sig": sign(operator_id + cipher + stamp + seq, secrets.sig_secret),
    }


def envelope_parse(body: bytes | str) -> dict[str, str]:
    """The request envelope's five fields as text. Raises CecError(4003) for a body that is
    not a JSON object or lacks one of OperatorID, Data, TimeStamp, Seq, Sig."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CecError(RET_ENVELOPE, "body is not JSON") from exc
    if not isinstance(envelope, dict):
        raise CecError(RET_ENVELOPE, "body is not a JSON object")
    missing = [f for f in ENVELOPE_FIELDS if envelope.get(f) in (None, "")]
    if missing:
        raise CecError(RET_ENVELOPE, "missing " + ", ".join(missing))
    if not all(isinstance(envelope[f], str | int) for f in ENVELOPE_FIELDS):
        raise CecError(RET_ENVELOPE, "envelope fields must be strings")
    fields = {f: str(envelope[f]) for f in ENVELOPE_FIELDS}
    if len(fields["TimeStamp"]) != 14 or not fields["TimeStamp"].isdigit():
        raise CecError(RET_ENVELOPE, "TimeStamp must be yyyyMMddHHmmss")
    return fields


def request_check_sig(envelope: dict[str, str], secrets: Secrets) -> None:
    """Check the request envelope's Sig; raises CecError(4001) when it does not match."""
    e = envelope
    expected = sign(e["OperatorID"] + e["Data"] + e["TimeStamp"] + e["Seq"], secrets.sig_secret)
    if not _same(e["Sig"], expected):
        raise CecError(RET_SIGNATURE, "signature mismatch")


def request_open(envelope: dict[str, str], secrets: Secrets) -> Any:
    """Decrypt and parse the request's Data (CecError 4004 when undecryptable or not JSON);
    numbers with a fraction come back as Decimal."""
    plain = decrypt(envelope["Data"], secrets.data_secret, secrets.data_iv)
    try:
        return json.loads(plain, parse_float=Decimal)
    except ValueError as exc:
        raise CecError(RET_PARAMETER, "Data is not JSON") from exc


def request_verify(envelope: dict[str, str], secrets: Secrets) -> Any:
    """:func:`request_check_sig` (4001) then :func:`request_open` (4004): the business
    object of a request."""
    request_check_sig(envelope, secrets)
    return request_open(envelope, secrets)


def response_build(ret: int, msg: str, data: Any, secrets: Secrets | None) -> dict[str, Any]:
    """The response envelope: ``data`` (None: empty) encrypted, Sig over Ret+Msg+Data.
    Without ``secrets`` (an unknown caller) Data and Sig are empty."""
    if secrets is None:
        return {"Ret": ret, "Msg": msg, "Data": "", "Sig": ""}
    cipher = "" if data is None else encrypt(dumps(data), secrets.data_secret, secrets.data_iv)
    return {"Ret": ret, "Msg": msg, "Data": cipher,
            "Sig": sign(f"{ret}{msg}{cipher}", secrets.sig_secret)}


def response_parse(body: bytes | str, secrets: Secrets) -> tuple[int, str, Any]:
    """(Ret, Msg, business object or None) of a response. Raises CecError: 4003 for a body
    that is not a response envelope, 4001 for a bad Sig, 4004 for undecryptable Data."""
    try:
        envelope = json.loads(body)
        ret = int(envelope["Ret"])
        msg = envelope.get("Msg") or ""
        data = envelope.get("Data") or ""
        sig = envelope.get("Sig") or ""
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CecError(RET_ENVELOPE, "not a CEC response") from exc
    if data or sig:
        if not _same(str(sig), sign(f"{ret}{msg}{data}", secrets.sig_secret)):
            raise CecError(RET_SIGNATURE, "response signature mismatch")
    if not data:
        return ret, msg, None
    plain = decrypt(data, secrets.data_secret, secrets.data_iv)
    try:
        return ret, msg, json.loads(plain, parse_float=Decimal)
    except ValueError as exc:
        raise CecError(RET_PARAMETER, "response Data is not JSON") from exc
