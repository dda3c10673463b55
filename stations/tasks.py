"""Celery tasks of stations: run inside one operator's schema (queued per operator by
``evplatform.fan_out``)."""

from __future__ import annotations

from evplatform.celery import app

from . import services


@app.task(name="stations.piles_check_offline")
def piles_check_offline() -> list[str]:
    """Mark piles without a frame for 3 heartbeats offline; returns their codes."""
    return services.piles_mark_offline()
