"""The periodic refresh (fanned out per operator by evplatform.fan_out, tested in stations)."""

from __future__ import annotations

from django.conf import settings

from billing.tariffs.services import station_tariff_assign
from billing.tariffs.tasks import tariffs_refresh


def test_refresh_task_writes_missing_prices(station, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    type(station).objects.filter(pk=station.pk).update(price_today=None)
    assert tariffs_refresh.run() == (1, 0)
    station.refresh_from_db()
    assert station.price_today["slots"][0] == "1.50000"


def test_beat_runs_the_refresh():
    entry = settings.CELERY_BEAT_SCHEDULE["billing-tariffs-refresh"]
    assert entry["task"] == "evplatform.fan_out" and entry["args"] == ["billing.tariffs_refresh"]
