"""``/healthz``: is the database and Redis reachable, and do the scheduled jobs run?
200 or 503 with each check.

``jobs`` fails when a periodic job's task is unknown to this code base (the worker would
discard beat's messages), when a worker discarded a message for an unregistered task in
the last ``DISCARD_WINDOW_S`` seconds, or when a job that ran before has not run for three
of its intervals plus a minute (beat or the worker stopped). A job that never ran yet is
listed as ``never`` without failing (a platform just started).
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

DISCARD_WINDOW_S = 3600


def _check(fn) -> dict:
    started = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # a health check reports every failure
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis():
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()


def periodic_jobs() -> dict[str, tuple[str, float]]:
    """Beat's jobs: {entry name: (the task that does the work, interval in seconds)}; a
    fan-out entry is named by the task it queues per operator."""
    jobs = {}
    for entry, spec in settings.CELERY_BEAT_SCHEDULE.items():
        task = spec["task"]
        if task == "evplatform.fan_out":
            task = spec["args"][0]
        schedule = spec["schedule"]
        seconds = getattr(schedule, "total_seconds", None)
        jobs[entry] = (task, float(seconds() if seconds else schedule))
    return jobs


def jobs_status(now: float | None = None) -> dict:
    """The ``jobs`` check: {"ok", "unregistered", "discarded", "overdue", "jobs"}."""
    from stations import live

    from .celery import DISCARDED_KEY, RAN_KEY, app, health_key

    now = now or time.time()
    app.loader.import_default_modules()
    unregistered = sorted(
        (
            {spec["task"] for spec in settings.CELERY_BEAT_SCHEDULE.values()}
            | {task for task, _ in periodic_jobs().values()}
        )
        - set(app.tasks)
    )
    client = live.client()
    discarded = {
        name: round(now - float(at))
        for name, at in client.hgetall(health_key(DISCARDED_KEY)).items()
        if now - float(at) < DISCARD_WINDOW_S
    }
    ran = client.hgetall(health_key(RAN_KEY))
    jobs, overdue = {}, []
    for entry, (task, interval) in periodic_jobs().items():
        last = ran.get(task)
        age = None if last is None else round(now - float(last))
        jobs[entry] = {"task": task, "every_s": interval, "last_run_s_ago": age}
        if age is not None and age > 3 * interval + 60:
            overdue.append(entry)
    ok = not (unregistered or discarded or overdue)
    return {
        "ok": ok,
        "unregistered": unregistered,
        "discarded": discarded,
        "overdue": overdue,
        "jobs": jobs,
    }


def _jobs() -> dict:
    try:
        return jobs_status()
    except Exception as exc:  # a health check reports every failure
        return {"ok": False, "error": exc.__class__.__name__}


def healthz(request):
    checks = {"database": _check(_database), "redis": _check(_redis), "jobs": _jobs()}
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)
