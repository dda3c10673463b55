"""Celery tasks of the platform itself (public schema, not fanned out per operator)."""

from __future__ import annotations

from evplatform.celery import app

from . import open_platform


@app.task(name="tenants.authorizer_tokens_refresh")
def authorizer_tokens_refresh() -> dict[str, str]:
    """Refresh the authorised mini-programs' tokens that expire within 30 minutes;
    {appid: "ok" | error}. Nothing to do without a third-party platform."""
    try:
        return open_platform.authorizer_tokens_refresh()
    except open_platform.NotConfigured:
        return {}
