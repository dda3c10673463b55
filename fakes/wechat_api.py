"""Fake api.weixin.qq.com (mini-program server APIs) - a DEVELOPMENT STAND-IN.

Run:  python -m fakes.wechat_api --port 8801 [--host 127.0.0.1] [--strict] [--app APPID:SECRET]

Endpoints imitated (errors come back as HTTP 200 + ``errcode``/``errmsg``, like WeChat):

* ``GET  /cgi-bin/token``                    new token per call; the previous one keeps 5 min
* ``POST /cgi-bin/stable_token``             same token until 5 min before expiry, or force_refresh
* ``GET  /sns/jscode2session``               deterministic openid per (appid, user); codes single-use
* ``POST /wxa/business/getuserphonenumber``  phone code -> phone_info
* ``POST /cgi-bin/message/subscribe/send``   recorded; read back with ``GET /_fake/messages``
* ``POST /wxa/getwxacodeunlimit``            a PNG (a real QR code of ``page?scene=...``)
* ``POST /wxa/generate_urllink``              a URL Link ``https://wxaurl.cn/…`` for ``path?query``
* the Open Platform third-party platform and code management: see ``fakes.wechat_component``

Login codes (what ``wx.login()`` would hand the mini-program):

* ``demo-<name>`` or ``demo-<name>#<anything>``: user ``<name>``; the openid depends only on
  (appid, name) so it is stable across restarts. Each exact code string works once
  (40163 afterwards, like WeChat), so use ``demo-alice#1``, ``demo-alice#2``... to log in again.
* ``invalid...``: 40029 invalid code.
* any other string: a user keyed by the code itself.

Phone codes (``getPhoneNumber`` button): ``phone-13812345678[#n]`` gives that number;
``demo-<name>[#n]`` a stable number for that user; anything else a number derived from it.

Apps: by default the server is *permissive*: an unknown appid is registered with the first
secret it presents (a later different secret gets 40125). ``--strict`` (or
``WeChatApiServer(permissive=False)``) answers 40013 for any appid not registered through
``POST /_fake/apps {"appid", "secret"}`` or ``--app APPID:SECRET``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import itertools
import re
import secrets
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

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
from fakes.wechat_component import ComponentEndpoints, ComponentState

TOKEN_GRACE_SECONDS = 300  # a replaced token stays valid this long (WeChat: 5 minutes)
STABLE_REFRESH_BEFORE = 300  # stable_token hands out a new token in the last 5 minutes


def demo_openid(appid: str, name: str) -> str:
    """The openid the fake gives user ``name`` (code ``demo-<name>``) in mini-program ``appid``."""
    return _openid(appid, name)


def demo_unionid(name: str) -> str:
    return "o" + _b64hash("unionid", name)[:27]


def demo_phone(name: str) -> str:
    """The phone number the fake returns for phone code ``demo-<name>``."""
    digest = hashlib.sha256(f"phone:{name}".encode()).digest()
    return "139" + str(int.from_bytes(digest[:8], "big") % 10**8).zfill(8)


def _b64hash(*parts: str) -> str:
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _openid(appid: str, user_key: str) -> str:
    return "o" + _b64hash("openid", appid, user_key)[:27]


def _user_key(code: str) -> str:
    base = code.split("#", 1)[0]
    if base.startswith("demo-"):
        return base[len("demo-") :]
    return code


def _err(errcode: int, errmsg: str) -> Reply:
    rid = secrets.token_hex(4) + "-" + secrets.token_hex(4)
    return json_reply(200, {"errcode": errcode, "errmsg": f"{errmsg} rid: {rid}"})


def _fail(errcode: int, errmsg: str) -> HTTPError:
    return HTTPError(_err(errcode, errmsg))


@dataclass
class App:
    appid: str
    secret: str
    unionid: bool = False


@dataclass
class Token:
    value: str
    appid: str
    kind: str  # "token" or "stable"
    expires_at: float
    replaced_at: float | None = None


@dataclass
class WeChatApiState:
    permissive: bool = True
    token_ttl: int = 7200
    apps: dict[str, App] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    current: dict[tuple[str, str], Token] = field(default_factory=dict)
    used_codes: set[tuple[str, str]] = field(default_factory=set)
    used_phone_codes: set[tuple[str, str]] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    msg_ids: Any = field(default_factory=lambda: itertools.count(2_000_000_001))


class WeChatApiServer(ComponentEndpoints, FakeServer):
    """Fake api.weixin.qq.com. ``server.state`` holds everything; all access is under its lock."""

    def __init__(
        self,
        address: tuple[str, int] = ("127.0.0.1", 0),
        *,
        permissive: bool = True,
        token_ttl: int = 7200,
    ) -> None:
        super().__init__(address, Handler)
        self.state = WeChatApiState(permissive=permissive, token_ttl=token_ttl)
        self.component_state = ComponentState()  # the third-party platform (fakes/wechat_component.py)

    # ----------------------------------------------------------------- public helpers
    def register_app(self, appid: str, secret: str, *, unionid: bool = False) -> None:
        with self.state.lock:
            self.state.apps[appid] = App(appid, secret, unionid)

    def messages(self, appid: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(m) for m in self.state.messages if appid in (None, m["appid"])]

    def expire_tokens(self, appid: str | None = None) -> int:
        """Make every token (of ``appid``) expired now; returns how many."""
        now = time.time()
        n = 0
        with self.state.lock:
            for tok in self.state.tokens.values():
                if appid in (None, tok.appid) and tok.expires_at > now:
                    tok.expires_at = now - 1
                    n += 1
        return n

    def default_error_reply(self) -> Reply:
        return json_reply(200, {"errcode": -1, "errmsg": "system error"})

    def not_found_reply(self, request: Request) -> Reply:
        return json_reply(404, {"errcode": 404, "errmsg": f"no such api: {request.path}"})

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/cgi-bin/token", self.h_token),
            route("POST", r"/cgi-bin/stable_token", self.h_stable_token),
            route("GET", r"/sns/jscode2session", self.h_code2session),
            route("POST", r"/wxa/business/getuserphonenumber", self.h_phone),
            route("POST", r"/cgi-bin/message/subscribe/send", self.h_subscribe_send),
            route("POST", r"/wxa/getwxacodeunlimit", self.h_wxacode),
            route("POST", r"/wxa/generate_urllink", self.h_urllink),
            route("GET", r"/_fake/health", self.c_health),
            route("GET", r"/_fake/apps", self.c_apps),
            route("POST", r"/_fake/apps", self.c_apps),
            route("GET", r"/_fake/messages", self.c_messages),
            route("DELETE", r"/_fake/messages", self.c_messages),
            route("GET", r"/_fake/openid", self.c_openid),
            route("POST", r"/_fake/tokens/expire", self.c_expire_tokens),
            route("POST", r"/_fake/config", self.c_config),
            route("POST", r"/_fake/reset", self.c_reset),
            route("GET", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("POST", r"/_fake/failures", lambda r: control_failures(self, r)),
            route("DELETE", r"/_fake/failures", lambda r: control_failures(self, r)),
            *self.component_routes(),
        ]

    # ----------------------------------------------------------------- checks
    def _check_app(self, appid: str, secret: str) -> App:
        """Caller holds the lock."""
        if not appid:
            raise _fail(41002, "appid missing")
        app = self.state.apps.get(appid)
        if app is None:
            if not self.state.permissive or not re.fullmatch(r"wx[0-9a-zA-Z]{6,30}", appid):
                raise _fail(40013, "invalid appid")
            if not secret:
                raise _fail(41004, "appsecret missing")
            app = self.state.apps[appid] = App(appid, secret)
        if not secret:
            raise _fail(41004, "appsecret missing")
        if not secrets.compare_digest(secret, app.secret):
            raise _fail(40125, "invalid appsecret")
        return app

    def _check_token(self, request: Request) -> App:
        value = request.query.get("access_token", "")
        if not value:
            raise _fail(41001, "access_token missing")
        now = time.time()
        with self.state.lock:
            tok = self.state.tokens.get(value)
            if tok is None:
                raise _fail(40001, "invalid credential, access_token is invalid or not latest")
            if now >= tok.expires_at or (
                tok.replaced_at is not None and now >= tok.replaced_at + TOKEN_GRACE_SECONDS
            ):
                # Real WeChat also uses 42001 for expiry; wechatpy retries on 40001/40014/42001.
                raise _fail(40001, "invalid credential, access_token is invalid or expired")
            return self.state.apps[tok.appid]

    def _new_token(self, appid: str, kind: str, now: float) -> Token:
        """Caller holds the lock."""
        old = self.state.current.get((appid, kind))
        if old is not None and old.replaced_at is None:
            old.replaced_at = now
        tok = Token(secrets.token_urlsafe(96), appid, kind, now + self.state.token_ttl)
        self.state.tokens[tok.value] = tok
        self.state.current[(appid, kind)] = tok
        return tok

    # ----------------------------------------------------------------- WeChat endpoints
    def h_token(self, request: Request) -> Reply:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        now = time.time()
        with self.state.lock:
            self._check_app(q.get("appid", ""), q.get("secret", ""))
            tok = self._new_token(q["appid"], "token", now)
        return json_reply(200, {"access_token": tok.value, "expires_in": self.state.token_ttl})

    def h_stable_token(self, request: Request) -> Reply:
        try:
            data = request.json()
        except ValueError:
            return _err(47001, "data format error")
        if data.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        now = time.time()
        with self.state.lock:
            self._check_app(data.get("appid", ""), data.get("secret", ""))
            tok = self.state.current.get((data["appid"], "stable"))
            if (
                data.get("force_refresh")
                or tok is None
                or tok.expires_at - now <= STABLE_REFRESH_BEFORE
            ):
                tok = self._new_token(data["appid"], "stable", now)
            expires_in = int(tok.expires_at - now)
        return json_reply(200, {"access_token": tok.value, "expires_in": expires_in})

    def h_code2session(self, request: Request) -> Reply:
        q = request.query
        if q.get("grant_type", "authorization_code") != "authorization_code":
            return _err(40002, "invalid grant_type")
        code = q.get("js_code", "")
        with self.state.lock:
            app = self._check_app(q.get("appid", ""), q.get("secret", ""))
            if not code:
                return _err(41008, "missing code")
            if code.startswith("invalid"):
                return _err(40029, "invalid code")
            if (app.appid, code) in self.state.used_codes:
                return _err(40163, "code been used")
            self.state.used_codes.add((app.appid, code))
        key = _user_key(code)
        result = {
            "openid": _openid(app.appid, key),
            "session_key": base64.b64encode(secrets.token_bytes(16)).decode(),
        }
        if app.unionid:
            result["unionid"] = demo_unionid(key)
        return json_reply(200, result)

    def h_phone(self, request: Request) -> Reply:
        app = self._check_token(request)
        try:
            data = request.json()
        except ValueError:
            return _err(47001, "data format error")
        code = str(data.get("code") or "")
        if not code or code.startswith("invalid"):
            return _err(40029, "invalid code")
        with self.state.lock:
            if (app.appid, code) in self.state.used_phone_codes:
                return _err(40029, "invalid code, code been used")
            self.state.used_phone_codes.add((app.appid, code))
        base = code.split("#", 1)[0]
        if re.fullmatch(r"phone-\d{5,15}", base):
            phone = base[len("phone-") :]
        else:
            phone = demo_phone(_user_key(code))
        return json_reply(
            200,
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": phone,
                    "purePhoneNumber": phone,
                    "countryCode": "86",
                    "watermark": {"timestamp": int(time.time()), "appid": app.appid},
                },
            },
        )

    def h_subscribe_send(self, request: Request) -> Reply:
        app = self._check_token(request)
        try:
            data = request.json()
        except ValueError:
            return _err(47001, "data format error")
        touser = data.get("touser")
        if not isinstance(touser, str) or not touser:
            return _err(40003, "invalid openid")
        if not data.get("template_id"):
            return _err(40037, "invalid template_id")
        payload = data.get("data")
        if not isinstance(payload, dict) or not all(
            isinstance(v, dict) and "value" in v for v in payload.values()
        ):
            return _err(47003, "argument invalid! data.value is empty or not an object")
        state = data.get("miniprogram_state", "formal")
        if state not in ("developer", "trial", "formal"):
            return _err(47003, "argument invalid! miniprogram_state")
        with self.state.lock:
            msgid = next(self.state.msg_ids)
            self.state.messages.append(
                {
                    "msgid": msgid,
                    "appid": app.appid,
                    "touser": touser,
                    "template_id": data["template_id"],
                    "page": data.get("page"),
                    "data": payload,
                    "miniprogram_state": state,
                    "lang": data.get("lang", "zh_CN"),
                    "received_at": time.time(),
                }
            )
        return json_reply(200, {"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def h_wxacode(self, request: Request) -> Reply:
        self._check_token(request)
        try:
            data = request.json()
        except ValueError:
            return _err(47001, "data format error")
        scene = str(data.get("scene") or "")
        if not scene or len(scene) > 32:
            return _err(40169, "invalid length for scene, or the data is not json string")
        page = data.get("page") or ""
        if page.startswith("/"):
            return _err(41030, "invalid page")
        width = int(data.get("width") or 430)
        png = make_png(f"{page}?scene={scene}", width)
        return Reply(200, png, content_type="image/png")

    def h_urllink(self, request: Request) -> Reply:
        app = self._check_token(request)
        try:
            data = request.json()
        except ValueError:
            return _err(47001, "data format error")
        path, query = str(data.get("path") or ""), str(data.get("query") or "")
        if path.startswith("/") or len(path) > 1024 or len(query) > 1024:
            return _err(40165, "invalid weapp pagepath")
        interval = int(data.get("expire_interval") or 30)
        if data.get("expire_type", 0) == 1 and not 1 <= interval <= 30:
            return _err(85400, "invalid expire_interval")
        return json_reply(200, {"errcode": 0, "errmsg": "ok",
                                "url_link": "https://wxaurl.cn/" + _b64hash(app.appid, path, query)[:12]})

    # ----------------------------------------------------------------- control endpoints
    def c_health(self, request: Request) -> Reply:
        return json_reply(
            200,
            {"ok": True, "fake": "api.weixin.qq.com", "permissive": self.state.permissive},
        )

    def c_apps(self, request: Request) -> Reply:
        if request.method == "POST":
            data = request.json()
            if not data.get("appid") or not data.get("secret"):
                return json_reply(400, {"error": "appid and secret are required"})
            self.register_app(data["appid"], data["secret"], unionid=bool(data.get("unionid")))
        with self.state.lock:
            apps = [{"appid": a.appid, "unionid": a.unionid} for a in self.state.apps.values()]
        return json_reply(200, {"apps": apps})

    def c_messages(self, request: Request) -> Reply:
        if request.method == "DELETE":
            with self.state.lock:
                self.state.messages.clear()
            return json_reply(200, {"messages": []})
        q = request.query
        msgs = [
            m
            for m in self.messages(q.get("appid"))
            if q.get("touser") in (None, m["touser"])
            and q.get("template_id") in (None, m["template_id"])
        ]
        return json_reply(200, {"messages": msgs})

    def c_openid(self, request: Request) -> Reply:
        appid, name = request.query.get("appid"), request.query.get("name")
        if not appid or not name:
            return json_reply(400, {"error": "appid and name are required"})
        return json_reply(
            200,
            {
                "openid": demo_openid(appid, name),
                "unionid": demo_unionid(name),
                "phone": demo_phone(name),
            },
        )

    def c_expire_tokens(self, request: Request) -> Reply:
        return json_reply(200, {"expired": self.expire_tokens(request.json().get("appid"))})

    def c_config(self, request: Request) -> Reply:
        data = request.json()
        with self.state.lock:
            if "permissive" in data:
                self.state.permissive = bool(data["permissive"])
            if "token_ttl" in data:
                self.state.token_ttl = int(data["token_ttl"])
            return json_reply(
                200, {"permissive": self.state.permissive, "token_ttl": self.state.token_ttl}
            )

    def c_reset(self, request: Request) -> Reply:
        keep_apps = not request.json().get("apps", False)
        with self.state.lock:
            apps = self.state.apps if keep_apps else {}
            self.state.tokens.clear()
            self.state.current.clear()
            self.state.used_codes.clear()
            self.state.used_phone_codes.clear()
            self.state.messages.clear()
            self.state.apps = apps
        self.failures.clear()
        return json_reply(200, {"ok": True})


# --------------------------------------------------------------------------- PNG
def make_png(text: str, width: int = 430) -> bytes:
    """A PNG of a QR code for ``text`` (qrcode+pillow when available, else a plain tile)."""
    try:
        import qrcode

        img = qrcode.make(text)
        img = img.resize((width, width))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()
    except Exception:  # noqa: BLE001 - any failure falls back to the stdlib tile
        return _plain_png(min(max(width, 8), 1280))


def _plain_png(size: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x00" * size  # filter byte + grayscale pixels (black)
    raw = row * size
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- entry points
def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, *, permissive: bool = True, token_ttl: int = 7200
) -> WeChatApiServer:
    """Start the fake in a daemon thread; use ``server.url`` and ``server.shutdown()``."""
    server = WeChatApiServer((host, port), permissive=permissive, token_ttl=token_ttl)
    return server.start_background()  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.wechat_api",
        description="Fake api.weixin.qq.com for development (NOT WeChat).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--strict", action="store_true", help="only registered apps (40013)")
    parser.add_argument(
        "--app", action="append", default=[], metavar="APPID:SECRET", help="register an app"
    )
    parser.add_argument("--token-ttl", type=int, default=7200, help="access token seconds")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--component", metavar="APPID:SECRET:TOKEN:AESKEY",
        help="a third-party platform (Open Platform component) to serve",
    )
    parser.add_argument("--component-callback", default="", help="its authorisation event URL")
    parser.add_argument("--component-events", default="", help="its message URL ($APPID$)")
    parser.add_argument("--ticket-every", type=float, default=600, help="ticket push seconds")
    parser.add_argument(
        "--auto-audit-seconds", type=float, default=0, help="pass every audit after N s (0: never)"
    )
    args = parser.parse_args(argv)

    server = WeChatApiServer(
        (args.host, args.port), permissive=not args.strict, token_ttl=args.token_ttl
    )
    server.verbose = args.verbose
    for spec in args.app:
        appid, _, secret = spec.partition(":")
        server.register_app(appid, secret)
    if args.component:
        c_appid, c_secret, c_token, c_key = args.component.split(":", 3)
        server.component_register(
            c_appid, c_secret, c_token, c_key, args.component_callback, args.component_events
        )
        server.component_state.auto_audit_seconds = args.auto_audit_seconds
        if args.component_callback:
            server.ticket_pushes_start(args.ticket_every)
    mode = "strict (registered apps only)" if args.strict else "permissive (any wx… appid)"
    print(
        "=" * 72,
        "  FAKE api.weixin.qq.com - DEVELOPMENT STAND-IN, NOT WECHAT",
        f"  listening on {server.url}   apps: {mode}",
        "  login codes: demo-<name>[#n]   phone codes: phone-<digits>[#n] | demo-<name>",
        "  control: /_fake/apps /_fake/messages /_fake/openid /_fake/failures /_fake/reset",
        "=" * 72,
        sep="\n",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
