"""Schemathesis against the driver API's own OpenAPI schema (issue 21).

Every operation of ``/api/app/v1/`` is called with generated inputs, as a signed-in member
of ``tenant-a`` (bearer token and ``X-Tenant`` header), in-process through Django's WSGI
handler on the real PostgreSQL and Redis. Asserted for every response: no 5xx, the
documented content type, and a body that matches the schema (every 4xx: the common
error shape). Bounded and derandomized, so a run is repeatable and short.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 10  # per operation and generation mode (valid, invalid inputs)


@pytest.fixture
def wsgi_app(member_api, fake_wechat):
    """Django's WSGI handler, inside this test's transaction (as Django's test client does:
    no connection closing between requests), with the fake WeChat answering logins."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Generated from the code as /api/schema/ serves it (no database needed).
schema = schemathesis.openapi.from_dict(
    SchemaGenerator(urlconf="evplatform.urls").get_schema(request=None, public=True)
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_driver_api_matches_its_schema(case, wsgi_app, member_api):
    from accounts.services import tokens_for

    headers = {
        "Authorization": f"Bearer {tokens_for(member_api.member).access}",
        "X-Tenant": "tenant-a",
    }
    case.call_and_validate(
        app=wsgi_app,
        headers=headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
