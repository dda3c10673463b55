"""Which operator a request belongs to.

- The driver API (``/api/app/``) is served on one shared host. Before login the tenant
  comes from ``X-Tenant`` (operator slug) or ``X-WX-AppId`` (mini-program appid; WeChat's
  fixed ``Referer: https://servicewechat.com/{appid}/…`` works too); after login from the
  bearer token, which names its tenant. A token of another tenant is refused with 401
  ``token_tenant_mismatch`` whatever the headers say; an unknown tenant is 404
  ``tenant_not_found``; a suspended one 403 ``tenant_suspended``.
- WeChat Pay notifications (``/api/pay/notify/<operator slug>/<kind>``) come from WeChat,
  with no header or token of ours: the operator is the slug in the path. A suspended
  operator still receives them (money that arrived must be recorded).
- Everything else (admin consoles) is routed by hostname (django-tenants).

And who made a request's model changes (:class:`AuditlogMiddleware`).
"""

from __future__ import annotations

import re
import zoneinfo
from contextvars import ContextVar
from urllib.parse import unquote_to_bytes

from auditlog.middleware import AuditlogMiddleware as BaseAuditlogMiddleware
from auditlog.models import LogEntry
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import set_urlconf
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from accounts.tokens import TokenError, bearer_token, token_decode
from tenants import selectors
from tenants.models import Operator

from .api.errors import error_response
from .error_pages import error_page
from .net import client_ip

API_PREFIX = "/api/app/"
PAY_NOTIFY_PREFIX = "/api/pay/notify/"
ALWAYS_PUBLIC = ("/healthz",)
# WeChat's pushes to the third-party platform (tenants.open_platform) reach the platform
# itself whatever host they were sent to; so do drivers' feedback photos (operations.views).
PUBLIC_PREFIXES = ("/wechat/component/", "/media/feedback/")
WECHAT_REFERER = re.compile(r"^https://servicewechat\.com/(wx[0-9a-zA-Z]+)/")


def _activate_zone(name: str) -> None:
    try:
        timezone.activate(zoneinfo.ZoneInfo(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        timezone.activate(zoneinfo.ZoneInfo(settings.TIME_ZONE))
def reject_nul_middleware(get_response):
    """400 ``bad_request`` for a NUL character in the path, the query or a header.

    PostgreSQL cannot store or compare text containing NUL, so such a value would fail deep
    in a query (a 500) wherever it reached one: refused here, before tenant routing, once for
    every view, the admin and the pay notifications. (NUL inside JSON bodies is refused by
    ``evplatform.api.parsers.JSONParser``; Django's form fields refuse it in forms.)
    """

    def middleware(request):
        if _has_nul(request):
            translation.activate(translation.get_language_from_request(request))
            return error_response(
                "bad_request", _("The request contains a NUL character."), 400
            )
        return get_response(request)

    return middleware


def _has_nul(request) -> bool:
    if "\x00" in request.path_info:
        return True
    if b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
        return True
    return any(
        "\x00" in value
        for key, value in request.META.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    )


class TenantRoutingMiddleware(TenantMainMiddleware):
    def process_request(self, request):
        connection.set_schema_to_public()
        # Refusals below are answered before LocaleMiddleware runs: speak the client's language.
        translation.activate(translation.get_language_from_request(request))
        if request.path_info.startswith(API_PREFIX):
            return self._route_api(request)
        if request.path_info.startswith(PAY_NOTIFY_PREFIX):
            return self._route_pay_notify(request)
        if request.path_info in ALWAYS_PUBLIC or request.path_info.startswith(PUBLIC_PREFIXES):
            request.tenant = selectors.operator_get_by_schema(get_public_schema_name())
            self.setup_url_routing(request, force_public=True)
            return None
        return self._route_host(request)

    def _route_host(self, request):
        try:
            hostname = self.hostname_from_request(request)
        except DisallowedHost:
            return error_page(request, "bad_host", _("Bad request"), _("Bad host."), 400)
        tenant = selectors.operator_get_by_host(hostname)
        if tenant is None:
            return error_page(
                request, "tenant_not_found", _("Page not found"), _("No operator at this address."), 404
            )
        if tenant.schema_name != get_public_schema_name() and not tenant.is_active:
            return error_page(
                request, "tenant_suspended", _("Operator suspended"),
                _("This operator is suspended."), 403,
            )
        return self._activate(request, tenant, hostname)

    def _route_pay_notify(self, request):
        slug = request.path_info[len(PAY_NOTIFY_PREFIX) :].split("/", 1)[0]
        tenant = selectors.operator_get_by_slug(slug) if slug else None
        if tenant is None:
            return error_response("tenant_not_found", _("Unknown operator."), 404)
        return self._activate(request, tenant, None)

    def _route_api(self, request):
        header_tenant: Operator | None = None
        slug = request.headers.get("X-Tenant")
        appid = request.headers.get("X-WX-AppId")
        if not appid:
            match = WECHAT_REFERER.match(request.headers.get("Referer", ""))
            appid = match.group(1) if match else None
        if slug or appid:
            header_tenant = (
                selectors.operator_for_api("slug", slug) if slug else selectors.operator_for_api("appid", appid)
            )
            if header_tenant is None:
                return error_response("tenant_not_found", _("Unknown operator."), 404)

        tenant = header_tenant
        token = bearer_token(request.headers.get("Authorization"))
        if token is not None:
            try:
                claims = token_decode(token)
            except TokenError as exc:
                if header_tenant is None:
                    return error_response(str(exc), _("Invalid or expired token."), 401)
                claims = None  # authentication on the view answers 401 for this tenant
            if claims is not None:
                token_tenant = selectors.operator_for_api("schema", claims.schema_name)
                if token_tenant is None or token_tenant.schema_name == get_public_schema_name():
                    return error_response("token_invalid", _("Invalid token."), 401)
                if header_tenant is not None and header_tenant.pk != token_tenant.pk:
                    return error_response(
                        "token_tenant_mismatch", _("This token was issued by another operator."), 401
                    )
                tenant = token_tenant
        if tenant is None:
            return error_response(
                "tenant_required",
                _("Say which operator: X-Tenant or X-WX-AppId header, or a token."),
                400,
            )
        if not tenant.is_active:
            return error_response("tenant_suspended", _("This operator is suspended."), 403)
        return self._activate(request, tenant, None)

    @staticmethod
    def _activate(request, tenant: Operator, hostname: str | None):
        tenant.domain_url = hostname
        request.tenant = tenant
        connection.set_tenant(tenant)
        # Times are stored in UTC and shown in the operator's zone (admin, pages, API text).
        _activate_zone(getattr(tenant, "time_zone", "") or settings.TIME_ZONE)
        if tenant.schema_name == get_public_schema_name():
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        else:
            request.urlconf = settings.ROOT_URLCONF
        set_urlconf(request.urlconf)
        return None


_actor_schema: ContextVar[str | None] = ContextVar("evp_audit_actor_schema", default=None)


class AuditlogMiddleware(BaseAuditlogMiddleware):
    """django-auditlog's middleware (the request's staff user on each model change it logs),
    with the client's address as far as it can be trusted (``evplatform.net.client_ip``)
    instead of whatever ``X-Forwarded-For`` a client sends, and no client port.

    The staff user is a row of the request's schema (each schema has its own users): a
    change the request makes in another schema — the super admin provisioning an operator —
    is logged there by the user's e-mail only, not linked to whoever has that user id there
    (``_actor_outside_its_schema``)."""

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request) or None

    @staticmethod
    def _get_remote_port(request):
        return None

    def __call__(self, request):
        token = _actor_schema.set(connection.schema_name)
        try:
            return super().__call__(request)
        finally:
            _actor_schema.reset(token)


@receiver(post_save, sender=LogEntry, dispatch_uid="evp-audit-actor-outside-its-schema")
def _actor_outside_its_schema(sender, instance, created, **kwargs):
    schema = _actor_schema.get()
    if created and instance.actor_id is not None and schema and connection.schema_name != schema:
        LogEntry.objects.filter(pk=instance.pk).update(actor=None)
        instance.actor = None
