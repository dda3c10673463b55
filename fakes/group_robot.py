"""A fake 企业微信 / 钉钉 group robot: accepts ``POST /send`` (any path) with the robots'
``{"msgtype": "text", "text": {"content": ...}}`` body, answers ``{"errcode": 0}`` like
both robots do, and keeps what it received (``messages``). ``fail_next(n)`` makes the next
``n`` posts answer ``{"errcode": 45009, "errmsg": "api freq out of limit"}``.

DEVELOPMENT STAND-IN ONLY. Nothing in the platform imports it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: GroupRobot

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        reply = self.server.take(self.path, body)
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # quiet
        return


class GroupRobot(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        self._fail = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/cgi-bin/webhook/send?key=test"

    def take(self, path: str, body) -> dict:
        with self.lock:
            if self._fail:
                self._fail -= 1
                return {"errcode": 45009, "errmsg": "api freq out of limit"}
            if not isinstance(body, dict) or body.get("msgtype") != "text" or not isinstance(
                    body.get("text"), dict) or not body["text"].get("content"):
                return {"errcode": 40008, "errmsg": "invalid message type"}
            self.messages.append({"path": path, **body})
            return {"errcode": 0, "errmsg": "ok"}

    def fail_next(self, n: int = 1) -> None:
        with self.lock:
            self._fail = n

    def start(self) -> GroupRobot:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)
