"""The API's JSON renderer and content negotiation: DRF's answers, made cheaper.

- :class:`JSONRenderer` writes with ``orjson`` (compiled) what DRF's renderer writes with
  Python's ``json``: the same bytes for the same data — UTF-8, compact, ``\\u2028`` and
  ``\\u2029`` escaped — where every value orjson does not write as DRF's encoder does
  (dates and times, Decimal, lazy strings, generators, …) goes through DRF's encoder. A
  map of 500 pins cost ~0.25 ms of the web process's CPU in Python's encoder (see README,
  *Station search*). An ``indent`` asked for in the Accept header, and what orjson refuses
  (an integer past 64 bits), are left to DRF's renderer. One difference: a float JSON
  cannot hold (NaN, an infinity) is written ``null``, where DRF's strict JSON raised
  ValueError (a 500); and a float below 1e-4 is written in orjson's notation (``1e-7``,
  ``0.000025``) where Python's is ``1e-07``, ``2.5e-05``: the same number.
- :class:`ContentNegotiation` answers a request of a JSON-only view at once when its
  Accept header is one of the usual ones (none, ``*/*``, ``application/json``, the
  mini-program's ``application/json, text/plain, */*``) and no ``?format=`` is asked for:
  DRF's own negotiation would choose the same renderer and media type; anything else goes
  through it (406 and all).
"""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
            | orjson.OPT_PASSTHROUGH_DATACLASS)
_default = JSONEncoder().default  # what DRF's encoder makes of a value orjson leaves to it


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if (self.ensure_ascii or not self.compact
                or self.get_indent(accepted_media_type, renderer_context or {}) is not None):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # an integer past 64 bits (Python's json writes it), or what DRF refuses too
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in out or b"\xe2\x80\xa9" in out:
            out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return out


_USUAL_ACCEPTS = frozenset({"", "*/*", "application/json", "application/json, text/plain, */*"})


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if (len(renderers) == 1 and not format_suffix
                and renderers[0].media_type == "application/json"
                and request.META.get("HTTP_ACCEPT", "") in _USUAL_ACCEPTS
                and self.settings.URL_FORMAT_OVERRIDE not in request.query_params):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
