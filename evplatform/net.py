"""The client's address, as far as it can be trusted.

Behind ``TRUSTED_PROXY_COUNT`` reverse proxies, each appending the address it saw to
``X-Forwarded-For``, the client is the entry that the nearest-to-the-client trusted proxy
appended: the N-th from the right. Anything left of it was written by the client and can
be forged. With no trusted proxy (0, the default) the header is ignored and the socket's
peer (``REMOTE_ADDR``) is the client. Used by the login lockout (django-axes) and the API
throttles alike.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's IP address (str; empty when the server gave none)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]
