"""ASGI entry point: HTTP through Django, WebSockets through Channels.

HTTP requests go through ``SyncChainASGIHandler``: Django's ASGI handler with the
middleware chain and the view run as ONE synchronous call in the request's worker thread.
Django's own ASGI handler runs each middleware in async mode, so every ``process_request``
and ``process_response`` of the twelve middleware (all synchronous code) is a separate hop
between the event loop and a thread — measured by ``benchmarks/station_search.py`` as most
of a driver-API request's server CPU. Every view of the project is synchronous, so nothing
is lost: the request still runs in its own thread (asgiref's per-request thread-sensitive
context, where Django's request signals also run, so database connections are opened and
returned in that one thread), and the event loop stays free for other connections and the
WebSockets. ``ASGI_SYNC_CHAIN=0`` serves HTTP with Django's stock handler instead.
"""

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
django.setup(set_prefix=False)


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, middleware and view called as one sync function (see above)."""

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def _http_application():
    from django.conf import settings

    if getattr(settings, "ASGI_SYNC_CHAIN", True):
        return SyncChainASGIHandler()
    return ASGIHandler()


django_asgi_app = _http_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
