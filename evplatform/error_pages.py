"""Error answers: JSON for API clients, a plain Chinese HTML page for people.

The driver API, the payment notifications and the schema (paths under ``/api/``) answer in
the common error format (``evplatform.api.errors``); everything a person opens in a
browser (the admins, the ``/q/{code}`` page, an unknown host) gets ``templates/error.html``:
a titled page in the request's language, never a traceback or Django's DEBUG page, and no
static files needed (a 500 may be a static-files failure itself).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.translation import gettext as _

from .api.errors import error_response

API_PATHS = ("/api/",)


def wants_json(request: HttpRequest) -> bool:
    """API paths, or a client that asks for JSON and not HTML."""
    if request.path_info.startswith(API_PATHS):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_page(request: HttpRequest, code: str, title: str, detail: str, status: int) -> HttpResponse:
    """The error as the client wants it: ``{"code", "detail", "fields"}`` or an HTML page."""
    if wants_json(request):
        return error_response(code, detail, status)
    body = loader.render_to_string(
        "error.html",
        {"status": status, "code": code, "title": title, "detail": detail,
         "home": "/admin/" if not request.path_info.startswith("/q/") else None},
    )
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def handler400(request, exception=None):
    return error_page(request, "bad_request", _("Bad request"), _("Bad request."), 400)


def handler403(request, exception=None):
    return error_page(
        request, "permission_denied", _("No permission"), _("You do not have permission."), 403
    )


def handler404(request, exception=None):
    return error_page(
        request, "not_found", _("Page not found"),
        _("There is nothing at this address. Check the link, or go back to the start."), 404,
    )


def handler500(request):
    return error_page(
        request, "server_error", _("Server error"),
        _("Something went wrong on our side. It has been logged; please try again later."), 500,
    )
