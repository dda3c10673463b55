"""The page a locked-out admin login gets (django-axes' AXES_LOCKOUT_CALLABLE), 429."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tenants.utils import get_public_schema_name

from .admin_sites import platform_admin_site


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The admin's own page (the platform's or the operator's), in the user's language."""
    site = platform_admin_site if connection.schema_name == get_public_schema_name() else admin.site
    context = {
        **site.each_context(request),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)),
    }
    return render(request, "admin/locked_out.html", context, status=429)
