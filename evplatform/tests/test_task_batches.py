"""``evplatform.queue``'s batched tasks: items committed inside ``tasks_batched`` go as one
task per name and schema at the block's end; rolled-back ones never; outside a block, one
task per item; long lists split; a failed publish does not stop the others."""

from __future__ import annotations

import logging

import pytest
from django.db import connection, transaction

from evplatform import queue


@pytest.fixture
def sent(monkeypatch):
    """What the broker was sent: (name, args, schema header), in order."""
    out = []
    monkeypatch.setattr(queue.app, "send_task", lambda name, args=(), headers=None, **kw:
                        out.append((name, args, headers["_schema_name"])))
    return out


def test_items_committed_in_a_block_go_as_one_task_at_its_end(db, sent,
                                                               django_capture_on_commit_callbacks):
    schema = connection.schema_name
    with queue.tasks_batched():
        with django_capture_on_commit_callbacks(execute=True):
            queue.task_queue_on_commit_batched("cec.connector_statuses", ["P1", 1])
            queue.task_queue_on_commit_batched("cec.connector_statuses", ["P2", 2])
            queue.task_queue_on_commit_batched("other.batch", 7)
            with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back
                queue.task_queue_on_commit_batched("cec.connector_statuses", ["P3", 1])
                raise RuntimeError
        assert sent == []  # committed, held until the block ends
        with queue.tasks_batched():  # a nested block belongs to the outer one
            with django_capture_on_commit_callbacks(execute=True):
                queue.task_queue_on_commit_batched("cec.connector_statuses", ["P4", 1])
        assert sent == []
    assert sent == [("cec.connector_statuses", ([["P1", 1], ["P2", 2], ["P4", 1]],), schema),
                    ("other.batch", ([7],), schema)]


def test_nothing_is_sent_for_a_block_whose_transaction_rolled_back(db, sent):
    with queue.tasks_batched():
        with pytest.raises(RuntimeError), transaction.atomic():
            queue.task_queue_on_commit_batched("cec.connector_statuses", ["P1", 1])
            raise RuntimeError
    assert sent == []


def test_outside_a_block_each_item_goes_at_commit_as_a_list_of_one(db, sent,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queue.task_queue_on_commit_batched("cec.connector_statuses", ["P1", 1])
        assert sent == []
        queue.task_queue_on_commit_batched("cec.connector_statuses", ["P2", 1])
    assert [args for _, args, _ in sent] == [([["P1", 1]],), ([["P2", 1]],)]


def test_a_long_list_is_split_and_a_failed_publish_spares_the_rest(
        db, monkeypatch, caplog, django_capture_on_commit_callbacks):
    monkeypatch.setattr(queue, "BATCH_ITEMS_MAX", 2)
    calls = []

    def send_task(name, args=(), headers=None, **kw):
        calls.append(args[0])
        if len(calls) == 2:
            raise ConnectionError("broker gone")

    monkeypatch.setattr(queue.app, "send_task", send_task)
    with caplog.at_level(logging.ERROR, logger="evplatform.queue"), queue.tasks_batched():
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(5):
                queue.task_queue_on_commit_batched("cec.connector_statuses", ["P", n])
    assert calls == [[["P", 0], ["P", 1]], [["P", 2], ["P", 3]], [["P", 4]]]
    [record] = caplog.records
    assert "2 items not queued" in record.getMessage() and "['P', 2]" in record.getMessage()
