"""Fake WeChat Open Platform third-party platform (第三方平台) - a DEVELOPMENT STAND-IN.

Part of the fake api.weixin.qq.com (``fakes.wechat_api``): the same server answers these.
What WeChat pushes to the platform (``component_verify_ticket``, authorisation changes, a
mini-program's audit result) is sent as WeChat sends it: XML encrypted with the platform's
EncodingAESKey (AES-256-CBC, WeChat's framing) and signed (``msg_signature`` = SHA-1 of the
sorted token, timestamp, nonce and ciphertext) - real cryptography, written here
independently of the client library the platform uses.

Endpoints imitated (``component_access_token`` / authorizer ``access_token`` checked):

* ``POST /cgi-bin/component/api_component_token``      needs the last pushed verify ticket
* ``POST /cgi-bin/component/api_create_preauthcode``
* ``POST /cgi-bin/component/api_query_auth``           authorization code -> authorizer tokens
* ``POST /cgi-bin/component/api_authorizer_token``     refresh (the refresh token rotates)
* ``POST /wxa/addtotemplate``  ``GET /wxa/gettemplatedraftlist``  ``GET /wxa/gettemplatelist``
* authorizer: ``POST /wxa/commit``, ``POST /wxa/submit_audit``,
  ``GET /wxa/get_latest_auditstatus``, ``POST /wxa/release``, ``GET /wxa/_fake_code``

Control (what happens on WeChat's side that no API call causes):

* ``POST /_fake/component``  {component_appid, secret, token, encoding_aes_key, callback_url,
  events_url}: register the platform (``events_url`` may contain ``$APPID$``); a URL that
  is not http(s) (e.g. ``/wechat/component/events``) is not called: the push is kept in
  ``GET /_fake/component`` → ``pushes`` (``target`` path and query, ``body``) to deliver
* ``POST /_fake/component/ticket``: push a new component_verify_ticket now (WeChat: every 10 min)
* ``POST /_fake/component/authorize`` {pre_auth_code, authorizer_appid}: the operator's
  administrator scans and confirms; pushes ``authorized`` and returns the redirect URL
* ``POST /_fake/component/drafts`` {user_version, user_desc, size}: a code upload by the
  developer tools (a draft)
* ``POST /_fake/component/audit`` {appid, pass: bool, reason}: WeChat's reviewers decide;
  pushes ``weapp_audit_success`` / ``weapp_audit_fail``
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import struct
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fakes._server import HTTPError, Reply, Request, json_reply, route


# --------------------------------------------------------------------------- crypto
def _key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must be 43 characters of base64 (32 bytes)")
    return key


def encrypt(plain: str, *, encoding_aes_key: str, appid: str) -> str:
    """WeChat's message encryption: base64(AES-256-CBC(random16 | len | msg | appid))."""
    key = _key(encoding_aes_key)
    body = plain.encode()
    data = secrets.token_bytes(16) + struct.pack(">I", len(body)) + body + appid.encode()
    pad = 32 - len(data) % 32
    data += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def decrypt(cipher_text: str, *, encoding_aes_key: str) -> tuple[str, str]:
    """(message, appid) of a WeChat-encrypted text."""
    key = _key(encoding_aes_key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    data = decryptor.update(base64.b64decode(cipher_text)) + decryptor.finalize()
    data = data[: -data[-1]]
    (length,) = struct.unpack(">I", data[16:20])
    return data[20 : 20 + length].decode(), data[20 + length :].decode()


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def _xml(fields: dict[str, Any]) -> str:
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}><![CDATA[{v}]]></{k}>"
        for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>"


# --------------------------------------------------------------------------- state
@dataclass
class Component:
    appid: str
    secret: str
    token: str
    encoding_aes_key: str
    callback_url: str = ""  # 授权事件接收URL
    events_url: str = ""  # 消息与事件接收URL ($APPID$ replaced by the mini-program's appid)
    ticket: str = ""
    pushes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Authorizer:
    appid: str
    access_token: str
    refresh_token: str
    expires_at: float
    authorized: bool = True
    committed: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    released: dict[str, Any] | None = None


@dataclass
class ComponentState:
    component: Component | None = None
    auto_audit_seconds: float = 0.0  # > 0: every submitted version passes after this long
    access_tokens: dict[str, float] = field(default_factory=dict)  # value -> expires at
    pre_auth_codes: set[str] = field(default_factory=set)
    auth_codes: dict[str, str] = field(default_factory=dict)  # code -> authorizer appid
    authorizers: dict[str, Authorizer] = field(default_factory=dict)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fail(errcode: int, errmsg: str) -> HTTPError:
    return HTTPError(json_reply(200, {"errcode": errcode, "errmsg": errmsg}))


OK = {"errcode": 0, "errmsg": "ok"}
TOKEN_TTL = 7200


class ComponentEndpoints:
    """Mixed into the fake WeChat API server; state in ``self.component_state``."""

    component_state: ComponentState

    def component_routes(self) -> list:
        return [
            route("POST", r"/cgi-bin/component/api_component_token", self.h_component_token),
            route("POST", r"/cgi-bin/component/api_create_preauthcode", self.h_preauthcode),
            route("POST", r"/cgi-bin/component/api_query_auth", self.h_query_auth),
            route("POST", r"/cgi-bin/component/api_authorizer_token", self.h_authorizer_token),
            route("POST", r"/wxa/addtotemplate", self.h_addtotemplate),
            route("GET", r"/wxa/gettemplatedraftlist", self.h_draftlist),
            route("GET", r"/wxa/gettemplatelist", self.h_templatelist),
            route("POST", r"/wxa/commit", self.h_commit),
            route("POST", r"/wxa/submit_audit", self.h_submit_audit),
            route("GET", r"/wxa/get_latest_auditstatus", self.h_audit_status),
            route("POST", r"/wxa/release", self.h_release),
            route("GET", r"/_fake/component", self.c_component),
            route("POST", r"/_fake/component", self.c_component),
            route("POST", r"/_fake/component/ticket", self.c_ticket),
            route("POST", r"/_fake/component/authorize", self.c_authorize),
            route("POST", r"/_fake/component/unauthorize", self.c_unauthorize),
            route("POST", r"/_fake/component/drafts", self.c_draft),
            route("POST", r"/_fake/component/audit", self.c_audit),
            route("GET", r"/_fake/component/authorizers", self.c_authorizers),
        ]

    # ---------------------------------------------------------------- helpers
    def _component(self) -> Component:
        if self.component_state.component is None:
            raise _fail(61004, "component not registered (POST /_fake/component)")
        return self.component_state.component

    def _check_component_token(self, request: Request) -> Component:
        value = request.query.get("component_access_token", "")
        with self.component_state.lock:
            expires = self.component_state.access_tokens.get(value)
            if expires is None or time.time() >= expires:
                raise _fail(40001, "invalid component_access_token")
            return self._component()

    def _check_authorizer_token(self, request: Request) -> Authorizer:
        value = request.query.get("access_token", "")
        with self.component_state.lock:
            for authorizer in self.component_state.authorizers.values():
                if authorizer.access_token == value:
                    if time.time() >= authorizer.expires_at:
                        raise _fail(42001, "access_token expired")
                    if not authorizer.authorized:
                        raise _fail(61003, "component is not authorized by this account")
                    return authorizer
        raise _fail(40001, "invalid credential, access_token is invalid")

    def push(self, url: str, fields: dict[str, Any]) -> dict[str, Any]:
        """POST an encrypted, signed event to the platform; returns what was sent and the
        answer (status and body)."""
        component = self._component()
        encrypted = encrypt(_xml(fields), encoding_aes_key=component.encoding_aes_key,
                            appid=component.appid)
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        sig = signature(component.token, timestamp, nonce, encrypted)
        body = _xml({"AppId": component.appid, "Encrypt": encrypted}).encode()
        target = (
            f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&nonce={nonce}"
            f"&encrypt_type=aes&msg_signature={sig}"
        )
        sent = {"url": url, "target": target, "body": body.decode(), "fields": fields}
        if not url.startswith(("http://", "https://")):
            # Not sent: kept for the caller to deliver (tests deliver it in-process).
            sent["answer"] = {"status": None, "body": "not sent"}
            with self.component_state.lock:
                component.pushes.append(sent)
            return sent
        request = urllib.request.Request(
            target, data=body, method="POST", headers={"Content-Type": "text/xml"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer = {"status": response.status, "body": response.read().decode()}
        except urllib.error.HTTPError as exc:
            answer = {"status": exc.code, "body": exc.read().decode(errors="replace")}
        except OSError as exc:
            answer = {"status": 0, "body": str(exc)}
        sent["answer"] = answer
        with self.component_state.lock:
            component.pushes.append(sent)
        return sent

    # ---------------------------------------------------------------- component API
    def h_component_token(self, request: Request) -> Reply:
        data = request.json()
        with self.component_state.lock:
            component = self._component()
            if data.get("component_appid") != component.appid:
                raise _fail(61004, "invalid component_appid")
            if not secrets.compare_digest(str(data.get("component_appsecret", "")), component.secret):
                raise _fail(40125, "invalid component_appsecret")
            if not component.ticket or data.get("component_verify_ticket") != component.ticket:
                raise _fail(61006, "invalid component_verify_ticket")
            value = secrets.token_urlsafe(48)
            self.component_state.access_tokens[value] = time.time() + TOKEN_TTL
        return json_reply(200, {"component_access_token": value, "expires_in": TOKEN_TTL})

    def h_preauthcode(self, request: Request) -> Reply:
        self._check_component_token(request)
        code = "preauthcode@@@" + secrets.token_urlsafe(24)
        with self.component_state.lock:
            self.component_state.pre_auth_codes.add(code)
        return json_reply(200, {"pre_auth_code": code, "expires_in": 1800})

    def _issue_tokens(self, appid: str) -> Authorizer:
        """Caller holds the lock."""
        authorizer = self.component_state.authorizers.get(appid)
        access, refresh = "authorizer@@@" + secrets.token_urlsafe(32), "refreshtoken@@@" + secrets.token_urlsafe(32)
        if authorizer is None:
            authorizer = self.component_state.authorizers[appid] = Authorizer(
                appid, access, refresh, time.time() + TOKEN_TTL
            )
        else:
            authorizer.access_token, authorizer.refresh_token = access, refresh
            authorizer.expires_at = time.time() + TOKEN_TTL
            authorizer.authorized = True
        return authorizer

    def h_query_auth(self, request: Request) -> Reply:
        self._check_component_token(request)
        code = request.json().get("authorization_code", "")
        with self.component_state.lock:
            appid = self.component_state.auth_codes.get(code)  # usable until it expires
            if appid is None:
                raise _fail(61010, "authorization_code is invalid or expired")
            authorizer = self._issue_tokens(appid)
        return json_reply(200, {"authorization_info": {
            "authorizer_appid": appid,
            "authorizer_access_token": authorizer.access_token,
            "expires_in": TOKEN_TTL,
            "authorizer_refresh_token": authorizer.refresh_token,
            "func_info": [{"funcscope_category": {"id": 18}}, {"funcscope_category": {"id": 17}}],
        }})

    def h_authorizer_token(self, request: Request) -> Reply:
        self._check_component_token(request)
        data = request.json()
        with self.component_state.lock:
            authorizer = self.component_state.authorizers.get(data.get("authorizer_appid", ""))
            if authorizer is None or not authorizer.authorized:
                raise _fail(61003, "component is not authorized by this account")
            if data.get("authorizer_refresh_token") != authorizer.refresh_token:
                raise _fail(61023, "refresh_token is invalid")
            authorizer = self._issue_tokens(authorizer.appid)
        return json_reply(200, {
            "authorizer_access_token": authorizer.access_token,
            "expires_in": TOKEN_TTL,
            "authorizer_refresh_token": authorizer.refresh_token,
        })

    # ---------------------------------------------------------------- template library
    def h_addtotemplate(self, request: Request) -> Reply:
        self._check_component_token(request)
        draft_id = request.json().get("draft_id")
        with self.component_state.lock:
            draft = next((d for d in self.component_state.drafts if d["draft_id"] == draft_id), None)
            if draft is None:
                raise _fail(85064, "draft not found")
            template = {
                "template_id": next(self.component_state.ids),
                "user_version": draft["user_version"],
                "user_desc": draft["user_desc"],
                "create_time": int(time.time()),
                "template_type": 0,
                "source_miniprogram_appid": draft["source_miniprogram_appid"],
            }
            self.component_state.templates.append(template)
        return json_reply(200, OK)

    def h_draftlist(self, request: Request) -> Reply:
        self._check_component_token(request)
        with self.component_state.lock:
            return json_reply(200, {**OK, "draft_list": list(self.component_state.drafts)})

    def h_templatelist(self, request: Request) -> Reply:
        self._check_component_token(request)
        with self.component_state.lock:
            return json_reply(200, {**OK, "template_list": list(self.component_state.templates)})

    # ---------------------------------------------------------------- code management
    def h_commit(self, request: Request) -> Reply:
        authorizer = self._check_authorizer_token(request)
        data = request.json()
        try:
            ext = json.loads(data.get("ext_json") or "{}")
        except ValueError:
            raise _fail(85045, "ext_json is not valid JSON") from None
        with self.component_state.lock:
            if not any(t["template_id"] == data.get("template_id") for t in self.component_state.templates):
                raise _fail(85013, "template_id does not exist")
            if not ext.get("extEnable") or not isinstance(ext.get("ext"), dict):
                raise _fail(85045, "ext_json needs extEnable and ext")
            if ext.get("extAppid") not in (None, authorizer.appid):
                raise _fail(85045, "extAppid is not this mini-program")
            authorizer.committed = {
                "template_id": data["template_id"], "ext": ext,
                "user_version": data.get("user_version", ""), "user_desc": data.get("user_desc", ""),
            }
        return json_reply(200, OK)

    def h_submit_audit(self, request: Request) -> Reply:
        authorizer = self._check_authorizer_token(request)
        with self.component_state.lock:
            if authorizer.committed is None:
                raise _fail(85009, "no code committed")
            if authorizer.audit and authorizer.audit["status"] == 2:
                raise _fail(85009, "a version is already under audit")
            authorizer.audit = {
                "auditid": next(self.component_state.ids), "status": 2, "reason": "",
                "version": authorizer.committed["user_version"],
                "item_list": request.json().get("item_list", []),
            }
            auditid, delay = authorizer.audit["auditid"], self.component_state.auto_audit_seconds
        if delay > 0:
            timer = threading.Timer(delay, self.audit_decide, args=(authorizer.appid, True, ""))
            timer.daemon = True
            timer.start()
        return json_reply(200, {**OK, "auditid": auditid})

    def h_audit_status(self, request: Request) -> Reply:
        authorizer = self._check_authorizer_token(request)
        with self.component_state.lock:
            if authorizer.audit is None:
                raise _fail(85058, "no audit")
            a = authorizer.audit
            return json_reply(200, {**OK, "auditid": a["auditid"], "status": a["status"],
                                    "reason": a["reason"], "user_version": a["version"]})

    def h_release(self, request: Request) -> Reply:
        authorizer = self._check_authorizer_token(request)
        with self.component_state.lock:
            if not authorizer.audit or authorizer.audit["status"] != 0:
                raise _fail(85019, "no approved version to release")
            authorizer.released = {"version": authorizer.audit["version"], "at": int(time.time())}
            authorizer.audit = {**authorizer.audit, "status": 5}  # released: nothing pending
        return json_reply(200, OK)

    # ---------------------------------------------------------------- control
    def c_component(self, request: Request) -> Reply:
        if request.method == "POST":
            d = request.json()
            self.component_register(  # ValueError (bad key) -> 400
                d["component_appid"], d["secret"], d["token"], d["encoding_aes_key"],
                d.get("callback_url", ""), d.get("events_url", ""),
            )
            if "auto_audit_seconds" in d:
                self.component_state.auto_audit_seconds = float(d["auto_audit_seconds"])
        with self.component_state.lock:
            c = self.component_state.component
            return json_reply(200, {"component_appid": c.appid if c else None,
                                    "pushes": list(c.pushes) if c else []})

    def c_ticket(self, request: Request) -> Reply:
        ticket, sent = self.ticket_push()
        return json_reply(200, {"ticket": ticket, "answer": sent["answer"]})

    def ticket_push(self) -> tuple[str, dict[str, Any]]:
        """A new component_verify_ticket, pushed to the platform (WeChat: every 10 minutes)."""
        component = self._component()
        ticket = "ticket@@@" + secrets.token_urlsafe(32)
        with self.component_state.lock:
            component.ticket = ticket
        sent = self.push(component.callback_url, {
            "AppId": component.appid, "CreateTime": int(time.time()),
            "InfoType": "component_verify_ticket", "ComponentVerifyTicket": ticket,
        })
        return ticket, sent

    def ticket_pushes_start(self, every: float, first_after: float = 3.0) -> None:
        """Push a ticket ``first_after`` seconds from now and then every ``every`` seconds
        (until the server shuts down), as WeChat does."""
        def loop() -> None:
            wait = first_after
            while not self.stop_event.wait(wait):
                try:
                    _, sent = self.ticket_push()
                    delivered = sent["answer"]["status"] == 200
                    print(f"[fake wechat] component_verify_ticket pushed: {sent['answer']}", flush=True)
                except Exception as exc:  # noqa: BLE001 - keep pushing
                    delivered = False
                    print(f"[fake wechat] ticket push failed: {exc}", flush=True)
                wait = every if delivered else min(every, 5.0)  # the platform may be starting

        threading.Thread(target=loop, name="component-ticket", daemon=True).start()

    def component_register(self, appid: str, secret: str, token: str, encoding_aes_key: str,
                           callback_url: str, events_url: str) -> None:
        _key(encoding_aes_key)
        with self.component_state.lock:
            self.component_state.component = Component(
                appid, secret, token, encoding_aes_key, callback_url, events_url
            )

    def c_authorize(self, request: Request) -> Reply:
        d = request.json()
        component = self._component()
        appid = d.get("authorizer_appid", "")
        with self.component_state.lock:
            if d.get("pre_auth_code") not in self.component_state.pre_auth_codes:
                raise _fail(61007, "pre_auth_code is invalid")
            self.component_state.pre_auth_codes.discard(d["pre_auth_code"])
            code = "queryauthcode@@@" + secrets.token_urlsafe(24)
            self.component_state.auth_codes[code] = appid
        redirect = d.get("redirect_uri", "")
        sent = self.push(component.callback_url, {
            "AppId": component.appid, "CreateTime": int(time.time()), "InfoType": "authorized",
            "AuthorizerAppid": appid, "AuthorizationCode": code,
            "AuthorizationCodeExpiredTime": int(time.time()) + 3600,
            "PreAuthCode": d["pre_auth_code"],
        })
        location = f"{redirect}{'&' if '?' in redirect else '?'}auth_code={quote(code)}&expires_in=3600" if redirect else ""
        return json_reply(200, {"auth_code": code, "redirect": location, "answer": sent["answer"]})

    def c_unauthorize(self, request: Request) -> Reply:
        appid = request.json().get("authorizer_appid", "")
        component = self._component()
        with self.component_state.lock:
            if appid in self.component_state.authorizers:
                self.component_state.authorizers[appid].authorized = False
        sent = self.push(component.callback_url, {
            "AppId": component.appid, "CreateTime": int(time.time()),
            "InfoType": "unauthorized", "AuthorizerAppid": appid,
        })
        return json_reply(200, {"answer": sent["answer"]})

    def c_draft(self, request: Request) -> Reply:
        d = request.json()
        with self.component_state.lock:
            draft = {
                "draft_id": next(self.component_state.ids),
                "user_version": d.get("user_version", ""), "user_desc": d.get("user_desc", ""),
                "create_time": int(time.time()), "size": int(d.get("size", 0)),
                "source_miniprogram_appid": d.get("source_miniprogram_appid", "wxdevtools0000001"),
            }
            self.component_state.drafts.append(draft)
        return json_reply(200, draft)

    def c_audit(self, request: Request) -> Reply:
        d = request.json()
        passed = bool(d.get("pass", True))
        sent = self.audit_decide(d.get("appid", ""), passed, d.get("reason", "小程序内容不符合规范"))
        if sent is None:
            return json_reply(400, {"error": "nothing under audit for this appid"})
        return json_reply(200, {"answer": sent["answer"]})

    def audit_decide(self, appid: str, passed: bool, reason: str) -> dict[str, Any] | None:
        """WeChat's reviewers decide on the version under audit and WeChat pushes the result;
        None if nothing of ``appid`` is under audit."""
        component = self._component()
        with self.component_state.lock:
            authorizer = self.component_state.authorizers.get(appid)
            if authorizer is None or not authorizer.audit or authorizer.audit["status"] != 2:
                return None
            reason = "" if passed else reason
            authorizer.audit.update(status=0 if passed else 1, reason=reason)
        now = int(time.time())
        fields: dict[str, Any] = {
            "ToUserName": "gh_fake", "FromUserName": "oFakeWeChat", "CreateTime": now,
            "MsgType": "event", "Event": "weapp_audit_success" if passed else "weapp_audit_fail",
        }
        if passed:
            fields["SuccTime"] = now
        else:
            fields |= {"Reason": reason, "FailTime": now, "ScreenShot": ""}
        return self.push(component.events_url.replace("$APPID$", appid), fields)

    def c_authorizers(self, request: Request) -> Reply:
        with self.component_state.lock:
            return json_reply(200, {a.appid: {
                "authorized": a.authorized, "committed": a.committed, "audit": a.audit,
                "released": a.released,
            } for a in self.component_state.authorizers.values()})
