"""The API's JSON renderer and content negotiation (``evplatform.api.renderers``) answer
what DRF's own would: the same bytes, the same renderer and media type, the same 406."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import models
from django.utils.translation import gettext_lazy
from rest_framework import renderers as drf_renderers
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from evplatform.api.renderers import ContentNegotiation, JSONRenderer


class Kind(models.IntegerChoices):
    OPERATING = 50, "营业"


class Word(models.TextChoices):
    IDLE = "idle", "空闲"


DATA = [
    {"id": 1, "name": "上海站", "lat": 31.230416, "lng": 121.473701, "price_now": "1.20000",
     "connectors": {"ac": {"free": 1, "total": 2}, "dc": {"free": 0, "total": 2}}, "status": Kind.OPERATING},
    {"when": datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=UTC), "day": date(2026, 12, 1),
     "at": time(8, 30, 1, 500), "naive": datetime(2026, 12, 1, 8, 30), "span": timedelta(minutes=90)},
    {"amount": Decimal("12.34"), "uuid": uuid.UUID(int=7), "lazy": gettext_lazy("Invalid input."),
     "word": Word.IDLE, "tuple": (1, "a", None), "set": {3}, "bytes": b"ok"},
    {"line": "a\u2028b\u2029c", "quote": '"\\/', "empty": {}, "nested": [[[]]], 1: "int key",
     "bools": [True, False], "big": 2**70, "neg": -0.0, "tiny": 0.5},
    [],
    "text",
]


@pytest.mark.parametrize("data", DATA)
def test_the_same_bytes_as_drfs_renderer(data):
    assert JSONRenderer().render(data, "application/json", {}) == \
        drf_renderers.JSONRenderer().render(data, "application/json", {})


def test_an_indent_asked_for_is_drfs():
    data = {"a": [1, 2]}
    for accepted in ("application/json; indent=4", "application/json; indent=0"):
        assert JSONRenderer().render(data, accepted, {}) == \
            drf_renderers.JSONRenderer().render(data, accepted, {})
    assert JSONRenderer().render(None) == b""


def _request(accept: str | None, query: str = ""):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    return Request(APIRequestFactory().get("/api/app/v1/stations" + query, **headers))


@pytest.mark.parametrize("accept,query", [
    (None, ""), ("*/*", ""), ("application/json", ""), ("application/json, text/plain, */*", ""),
    ("text/html", ""), ("application/json; indent=2", ""), ("text/*", ""), ("*/*", "?format=json"),
    ("application/xml", "?format=json"), ("text/html;q=0.9, application/json;q=0.8", ""),
])
def test_negotiation_answers_as_drfs(accept, query):
    renderers = [JSONRenderer()]

    def choice(negotiation):
        try:
            renderer, media_type = negotiation.select_renderer(_request(accept, query), renderers)
        except NotAcceptable:
            return "406"
        return renderer, media_type

    assert choice(ContentNegotiation()) == choice(DefaultContentNegotiation())


def test_several_renderers_are_negotiated_as_drf_does():
    renderers = [drf_renderers.BrowsableAPIRenderer(), JSONRenderer()]
    for accept in ("*/*", "application/json", None):
        assert ContentNegotiation().select_renderer(_request(accept), renderers) == \
            DefaultContentNegotiation().select_renderer(_request(accept), renderers)
