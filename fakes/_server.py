"""Shared plumbing for the fake WeChat servers: threaded HTTP server, routing, failure injection.

DEVELOPMENT STAND-INS ONLY. Nothing here is imported by platform code.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAILURE_MODES = ("error", "timeout", "reset", "bad_signature")


@dataclass
class FailureRule:
    """One injected failure, matched against calls by method and path prefix.

    mode:
      * ``error``: reply with ``status`` and JSON ``body`` (defaults depend on the server:
        WeChat Pay -> 500 ``SYSTEM_ERROR``, mini-program API -> 200 ``errcode -1``).
      * ``timeout``: hold the connection ``delay`` seconds, then drop it without a reply.
      * ``reset``: drop the connection at once without a reply.
      * ``bad_signature``: (WeChat Pay only) a normal 2xx reply whose signature is wrong.
    apply: process the call for real first (so the order/refund/transfer exists) and only
      then fail - the "unclear outcome" case where a client must query before retrying.
    count: how many matching calls fail; ``None`` means every call until cleared.
    """

    mode: str = "error"
    path: str = "/"
    method: str | None = None
    count: int | None = 1
    status: int | None = None
    body: Any = None
    delay: float = 10.0
    apply: bool = False
    id: int = 0
    hits: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureRule:
        allowed = {"mode", "path", "method", "count", "status", "body", "delay", "apply"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown failure fields: {sorted(unknown)}")
        rule = cls(**data)
        if rule.mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}")
        if rule.method:
            rule.method = rule.method.upper()
        return rule

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and path.startswith(self.path)


class FailureBook:
    """Thread-safe list of injected failures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FailureRule] = []
        self._next_id = 1

    def add(self, rule: FailureRule) -> FailureRule:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def take(self, method: str, path: str) -> FailureRule | None:
        """Return (and consume one use of) the first rule matching this call, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, obj: Any) -> Reply:
    return Reply(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))


class HTTPError(Exception):
    """Raised by a route to answer with a given reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class Request:
    method: str
    target: str  # raw request-target, path plus query, exactly as sent (it is signed)
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc


Route = tuple[str, "re.Pattern[str]", Callable[..., Reply]]


class FakeServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a URL, a stop event and a clean ``shutdown()``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        super().__init__(address, handler)
        self.stop_event = threading.Event()
        self.failures = FailureBook()
        self.verbose = False
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        self._serving = True
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving = False

    def start_background(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self.serve_forever, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving, wake up any held (``timeout``) connections and close the socket."""
        self.stop_event.set()
        if self._serving or (self._thread and self._thread.is_alive()):
            super().shutdown()
        if self._thread:
            self._thread.join(timeout=5)
        self.server_close()

    def inject_failure(self, **rule: Any) -> FailureRule:
        """Add a failure, e.g. ``inject_failure(path="/v3/refund", mode="timeout", delay=2)``.

        Fields as in :class:`FailureRule`; raises ValueError on unknown fields or modes.
        """
        return self.failures.add(FailureRule.from_json(rule))

    # Subclasses: return the default reply for mode "error".
    def default_error_reply(self) -> Reply:
        return json_reply(500, {"error": "injected failure"})

    def not_found_reply(self, request: Request) -> Reply:
        return json_reply(404, {"error": f"no such endpoint: {request.method} {request.path}"})

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def finish_reply(self, request: Request, reply: Reply) -> Reply:
        """Hook to post-process every reply (WeChat Pay signs it here)."""
        return reply


class Handler(BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are dropped after this many seconds

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        # CORS preflight for the control endpoints: the H5 app in a development browser
        # plays the phone's WeChat client (e.g. POST /_fake/pay) from another origin.
        self._read_request("OPTIONS")
        self._send(Reply(204, b"", headers=self._cors_headers()))

    def _cors_headers(self) -> dict[str, str]:
        if not self.path.startswith("/_fake/"):
            return {}
        return {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        }

    def _read_request(self, method: str) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return Request(method, self.path, parts.path, query, self.headers, body)

    def _route(self, request: Request) -> Reply:
        for method, pattern, func in self.server.routes():
            if method != request.method:
                continue
            m = pattern.fullmatch(request.path)
            if m:
                request.params = m.groupdict()
                try:
                    return func(request)
                except HTTPError as exc:
                    return exc.reply
                except ValueError as exc:  # e.g. a control endpoint given a non-JSON body
                    return json_reply(400, {"error": str(exc)})
                except Exception as exc:  # noqa: BLE001 - a fake must answer, not hang up
                    traceback.print_exc()
                    return json_reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        return self.server.not_found_reply(request)

    def _dispatch(self, method: str) -> None:
        request = self._read_request(method)
        rule = None
        if not request.path.startswith("/_fake"):
            rule = self.server.failures.take(method, request.path)
        if rule is None:
            self._send(self.server.finish_reply(request, self._route(request)))
            return
        if rule.apply and rule.mode != "bad_signature":
            self._route(request)  # do the work, then lose the answer
        if rule.mode == "timeout":
            self.server.stop_event.wait(rule.delay)
            self.close_connection = True
            return
        if rule.mode == "reset":
            self.close_connection = True
            return
        if rule.mode == "bad_signature":
            reply = self.server.finish_reply(request, self._route(request))
            reply.headers["Wechatpay-Signature"] = "Zm9yZ2VkLXNpZ25hdHVyZQ=="
            self._send(reply)
            return
        reply = self.server.default_error_reply()
        if rule.status is not None:
            reply.status = rule.status
        if rule.body is not None:
            reply = Reply(reply.status, json.dumps(rule.body, ensure_ascii=False).encode("utf-8"))
        self._send(self.server.finish_reply(request, reply))

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in (reply.headers | self._cors_headers()).items():
            self.send_header(name, value)
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)


def route(method: str, pattern: str, func: Callable[..., Reply]) -> Route:
    return (method, re.compile(pattern), func)


def control_failures(server: FakeServer, request: Request) -> Reply:
    """Shared handler for ``/_fake/failures`` (GET list, POST add, DELETE clear)."""
    if request.method == "GET":
        return json_reply(200, {"failures": server.failures.list()})
    if request.method == "DELETE":
        server.failures.clear()
        return json_reply(200, {"failures": []})
    try:
        data = request.json()
        rules = data if isinstance(data, list) else [data]
        added = [asdict(server.failures.add(FailureRule.from_json(r))) for r in rules]
    except (TypeError, ValueError) as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(200, {"failures": added})
