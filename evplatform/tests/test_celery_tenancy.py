"""A task queued inside an operator's schema runs inside it, on a real worker and broker."""

import time
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from evplatform.celery import app
from evplatform.tasks import tenant_ping


@pytest.fixture(scope="module")
def worker(operators, django_db_blocker):
    with django_db_blocker.unblock():
        with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            yield


def _wait(key: str) -> str | None:
    r = redis.Redis.from_url(settings.REDIS_URL)
    for _ in range(100):
        value = r.get(key)
        if value is not None:
            return value.decode()
        time.sleep(0.05)
    return None


def test_task_runs_in_the_schema_it_was_queued_from(worker, operators, db):
    keys = {}
    for slug in ("tenant-a", "tenant-b"):
        with tenant_context(operators[slug]):
            keys[slug] = f"{settings.REDIS_KEY_PREFIX}:test:{uuid.uuid4().hex}"
            tenant_ping.delay(keys[slug])
    connection.set_schema_to_public()
    public_key = f"{settings.REDIS_KEY_PREFIX}:test:{uuid.uuid4().hex}"
    tenant_ping.delay(public_key)
    assert _wait(keys["tenant-a"]) == "op_tenant_a"
    assert _wait(keys["tenant-b"]) == "op_tenant_b"
    assert _wait(public_key) == "public"


def test_queue_on_commit_sends_by_name_in_the_callers_schema(
    worker, operators, db, django_capture_on_commit_callbacks
):
    from evplatform.queue import task_queue_on_commit

    with tenant_context(operators["tenant-b"]):
        key = f"{settings.REDIS_KEY_PREFIX}:test:{uuid.uuid4().hex}"
        with django_capture_on_commit_callbacks() as callbacks:
            task_queue_on_commit("evplatform.tenant_ping", key)
        assert _wait_absent(key)  # nothing is sent before the commit
    connection.set_schema_to_public()
    for callback in callbacks:  # the commit, run from another schema: the captured one holds
        callback()
    assert _wait(key) == "op_tenant_b"


def test_queue_on_commit_sends_nothing_on_rollback(worker, operators, db):
    from django.db import transaction

    from evplatform.queue import task_queue_on_commit

    key = f"{settings.REDIS_KEY_PREFIX}:test:{uuid.uuid4().hex}"
    with tenant_context(operators["tenant-a"]):
        try:
            with transaction.atomic():
                task_queue_on_commit("evplatform.tenant_ping", key)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert _wait_absent(key)


def _wait_absent(key: str, seconds: float = 1.0) -> bool:
    r = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if r.get(key) is not None:
            return False
        time.sleep(0.05)
    return True
