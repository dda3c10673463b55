"""The benchmark's ASGI and WSGI entry points: the project's application, plus a bare
"hello" answered before Django at ``/bench/hello`` — the floor of the server itself (its
HTTP parsing and event loop or threads) on this machine at this moment, measured in the
same process as the station list. Used only by ``benchmarks/station_search.py``."""

from __future__ import annotations

HELLO_PATH = "/bench/hello"
HELLO_BODY = b'{"ok": true}'


def _asgi_app():
    from evplatform.asgi import application as project

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(HELLO_BODY)).encode())]

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == HELLO_PATH:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": HELLO_BODY})
            return
        await project(scope, receive, send)

    return application


def _wsgi_app():
    from evplatform.wsgi import application as project

    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(HELLO_BODY)))]

    def application(environ, start_response):
        if environ.get("PATH_INFO") == HELLO_PATH:
            start_response("200 OK", headers)
            return [HELLO_BODY]
        return project(environ, start_response)

    return application


def __getattr__(name):
    if name == "asgi":
        app = _asgi_app()
    elif name == "wsgi":
        app = _wsgi_app()
    else:
        raise AttributeError(name)
    globals()[name] = app
    return app
