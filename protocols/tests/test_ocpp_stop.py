"""The OCPP gateway's stop with piles connected: every connection closed, the piles marked
offline in batches (a savepoint each) within ``STOP_OFFLINE_S``, the rest deliberately
left to the reconciler (``piles_mark_offline``) — one log line, no error, no work queued
on a closed thread pool."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from protocols.ocpp import gateway as module

from .conftest import SCHEMA
from .helpers import wait_for
from .ocpp_helpers import OcppGatewayThread, RawClient

PILES = 7


def _online(codes) -> dict[str, bool]:
    from stations.models import Pile

    with schema_context(SCHEMA):
        return dict(Pile.objects.filter(code__in=codes).values_list("code", "online"))


@pytest.fixture
def connected(unblocked, make_pile, monkeypatch):
    """``PILES`` booted OCPP piles on a gateway about to stop (batches of 3 at its stop)."""
    monkeypatch.setattr(module, "STOP_OFFLINE_BATCH", 3)
    codes = [make_pile(protocol="ocpp") for _ in range(PILES)]
    gw = OcppGatewayThread()
    clients = [RawClient(gw.url, code) for code in codes]
    for client in clients:
        assert client.boot()[2]["status"] == "Accepted"
    gw.flush()
    wait_for(lambda: all(_online(codes).values()), timeout=20)
    yield gw, codes
    gw.stop()
    for client in clients:
        client.close()


def test_stop_marks_the_piles_offline_in_batches_without_an_error(connected, caplog):
    gw, codes = connected
    with caplog.at_level(logging.INFO, logger="protocols.ocpp.gateway"):
        gw.stop()
    assert _online(codes) == dict.fromkeys(codes, False)
    assert f"stop: {PILES} piles marked offline, 0 left to the reconciler" in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert gw.gateway.executor._shutdown and gw.gateway.background._shutdown


def test_past_the_stop_budget_the_marks_are_left_to_the_reconciler(connected, caplog,
                                                                   monkeypatch):
    from stations.services import piles_mark_offline

    gw, codes = connected
    monkeypatch.setattr(module, "STOP_OFFLINE_S", -1)
    with caplog.at_level(logging.INFO, logger="protocols.ocpp.gateway"):
        gw.stop()
    assert _online(codes) == dict.fromkeys(codes, True)  # not written: no error either
    assert f"stop: 0 piles marked offline, {PILES} left to the reconciler" in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    def reconcile(now: datetime) -> list[str]:  # the beat task's, on its own connection
        from django.db import connection

        try:
            with schema_context(SCHEMA):
                return piles_mark_offline(now=now)
        finally:
            connection.close()

    later = datetime.now(UTC) + timedelta(minutes=5)  # silent for 3 heartbeat intervals
    with ThreadPoolExecutor(1) as pool:
        assert sorted(pool.submit(reconcile, later).result()) == sorted(codes)
    assert _online(codes) == dict.fromkeys(codes, False)
