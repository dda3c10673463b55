"""A reconnect storm's per-pile domain work, batched per window and operator: the offline
marks of the dropped links (``port.PilesOffline``) and what each 0x13 reports — status
change, fault set, reading (``port.ConnectorReports``); a failed batch loses no pile."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django_tenants.utils import get_public_schema_name, schema_context

from charging import port
from stations.models import Connector, Fault, Pile

from .conftest import SCHEMA, committed
from .helpers import login, realtime, wait_for


def _logged_in(gateway, pile_client, codes: list[str]) -> list:
    clients = [pile_client() for _ in codes]
    for client, code in zip(clients, codes, strict=True):
        login(client, code)
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=codes, online=True).count() == len(codes))
    return clients


def _statuses(codes: list[str], schema: str = SCHEMA) -> dict[str, str]:
    with schema_context(schema):
        return dict(Connector.objects.filter(pile__code__in=codes, number=1)
                    .values_list("pile__code", "status"))


def test_dropped_links_of_a_window_are_marked_offline_in_one_batch(gateway, make_pile,
                                                                   pile_client):
    codes = [make_pile() for _ in range(3)]
    clients = _logged_in(gateway, pile_client, codes)
    marks = gateway.gateway.offline_marks
    marks.window = 0.5  # the three closes in one window whatever the machine's pace
    calls = marks.calls

    for client in clients:
        client.close()

    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=codes, online=False).count() == 3)
        assert marks.calls == calls + 1  # one port.PilesOffline for the three
        assert set(_statuses(codes).values()) == {Connector.Status.OFFLINE}
        assert sorted(Fault.objects.filter(pile__code__in=codes, source=Fault.Source.OFFLINE,
                                           cleared_at__isnull=True)
                      .values_list("pile__code", flat=True)) == sorted(codes)


def test_a_failed_offline_batch_marks_each_pile_alone(gateway, make_pile, pile_client):
    codes = [make_pile() for _ in range(3)]
    clients = _logged_in(gateway, pile_client, codes)
    marks = gateway.gateway.offline_marks
    marks.window = 0.5
    real = marks.fn
    failed = []

    def fails(claims):
        failed.append(len(claims))
        raise RuntimeError("connection lost")  # as a dropped database connection

    marks.fn = fails
    try:
        for client in clients:
            client.close()
        with schema_context(SCHEMA):
            wait_for(lambda: Pile.objects.filter(code__in=codes, online=False).count() == 3)
    finally:
        marks.fn = real

    assert failed == [3]  # all three in the failed batch, each marked alone after it
    assert gateway.gateway.metrics.errors.get("offline_batch_failed") == 3
    assert set(_statuses(codes).values()) == {Connector.Status.OFFLINE}


def test_first_realtime_reports_of_a_window_go_to_the_domain_in_one_batch(
        gateway, make_pile, pile_client, recorder):
    codes = [make_pile() for _ in range(3)]
    clients = _logged_in(gateway, pile_client, codes)
    reports = gateway.gateway.connector_reports
    reports.window = 0.5
    calls = reports.calls

    clients[0].send(realtime(codes[0], status=1))  # in fault
    for client, code in zip(clients[1:], codes[1:], strict=True):
        client.send(realtime(code, status=2, plugged=True, voltage="380", current="10"))

    wait_for(lambda: _statuses(codes) == {codes[0]: Connector.Status.FAULT,
                                          codes[1]: Connector.Status.PLUGGED,
                                          codes[2]: Connector.Status.PLUGGED})
    assert reports.calls == calls + 1  # one port.ConnectorReports for the three piles
    (batch,) = [e for e in recorder.of(port.ConnectorReports)
                if {r.pile_code for r in e.readings} & set(codes)]
    assert [r.pile_code for r in batch.readings] == codes  # in the order they came
    assert [s.pile_code for s in batch.statuses] == codes
    assert [(f.pile_code, [a.code for a in f.faults]) for f in batch.faults] == [
        (codes[0], [port.FaultCode.CONNECTOR]), (codes[1], []), (codes[2], [])]
    assert batch.readings[1].power_kw == Decimal("3.80")


def test_the_status_pushes_of_a_window_go_to_partners_as_one_task(gateway, make_pile,
                                                                  pile_client, monkeypatch):
    """The CEC status pushes (notification_stationStatus) of a window's reports: one
    ``cec.connector_statuses`` task carrying every connector that changed, not a Celery
    publish per connector in the gateway's thread."""
    from evplatform import queue

    sent = []
    monkeypatch.setattr(queue.app, "send_task", lambda name, args=(), headers=None, **kw:
                        sent.append((name, args)))
    codes = [make_pile() for _ in range(3)]
    clients = _logged_in(gateway, pile_client, codes)
    reports = gateway.gateway.connector_reports
    reports.window = 0.5
    del sent[:]

    for client, code in zip(clients, codes, strict=True):
        client.send(realtime(code, status=2, plugged=True))
    wait_for(lambda: set(_statuses(codes).values()) == {Connector.Status.PLUGGED})

    def pushes():
        return [args[0] for name, args in sent if name == "cec.connector_statuses"
                and {code for code, _no in args[0]} & set(codes)]

    # Sent when the batch's database call has returned, a moment after its commit (which
    # the statuses above show): wait for it, then for any stray second one.
    wait_for(pushes)
    time.sleep(0.3)
    found = pushes()
    assert len(found) == 1, sent
    assert sorted(found[0]) == sorted([code, 1] for code in codes)


def test_a_failed_realtime_batch_reports_each_pile_alone(gateway, make_pile, pile_client,
                                                         recorder):
    codes = [make_pile() for _ in range(3)]
    clients = _logged_in(gateway, pile_client, codes)
    reports = gateway.gateway.connector_reports
    reports.window = 0.5
    real = reports.fn
    failed = []

    def fails(claims):
        failed.append(len(claims))
        raise RuntimeError("connection lost")

    reports.fn = fails
    try:
        for client, code in zip(clients, codes, strict=True):
            client.send(realtime(code, status=2, plugged=True))
        wait_for(lambda: set(_statuses(codes).values()) == {Connector.Status.PLUGGED})
        wait_for(lambda: len([e for e in recorder.of(port.Progress)
                              if e.pile_code in codes]) == 3)
    finally:
        reports.fn = real

    assert failed == [3]  # all three in the failed batch, each reported alone after it
    assert gateway.gateway.metrics.errors.get("realtime_batch_failed") == 3
    # Alone: each event on its own, as before batches.
    assert sorted(e.pile_code for e in recorder.of(port.FaultsReported)) == sorted(codes)


@pytest.fixture
def pile_of_b(unblocked, operators):
    """A committed one-connector pile of the second operator (``tenant-b``)."""
    from charging.models import MeterSample
    from protocols.models import FrameLog
    from stations.models import Station
    from tenants.models import PileRegistration

    schema = operators["tenant-b"].schema_name
    code = "32019999900001"

    def create():
        with schema_context(schema):
            station = Station.objects.create(
                code="GW-TEST-B", name="网关测试站 B", address="测试路 2 号", area_code="310000",
                latitude=Decimal("31.2"), longitude=Decimal("121.4"))
            pile = Pile.objects.create(station=station, code=code, rated_power_kw=60,
                                       connector_count=1, protocol="ykc")
            pile.connectors.create(number=1, rated_power_kw=60, qr_code=f"{code}01")
        with schema_context(get_public_schema_name()):
            PileRegistration.objects.create(code=code, operator=operators["tenant-b"])

    def remove():
        with schema_context(schema):
            Pile.objects.filter(code=code).delete()
            Station.objects.filter(code="GW-TEST-B").delete()
            for model in (FrameLog, MeterSample):
                model.objects.filter(pile_code=code).delete()
        with schema_context(get_public_schema_name()):
            PileRegistration.objects.filter(code=code).delete()

    committed(remove)  # a run stopped half-way left it
    committed(create)
    yield code, schema
    committed(remove)


def test_two_operators_in_one_window_get_one_batch_each(gateway, make_pile, pile_client,
                                                        pile_of_b):
    code_b, schema_b = pile_of_b
    code_a = make_pile()
    client_a, client_b = pile_client(), pile_client()
    login(client_a, code_a)
    login(client_b, code_b, schema=schema_b)
    with schema_context(schema_b):
        wait_for(lambda: Pile.objects.filter(code=code_b, online=True).exists())
    reports, marks = gateway.gateway.connector_reports, gateway.gateway.offline_marks
    reports.window = marks.window = 0.5
    calls = reports.calls, marks.calls

    client_a.send(realtime(code_a, status=2, plugged=True))
    client_b.send(realtime(code_b, status=2, plugged=True))
    wait_for(lambda: _statuses([code_a]) == {code_a: Connector.Status.PLUGGED})
    wait_for(lambda: _statuses([code_b], schema_b) == {code_b: Connector.Status.PLUGGED})
    assert reports.calls == calls[0] + 2  # one per operator, each in its own schema

    client_a.close()
    client_b.close()
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code=code_a, online=False).exists())
    with schema_context(schema_b):
        wait_for(lambda: Pile.objects.filter(code=code_b, online=False).exists())
        assert Fault.objects.filter(pile__code=code_b, source=Fault.Source.OFFLINE).count() == 1
    assert marks.calls == calls[1] + 2
    assert _statuses([code_b], schema_b) == {code_b: Connector.Status.OFFLINE}


def test_a_window_ending_while_its_batch_runs_gathers_until_that_batch_returns(
        gateway, make_pile, pile_client):
    """One offline-mark call per operator at a time: links that drop while one runs wait for
    it and go together (a storm's batches grow with the database's pace, not one per 20 ms
    window); none is lost."""
    import threading

    codes = [make_pile() for _ in range(3)]
    clients = _logged_in(gateway, pile_client, codes)
    marks = gateway.gateway.offline_marks
    marks.window = 0.01
    real = marks.fn
    sizes: list[int] = []
    running, release = threading.Event(), threading.Event()

    def slow_first(claims):
        sizes.append(len(claims))
        if len(sizes) == 1:
            running.set()
            release.wait(10)
        return real(claims)

    marks.fn = slow_first
    try:
        clients[0].close()
        assert running.wait(10)
        for client in clients[1:]:  # each in a window of its own, both while the first runs
            client.close()
            time.sleep(0.1)
        assert sizes == [1]
        release.set()
        with schema_context(SCHEMA):
            wait_for(lambda: Pile.objects.filter(code__in=codes, online=False).count() == 3)
    finally:
        release.set()
        marks.fn = real

    assert sizes == [1, 2]
    assert set(_statuses(codes).values()) == {Connector.Status.OFFLINE}


def test_a_login_being_decided_is_not_timed_out(gateway, make_pile, pile_client):
    # YKC_LOGIN_TIMEOUT_S runs from the connect to the login frame: a login that came in
    # time but waits for its batch (a storm's queue) is answered, not closed unanswered.
    code = make_pile()
    gateway.sync(setattr, gateway.gateway, "login_timeout", 1)
    logins = gateway.gateway.logins
    real = logins.fn

    def slow(claims):
        time.sleep(2.5)  # past the login timeout, swept every second
        return real(claims)

    logins.fn = slow
    try:
        client = pile_client()
        assert login(client, code).message.success
    finally:
        logins.fn = real
    assert gateway.gateway.metrics.errors.get("login_timeout") == 0
    silent = pile_client()  # one that sends nothing is still closed
    assert silent.closed(timeout=4)
    assert gateway.gateway.metrics.errors.get("login_timeout") == 1
