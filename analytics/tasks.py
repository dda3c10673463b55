"""Celery tasks of the aggregates (queued by name, see evplatform.queue)."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from evplatform.celery import app

from . import services


@app.task(name="analytics.order_update")
def order_update(order_id: int) -> None:
    """An order settled or was refunded: refresh the aggregates of its day."""
    services.stats_order_update(order_id=order_id)


@app.task(name="analytics.today_refresh")
def today_refresh() -> None:
    """Periodic: today's and yesterday's rows (faults, offline time, members, wallets)."""
    today = timezone.now().astimezone(services.operator_zone()).date()
    for day in (today - timedelta(days=1), today):
        services.stats_day_rebuild(day=day)


@app.task(name="analytics.day_rebuild")
def day_rebuild(day: str) -> None:
    services.stats_day_rebuild(day=date.fromisoformat(day))
