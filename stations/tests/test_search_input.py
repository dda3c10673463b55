"""The list's input fast path (``_search_input``) gives exactly what DRF's serializer gives,
and leaves every other query (and every error) to it."""

import pytest
from django.http import QueryDict
from hypothesis import given
from hypothesis import strategies as st

from evplatform.api.errors import APIError
from stations.api.serializers import StationSearchIn
from stations.api.views import _search_input, _validated


def _serializer(query: QueryDict):
    try:
        return dict(_validated(StationSearchIn, query))
    except APIError as e:
        return ("error", e.code)


def _fast(query: QueryDict):
    try:
        return dict(_search_input(query))
    except APIError as e:
        return ("error", e.code)


@pytest.mark.parametrize("qs", [
    "", "lat=31.23&lng=121.47", "lat=31.230001&lng=121.470002&sort=distance&page=2&page_size=5",
    "lat=-90&lng=180&radius=50000", "lat=90.0000001&lng=1", "lat=1&lng=-180.5", "lat=1", "lng=2",
    "lat=1&lng=2&radius=0", "lat=1&lng=2&radius=50001", "lat=1&lng=2&radius=050", "lat=1&lng=2&radius=1.0",
    "lat=1&lng=2&radius=-1", "lat=1e1&lng=2", "lat=+1&lng=2", "lat=1&lng=2&sort=", "lat=1&lng=2&sort=price",
    "sort=available&type=dc&available=true", "type=ac&available=false", "available=1", "available=yes",
    "type=DC", "lat=1&lat=2&lng=3", "city=上海市", "q=站", "q=", "lat=1.&lng=2", "lat=.5&lng=2",
    "lat=1&lng=2&radius=١٢", "lat=nan&lng=2", "lat=1&lng=2&other=3",
])
def test_the_fast_path_answers_as_the_serializer(qs):
    query = QueryDict(qs)
    assert _fast(query) == _serializer(query)


@given(st.dictionaries(
    st.sampled_from(["lat", "lng", "radius", "sort", "type", "available", "page"]),
    st.one_of(st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{0,8})?", fullmatch=True),
              st.sampled_from(["distance", "price", "available", "ac", "dc", "true", "false", "", "x"])),
))
def test_the_fast_path_answers_as_the_serializer_for_any_query(params):
    query = QueryDict(mutable=True)
    for k, v in params.items():
        query[k] = v
    assert _fast(query) == _serializer(query)


def test_the_usual_query_takes_the_fast_path(monkeypatch):
    from stations.api import views

    monkeypatch.setattr(views, "_validated", lambda *a: pytest.fail("went through the serializer"))
    assert _search_input(QueryDict("lat=31.230001&lng=121.47&sort=distance&page=2")) == {
        "lat": 31.230001, "lng": 121.47, "sort": "distance", "available": False, "city": "", "q": ""}
