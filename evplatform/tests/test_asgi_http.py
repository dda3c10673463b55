"""HTTP under ASGI (evplatform/asgi.py): Django's middleware and view run as one sync call
per request in one worker thread, answering exactly as Django's stock ASGI handler does.
(The real server with a pooled connection: test_pooled_connections.py.)"""

import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse
from django.urls import path

from evplatform.asgi import SyncChainASGIHandler, django_asgi_app

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


urlpatterns = [path("probe", view)]


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


def _get(app, target: str) -> dict:
    """One GET through the ASGI app: {status, headers, body, loop_thread}."""
    path, _, query = target.partition("?")

    async def go():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "headers": [(b"host", b"testserver")], "server": ("testserver", 80),
                 "client": ("127.0.0.1", 5000)}
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(30)
        body = b""
        while True:
            message = await communicator.receive_output(30)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(30)
        return {"status": start["status"], "headers": start["headers"], "body": body,
                "loop_thread": threading.get_ident()}

    return asyncio.run(go())


def test_the_project_serves_http_with_the_sync_chain_by_default():
    assert isinstance(django_asgi_app, SyncChainASGIHandler)


def test_middleware_and_view_run_in_one_thread_off_the_event_loop(probe_settings):
    response = _get(SyncChainASGIHandler(), "/probe?name=abc")
    assert response["status"] == 200 and response["body"] == b"hello abc"
    assert [what for what, _ in SEEN] == ["before", "view", "after"]
    threads = {ident for _, ident in SEEN}
    assert len(threads) == 1 and response["loop_thread"] not in threads


def test_answers_as_the_stock_handler_does(probe_settings):
    for target in ("/probe?name=%E5%85%85%E7%94%B5", "/probe?boom=1", "/missing"):
        ours, stock = _get(SyncChainASGIHandler(), target), _get(ASGIHandler(), target)
        assert ours["status"] == stock["status"]
        assert ours["body"] == stock["body"]
        assert sorted(ours["headers"]) == sorted(stock["headers"])
    assert _get(SyncChainASGIHandler(), "/probe?boom=1")["status"] == 500
    assert _get(SyncChainASGIHandler(), "/missing")["status"] == 404


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
