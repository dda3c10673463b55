"""One error format for every 4xx: ``{"code": "...", "detail": "...", "fields": {...}}``.

A :class:`evplatform.errors.DomainError` raised by a service becomes its ``code``, ``detail``
and ``status`` here, so views need no try/except. ``code`` is a stable machine-readable string (e.g. ``validation_error``,
``not_authenticated``, ``token_tenant_mismatch``, ``not_found``, ``throttled``);
``detail`` is a translated human sentence; ``fields`` maps field names to messages
(validation errors only, otherwise ``{}``).
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from evplatform.errors import DomainError

logger = logging.getLogger(__name__)


class APIError(exceptions.APIException):
    """A domain refusal with its own code, e.g. ``APIError("connector_busy", "...", 409)``."""

    def __init__(self, code: str, detail: str, status_code: int = 400, fields=None):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.code = code
        self.fields = fields or {}


def error_body(code: str, detail: str, fields: dict | None = None) -> dict:
    return {"code": code, "detail": str(detail), "fields": fields or {}}


def error_response(code: str, detail: str, status_code: int, fields=None) -> JsonResponse:
    """The error format for code outside DRF (middleware, 404/500 handlers)."""
    return JsonResponse(
        error_body(code, detail, fields), status=status_code, json_dumps_params={"ensure_ascii": False}
    )


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _flatten_list(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten_list(detail)}


def _flatten_list(value):
    if isinstance(value, dict):
        return _flatten(value)
    if isinstance(value, list):
        return [str(v) if not isinstance(v, (dict, list)) else _flatten_list(v) for v in value]
    return [str(value)]


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        exc = APIError(exc.code, exc.detail, exc.status, exc.fields)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, APIError):
        response.data = error_body(exc.code, exc.detail, exc.fields)
    elif isinstance(exc, exceptions.ValidationError):
        response.data = error_body("validation_error", _("Invalid input."), _flatten(exc.detail))
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        detail = exc.detail if isinstance(exc.detail, str) else _("Request refused.")
        response.data = error_body(code, detail)
        if isinstance(exc, exceptions.Throttled):
            response.data["code"] = "throttled"
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    return response


def response(code: str, detail: str, status_code: int, fields=None) -> Response:
    return Response(error_body(code, detail, fields), status=status_code)
