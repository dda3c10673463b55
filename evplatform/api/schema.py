"""The driver API's OpenAPI document (drf-spectacular): what the views cannot say alone.

- ``MemberTokenScheme``: the member's bearer token (``Authorization: Bearer <access>``).
- ``error_responses``: a postprocessing hook documenting the common error body
  (``{"code", "detail", "fields"}``, see ``evplatform.api.errors``) as every operation's
  ``4XX`` response, so clients and Schemathesis can hold every refusal to it.
- ``paginated``: the ``{count, next, previous, results}`` page of a list.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "stable machine-readable code"},
        "detail": {"type": "string", "description": "translated sentence"},
        "fields": {
            "type": "object",
            "description": "field name → messages (validation errors only)",
            "additionalProperties": True,
        },
    },
    "required": ["code", "detail", "fields"],
}


class ErrorSerializer(serializers.Serializer):
    """The common error body (component ``Error``)."""

    code = serializers.CharField(help_text="stable machine-readable code")
    detail = serializers.CharField(help_text="translated sentence")
    fields = serializers.DictField(help_text="field name → messages (validation errors only)")


# For an operation's non-4xx refusals, e.g. ``responses={200: Out, 502: ERROR}``.
ERROR = OpenApiResponse(ErrorSerializer, description="Refused: the common error body.")


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    error = {
        "description": "Refused: the common error body.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            operation.setdefault("responses", {}).setdefault("4XX", error)
    return result


def paginated(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """A page of ``item``s as ``evplatform.api.pagination.Pagination`` answers it."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
