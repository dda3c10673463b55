"""ASGI entry point: HTTP through Django, WebSockets through Channels — one process, one port.

HTTP is served by one of three handlers (``ASGI_HTTP``), measured by
``benchmarks/station_search.py`` (see README, *Station search*):

- ``wsgi`` (the default): Django's WSGI handler behind ``a2wsgi.WSGIMiddleware``. Each
  request runs in one thread of a fixed pool (``ASGI_HTTP_THREADS``, 2: a2wsgi queues the
  others first come, first served, so they do not share the GIL ten at a time), as under a
  threaded WSGI server: the request is built once from the WSGI environ, Django's request signals
  and the middleware chain run synchronously in that thread (so its database connection is
  taken and returned there), and the event loop only moves bytes. Measured in two runs
  (README, *Station search*): a driver-API request with no query costs ×0.53–0.65 the
  server CPU of ``sync_chain`` (1.04 vs 1.97 ms, 1.14 vs 1.75 ms) and one process serves
  ×1.8–2.0 the requests. The pool's threads live as long as the process, so nothing may
  leave a database connection in a thread's own storage for another thread to find (the
  test suite's CEC live server once did, and every later admin page answered 500).
  Streaming and file responses are sent chunk by chunk; request bodies are read from the
  loop as the view reads them.
- ``sync_chain`` (the default before ``wsgi``): Django's ASGI handler with the middleware chain and the view called as
  ONE synchronous function (``SyncChainASGIHandler``). Still an ASGIRequest per request,
  request_started/finished sent through ``sync_to_async``, and a new thread per request
  (asgiref's per-request thread-sensitive context).
- ``stock``: Django's own ASGI handler, which runs each middleware in async mode — a hop
  between the event loop and a thread for every ``process_request``/``process_response``
  of the twelve middleware (about twice the CPU of ``sync_chain``).

Every view of the project is synchronous, so nothing is lost by not running Django in
async mode; the WebSockets (Channels consumers) stay on the event loop.
"""

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
django.setup(set_prefix=False)

HTTP_HANDLERS = ("wsgi", "sync_chain", "stock")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, middleware and view called as one sync function (see above)."""

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def http_application(kind: str):
    """The ASGI app serving HTTP with handler ``kind`` (one of HTTP_HANDLERS, see above).
    Raises ValueError for another name."""
    from django.conf import settings

    if kind == "wsgi":
        from a2wsgi import WSGIMiddleware
        from django.core.handlers.wsgi import WSGIHandler

        return WSGIMiddleware(WSGIHandler(), workers=settings.ASGI_HTTP_THREADS)
    if kind == "sync_chain":
        return SyncChainASGIHandler()
    if kind == "stock":
        return ASGIHandler()
    raise ValueError(f"ASGI_HTTP must be one of {', '.join(HTTP_HANDLERS)}, not {kind!r}")


def _http_kind() -> str:
    from django.conf import settings

    return settings.ASGI_HTTP


django_asgi_app = http_application(_http_kind())

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
