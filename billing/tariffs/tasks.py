"""Celery tasks for tariffs (another interface: no logic here, just services)."""

from __future__ import annotations

from evplatform.celery import app

from . import services as tariff_services


@app.task(name="billing.tariffs_refresh")
def tariffs_refresh() -> tuple[int, int]:
    """In one operator's schema: rewrite station prices and due pile billing models now
    (a version becoming effective, a season or special date starting, local midnight)."""
    return tariff_services.tariffs_refresh()
