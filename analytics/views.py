"""The monitoring big screen page (``/bigscreen/`` on the operator's host, staff only)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render


def bigscreen(request):
    """1920 × 1080 dark screen; its data arrives over ``/ws/bigscreen/``."""
    if not admin.site.has_permission(request):
        return redirect_to_login(request.get_full_path(), "admin:login")
    return render(request, "analytics/bigscreen.html", {"site_header": admin.site.site_header})
