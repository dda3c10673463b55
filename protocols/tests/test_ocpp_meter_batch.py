"""MeterValues of many piles at once (``transactions.meter_values_batch``, the gateway's job
lanes): one ``port.ProgressBatch`` to the domain, each reading once by transaction and
timestamp, and a bad call does not lose the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from charging import port
from protocols.ocpp import gateway, mapping, transactions

from .conftest import SCHEMA

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def _tx(pile_code: str, trade_no: str, *, stopped: bool = False) -> int:
    from protocols.models import OcppTransaction

    with schema_context(SCHEMA):
        return OcppTransaction.objects.create(
            pile_code=pile_code, connector_no=1, trade_no=trade_no, id_tag="CARD",
            started_at=T0, meter_start_wh=1000, stopped_at=T0 if stopped else None).pk


def _reading(seconds: int, wh: int) -> mapping.Readings:
    return mapping.Readings(at=T0 + timedelta(seconds=seconds), register_wh=Decimal(wh),
                            power_kw=Decimal("22.00"))


def _call(pile_code, tx, *readings, status=port.ConnectorStatus.CHARGING):
    return (pile_code, 1, tx, list(readings), status)


@pytest.fixture
def txs(operators, recorder):
    return {code: _tx(code, code.ljust(32, "7")) for code in ("32990000000001",
                                                              "32990000000002",
                                                              "32990000000003")}


def test_several_piles_go_to_the_domain_as_one_batch(txs, recorder):
    a, b, c = txs
    sent = transactions.meter_values_batch(SCHEMA, [
        _call(a, txs[a], _reading(15, 2000), _reading(30, 3000)),
        _call(b, txs[b], _reading(15, 1500)),
        _call(c, txs[c], _reading(15, 1250))])

    (batch,) = recorder.of(port.ProgressBatch)
    assert [(p.pile_code, p.trade_no, p.energy_kwh) for p in batch.readings] == [
        (a, a.ljust(32, "7"), Decimal("1.0000")), (a, a.ljust(32, "7"), Decimal("2.0000")),
        (b, b.ljust(32, "7"), Decimal("0.5000")), (c, c.ljust(32, "7"), Decimal("0.2500"))]
    assert [len(events) for events in sent] == [2, 1, 1]
    assert all(p.status == port.ConnectorStatus.CHARGING and p.sample for p in batch.readings)
    from protocols.models import OcppTransaction

    with schema_context(SCHEMA):
        last = dict(OcppTransaction.objects.filter(pk__in=txs.values())
                    .values_list("pile_code", "last_meter_at"))
    assert last == {a: T0 + timedelta(seconds=30), b: T0 + timedelta(seconds=15),
                    c: T0 + timedelta(seconds=15)}


def test_duplicates_and_replays_are_handled_once(txs, recorder):
    a, b, _ = txs
    transactions.meter_values_batch(SCHEMA, [
        _call(a, txs[a], _reading(15, 2000)),
        _call(a, txs[a], _reading(15, 2000)),  # the same reading queued twice
        _call(b, txs[b], _reading(30, 2000), _reading(15, 1500))])  # late one in the call
    sent = transactions.meter_values_batch(SCHEMA, [
        _call(a, txs[a], _reading(15, 2000)),  # a replay after the pile came back
        _call(b, txs[b], _reading(10, 1200), _reading(45, 2500))])

    readings = [(p.pile_code, p.at) for p in recorder.of(port.Progress)]
    assert readings == [(a, T0 + timedelta(seconds=15)), (b, T0 + timedelta(seconds=15)),
                        (b, T0 + timedelta(seconds=30)), (b, T0 + timedelta(seconds=45))]
    assert [len(events) for events in sent] == [0, 1]


def test_unknown_stopped_and_foreign_transactions(txs, recorder):
    a, b, c = txs
    stopped = _tx(c, "8" * 32, stopped=True)
    sent = transactions.meter_values_batch(SCHEMA, [
        _call(a, 999_999, _reading(15, 2000)),  # no such transaction: a reading without one
        _call(b, txs[a], _reading(15, 2000)),  # another pile's transaction: the same
        _call(c, stopped, _reading(15, 2000)),  # a stopped transaction: dropped
        _call(c, None, _reading(15, 2000), status=port.ConnectorStatus.IDLE),
        _call(a, txs[a], _reading(20, 3000))])

    assert [[(p.trade_no, p.energy_kwh, p.status) for p in events] for events in sent] == [
        [(None, None, port.ConnectorStatus.CHARGING)],
        [(None, None, port.ConnectorStatus.CHARGING)],
        [],
        [(None, None, port.ConnectorStatus.IDLE)],
        [(a.ljust(32, "7"), Decimal("2.0000"), port.ConnectorStatus.CHARGING)]]


def test_statements_do_not_grow_with_the_calls(txs, recorder):
    codes = list(txs)
    with CaptureQueriesContext(connection) as one:
        transactions.meter_values_batch(SCHEMA, [_call(codes[0], txs[codes[0]],
                                                       _reading(15, 2000))])
    with CaptureQueriesContext(connection) as three:
        transactions.meter_values_batch(SCHEMA, [_call(code, txs[code], _reading(30, 3000))
                                                 for code in codes])
    assert len(three.captured_queries) == len(one.captured_queries)


def test_the_lane_runs_meter_values_together_and_a_bad_call_alone(txs, recorder,
                                                                   monkeypatch):
    a, b, c = txs
    calls = [(SCHEMA, transactions.meter_values, _call(code, txs[code], _reading(15, 2000)))
             for code in (a, b, c)]
    results = gateway._run_batch(calls, True)
    assert [ok for ok, _ in results] == [True, True, True]
    assert len(recorder.of(port.ProgressBatch)) == 1

    # A call the batch form cannot take (a reading without a time, say): the group fails,
    # its calls run one by one, and only the bad one fails.
    broken = mapping.Readings(at=None, register_wh=Decimal(1))
    calls = [(SCHEMA, transactions.meter_values, _call(a, txs[a], _reading(30, 3000))),
             (SCHEMA, transactions.meter_values, _call(b, txs[b], _reading(30, 2000), broken)),
             (SCHEMA, transactions.meter_values, _call(c, txs[c], _reading(30, 3000)))]
    results = gateway._run_batch(calls, True)
    assert [ok for ok, _ in results] == [True, False, True]
    assert [p.pile_code for p in recorder.of(port.Progress)][-2:] == [a, c]
