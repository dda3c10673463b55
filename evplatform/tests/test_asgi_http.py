"""HTTP under ASGI (evplatform/asgi.py): Django's middleware and view run as one sync call
per request in one worker thread — through Django's WSGI handler behind a2wsgi (the
default) or Django's ASGI handler with the chain as one call — answering exactly as
Django's stock ASGI handler does, streaming and file responses and request bodies
included. (The real server with a pooled connection: test_pooled_connections.py.)"""

import asyncio
import threading

import pytest
from a2wsgi import WSGIMiddleware
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from evplatform.asgi import SyncChainASGIHandler, django_asgi_app, http_application

SEEN: list[tuple[str, int]] = []


def recording_middleware(get_response):
    """Sync-only middleware noting the thread it runs in, before and after the view."""

    def middleware(request):
        SEEN.append(("before", threading.get_ident()))
        response = get_response(request)
        SEEN.append(("after", threading.get_ident()))
        return response

    return middleware


def view(request):
    SEEN.append(("view", threading.get_ident()))
    if request.GET.get("boom"):
        raise ValueError("boom")
    return HttpResponse(f"hello {request.GET.get('name', '')}", content_type="text/plain")


@csrf_exempt
def echo(request):
    """The request body back, with its length and content type (POSTs: notifications, uploads)."""
    SEEN.append(("view", threading.get_ident()))
    if request.FILES:
        upload = request.FILES["file"]
        return HttpResponse(b"file:" + upload.name.encode() + b":" + upload.read(), content_type="text/plain")
    return HttpResponse(request.body, content_type=request.content_type or "text/plain",
                        headers={"X-Length": str(len(request.body))})


def stream(request):
    return StreamingHttpResponse((f"part {i}\n".encode() for i in range(3)), content_type="text/plain")


def download(request):
    import io

    return FileResponse(io.BytesIO(b"x" * 200_000), as_attachment=True, filename="report.csv")


urlpatterns = [path("probe", view), path("echo", echo), path("stream", stream), path("download", download)]


@pytest.fixture
def probe_settings(settings):
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [
        f"{__name__}.recording_middleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    settings.ALLOWED_HOSTS = ["*"]
    SEEN.clear()
    return settings


def _get(app, target: str, *, method: str = "GET", body: bytes = b"", headers=(), chunk: int = 0) -> dict:
    """One request through the ASGI app: {status, headers, body, loop_thread}. ``chunk``:
    send the body in parts of this many bytes (as a server does with a large upload)."""
    path, _, query = target.partition("?")

    async def go():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "headers": [(b"host", b"testserver"), *headers], "server": ("testserver", 80),
                 "client": ("127.0.0.1", 5000)}
        communicator = ApplicationCommunicator(app, scope)
        parts = [body[i:i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
        for i, part in enumerate(parts):
            await communicator.send_input({"type": "http.request", "body": part,
                                           "more_body": i < len(parts) - 1})
        start = await communicator.receive_output(30)
        received = b""
        while True:
            message = await communicator.receive_output(30)
            received += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(30)
        return {"status": start["status"], "headers": start["headers"], "body": received,
                "loop_thread": threading.get_ident()}

    return asyncio.run(go())


def _names_lowered(headers) -> list[tuple[bytes, bytes]]:
    """Header names are case-insensitive (a2wsgi sends them lower-case, Django's handler as set)."""
    return sorted((name.lower(), value) for name, value in headers)


def test_the_project_serves_http_through_the_wsgi_handler_by_default():
    assert isinstance(django_asgi_app, WSGIMiddleware)


def test_an_unknown_handler_is_refused():
    with pytest.raises(ValueError, match="ASGI_HTTP"):
        http_application("gevent")


@pytest.fixture(params=["wsgi", "sync_chain"])
def ours(request, probe_settings):
    """Each of our handlers, built after the probe settings (its middleware loaded)."""
    return http_application(request.param)


def test_middleware_and_view_run_in_one_thread_off_the_event_loop(ours):
    response = _get(ours, "/probe?name=abc")
    assert response["status"] == 200 and response["body"] == b"hello abc"
    assert [what for what, _ in SEEN] == ["before", "view", "after"]
    threads = {ident for _, ident in SEEN}
    assert len(threads) == 1 and response["loop_thread"] not in threads


def test_answers_as_the_stock_handler_does(ours):
    stock_app = ASGIHandler()
    for target in ("/probe?name=%E5%85%85%E7%94%B5", "/probe?boom=1", "/missing", "/stream", "/download"):
        mine, stock = _get(ours, target), _get(stock_app, target)
        assert mine["status"] == stock["status"], target
        assert mine["body"] == stock["body"], target
        assert _names_lowered(mine["headers"]) == _names_lowered(stock["headers"]), target
    assert _get(ours, "/probe?boom=1")["status"] == 500
    assert _get(ours, "/missing")["status"] == 404
    assert _get(ours, "/stream")["body"] == b"part 0\npart 1\npart 2\n"
    assert len(_get(ours, "/download")["body"]) == 200_000


def test_request_bodies_reach_the_view_whole(ours):
    """A payment notification's JSON (sent in parts, as a server passes a large body on)
    and a multipart upload arrive byte for byte."""
    notice = '{"id": "EV-1", "resource": {"ciphertext": "' + "密" * 40_000 + '"}}'
    raw = notice.encode()
    response = _get(ours, "/echo", method="POST", body=raw, chunk=16_384,
                    headers=[(b"content-type", b"application/json"),
                             (b"content-length", str(len(raw)).encode())])
    assert response["status"] == 200 and response["body"] == raw
    assert (b"x-length", str(len(raw)).encode()) in _names_lowered(response["headers"])
    boundary = "evpboundary"
    upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"piles.csv\"\r\n"
              f"Content-Type: text/csv\r\n\r\ncode,power\n32010600000001,120\n\r\n--{boundary}--\r\n").encode()
    response = _get(ours, "/echo", method="POST", body=upload,
                    headers=[(b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                             (b"content-length", str(len(upload)).encode())])
    assert response["body"] == b"file:piles.csv:code,power\n32010600000001,120\n"


def test_one_thread_hop_for_the_whole_chain(probe_settings, monkeypatch):
    """Django's stock handler hops between the event loop and a thread for every
    middleware method; ours calls the chain once (plus Django's request signals and the
    response's close, which both handlers do)."""
    from asgiref import sync

    calls = []
    original = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    ours = SyncChainASGIHandler()
    stock = ASGIHandler()
    _get(ours, "/probe")
    ours_calls, calls[:] = list(calls), []
    _get(stock, "/probe")
    stock_calls = list(calls)
    assert sum("get_response" in c for c in ours_calls) == 1
    assert not any("process_request" in c or "process_response" in c for c in ours_calls)
    assert sum("process_request" in c or "process_response" in c for c in stock_calls) >= 3
    assert len(ours_calls) < len(stock_calls)
