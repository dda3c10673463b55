"""Admin login lockout (django-axes): the backend and the page a locked-out login gets."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tenants.utils import get_public_schema_name

from .admin_sites import platform_admin_site


class LoginLockoutBackend(AxesStandaloneBackend):
    """Refuses logins of a locked-out username or address (first in AUTHENTICATION_BACKENDS).

    A login over HTTP always carries its request; one without (a management command,
    the test client's ``login``) has no address to count and is left to the next backend
    rather than refused.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The admin's own page (the platform's or the operator's), in the user's language."""
    site = platform_admin_site if connection.schema_name == get_public_schema_name() else admin.site
    context = {
        **site.each_context(request),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)),
    }
    return render(request, "admin/locked_out.html", context, status=429)
