"""The periodic refresh: fanned out once per active operator, inside its schema."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from billing.tariff_services import station_tariff_assign
from billing.tariff_tasks import tariffs_refresh
from evplatform.tenancy import fan_out


class _Recorder:
    """Stands in for a Celery task: records the schema each ``delay`` was made from."""

    def __init__(self) -> None:
        self.schemas: list[str] = []

    def delay(self, *args, **kwargs) -> None:
        self.schemas.append(connection.schema_name)


def test_fan_out_queues_once_per_active_operator(operators, db):
    from tenants.services import operator_set_status

    recorder = _Recorder()
    assert fan_out(recorder) == 2
    assert sorted(recorder.schemas) == ["op_tenant_a", "op_tenant_b"]

    operator_set_status(operator=operators["tenant-b"], status="suspended")
    try:
        recorder = _Recorder()
        assert fan_out(recorder) == 1
        assert recorder.schemas == ["op_tenant_a"]
    finally:
        # The row is rolled back with the test; the session-wide object must be too.
        operators["tenant-b"].status = "active"


def test_refresh_task_writes_missing_prices(station, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    type(station).objects.filter(pk=station.pk).update(price_today=None)
    assert tariffs_refresh.run() == (1, 0)
    station.refresh_from_db()
    assert station.price_today["slots"][0] == "1.50000"


def test_beat_runs_the_refresh():
    entry = settings.CELERY_BEAT_SCHEDULE["billing-tariffs-refresh"]
    assert entry["task"] == "billing.tariffs_refresh_all"
