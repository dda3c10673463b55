"""Beat's periodic jobs run on the real worker and beat processes, started as the Procfile
starts them; ``/healthz`` fails when a job's message is discarded or a job stops running."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from evplatform.celery import DISCARDED_KEY, RAN_KEY, app
from evplatform.health import periodic_jobs

ROOT = Path(__file__).resolve().parents[2]


def _procfile(name: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return shlex.split(line.split(":", 1)[1])
    raise AssertionError(f"no {name} in the Procfile")


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.stdout.read() if proc.stdout else ""


@pytest.fixture
def stack(operators, tmp_path):
    """The Procfile's worker and beat, on this test database, with every job due every 2 s,
    under a Redis key prefix of their own (their broker queue and health books)."""
    prefix = f"{settings.REDIS_KEY_PREFIX}beat{uuid.uuid4().hex[:6]}"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "evplatform.settings",
        "DB_NAME": settings.DATABASES["default"]["NAME"],
        "DB_TEST_NAME": settings.DATABASES["default"]["NAME"],
        "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "PILES_OFFLINE_CHECK_S": "2",
        "PROTOCOLS_PRUNE_SECONDS": "2",
        "TARIFFS_REFRESH_SECONDS": "2",
        "PAYMENTS_RECONCILE_SECONDS": "2",
        "ORDERS_RECONCILE_SECONDS": "2",
        "SCHEDULING_TICK_SECONDS": "2",
        "STATEMENTS_BUILD_SECONDS": "2",
        "BILLS_RECONCILE_SECONDS": "2",
        "INVOICES_RECONCILE_SECONDS": "2",
        "AUTHORIZER_TOKENS_REFRESH_S": "2",
        "STATS_REFRESH_SECONDS": "2",
        "POINTS_EXPIRE_SECONDS": "2",
        "SMS_RECEIPTS_SECONDS": "2",
        "ALARMS_EVALUATE_SECONDS": "2",
        "REVENUE_WATCH_SECONDS": "2",
        "CEC_PUSHES_DUE_SECONDS": "2",
        "CEC_PARTNER_STATIONS_SECONDS": "2",
        "CEC_CHECK_ORDERS_SECONDS": "2",
    }
    worker_cmd = _procfile("worker")
    beat_cmd = [a.replace("var/celerybeat-schedule", str(tmp_path / "beat")) for a in _procfile("beat")]
    procs = {}
    for name, cmd in (("worker", worker_cmd), ("beat", beat_cmd)):
        procs[name] = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    yield prefix, procs
    logs = {name: _stop(proc) for name, proc in procs.items()}
    client = _client()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    assert "unregistered task" not in logs["worker"], logs["worker"][-3000:]


def test_every_periodic_job_runs_on_the_procfile_worker_and_beat(stack, client, db):
    prefix, procs = stack
    wanted = {task for task, _ in periodic_jobs().values()} | {"evplatform.fan_out"}
    assert len(wanted) == 20
    r = _client()
    ran: dict = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ran = r.hgetall(f"{prefix}:{RAN_KEY}")
        if wanted <= set(ran):
            break
        assert procs["worker"].poll() is None, "the worker died"
        assert procs["beat"].poll() is None, "beat died"
        time.sleep(0.5)
    assert wanted <= set(ran), f"never ran: {sorted(wanted - set(ran))}"
    assert r.hgetall(f"{prefix}:{DISCARDED_KEY}") == {}
    # The health check reads the same books and is satisfied.
    settings.REDIS_KEY_PREFIX = prefix
    try:
        response = client.get("/healthz")
    finally:
        settings.REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "evptest")
    body = response.json()
    assert response.status_code == 200, body
    assert all(job["last_run_s_ago"] is not None for job in body["checks"]["jobs"]["jobs"].values())


@pytest.fixture
def books():
    r = _client()
    keys = [f"{settings.REDIS_KEY_PREFIX}:{k}" for k in (RAN_KEY, DISCARDED_KEY)]
    r.delete(*keys)
    yield r
    r.delete(*keys)


@pytest.fixture
def worker(operators, django_db_blocker):
    """An in-process worker on the suite's own broker queue, emptied first: messages that
    earlier tests queued and no worker took would otherwise all run before this test's."""
    app.control.purge()
    with django_db_blocker.unblock():
        with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            yield


def test_health_fails_when_the_worker_discards_an_unregistered_task(books, worker, client, db):
    assert client.get("/healthz").status_code == 200
    connection.set_schema_to_public()
    app.send_task("charging.no_such_job")
    for _ in range(600):  # up to 30 s on a loaded machine; a few ms when quiet
        if books.hexists(f"{settings.REDIS_KEY_PREFIX}:{DISCARDED_KEY}", "charging.no_such_job"):
            break
        time.sleep(0.05)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "charging.no_such_job" in response.json()["checks"]["jobs"]["discarded"]


def test_health_fails_for_a_beat_job_naming_an_unknown_task(books, client, db, settings):
    settings.CELERY_BEAT_SCHEDULE = {
        "typo": {"task": "evplatform.fan_out", "schedule": 60, "args": ["charging.orders_reconcil"]}
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["jobs"]["unregistered"] == ["charging.orders_reconcil"]


def test_health_fails_when_a_job_stops_running(books, client, db):
    task, interval = periodic_jobs()["charging-orders-reconcile"]
    key = f"{settings.REDIS_KEY_PREFIX}:{RAN_KEY}"
    books.hset(key, task, time.time() - interval)
    assert client.get("/healthz").status_code == 200
    books.hset(key, task, time.time() - 3 * interval - 61)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["jobs"]["overdue"] == ["charging-orders-reconcile"]
