"""Real-time data 0x13, session messages, transaction records 0x3B → 0x40, card start
0x31 → 0x32."""

from __future__ import annotations

from decimal import Decimal

from django_tenants.utils import schema_context

from charging import port
from charging.models import MeterSample
from protocols.models import SessionMessage
from protocols.ykc import messages as m
from stations import live
from stations.models import Connector

from .conftest import SCHEMA
from .helpers import login, realtime, record, wait_for

TRADE = "32010200000001012026112008000001"


def test_realtime_updates_live_state_status_sample_and_domain(gateway, make_pile, pile_client,
                                                              recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send(realtime(code, status=3, plugged=True, trade_no=TRADE, energy="1.2345",
                         amount="1.5000", voltage="380.0", current="100.0"))
    gateway.flush()

    state = wait_for(lambda: live.connectors_get(SCHEMA, [(code, 1)]).get((code, 1)))
    assert state["status"] == "charging"
    assert state["energy_kwh"] == "1.2345"
    assert state["power_kw"] == "38.00"
    assert state["trade_no"] == TRADE
    with schema_context(SCHEMA):
        wait_for(lambda: Connector.objects.filter(pile__code=code, status="charging").exists())
        sample = wait_for(lambda: MeterSample.objects.filter(pile_code=code).first())
    assert (sample.status, sample.energy_kwh, sample.trade_no) == ("charging", Decimal("1.2345"),
                                                                   TRADE)
    progress = wait_for(lambda: recorder.of(port.Progress))[0]
    assert progress.status == "charging"
    assert progress.amount_yuan == Decimal("1.50")
    assert progress.trade_no == TRADE


def test_samples_kept_at_interval_and_always_on_status_change(gateway, make_pile, pile_client,
                                                              recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send(realtime(code, status=3, plugged=True, trade_no=TRADE, energy="1"))
    client.send(realtime(code, status=3, plugged=True, trade_no=TRADE, energy="2"))  # < 60 s
    client.send(realtime(code, status=2, plugged=True, energy="0"))  # status change
    wait_for(lambda: len(recorder.of(port.Progress)) == 3)
    gateway.flush()

    with schema_context(SCHEMA):
        statuses = list(MeterSample.objects.filter(pile_code=code).order_by("id")
                        .values_list("status", flat=True))
        assert statuses == ["charging", "plugged"]
        wait_for(lambda: Connector.objects.filter(pile__code=code, status="plugged").exists())


def test_session_messages_are_kept_by_trade_number(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send(m.BmsAbort(TRADE, code, 1, 0b01, 0, 0))
    client.send(m.ChargerAbort(TRADE, code, 1, 0b100, 0, 0))
    client.send(m.Heartbeat(code, 1, False))
    client.recv(0x04)
    gateway.flush()

    with schema_context(SCHEMA):
        rows = list(SessionMessage.objects.filter(trade_no=TRADE, pile_code=code))
    assert [(r.frame_type, r.name) for r in rows] == [(0x1D, "BmsAbort"), (0x21, "ChargerAbort")]
    assert rows[0].data == {"reason_bits": 1, "fault_bits": 0, "error_bits": 0}


def test_record_is_acknowledged_after_storage_and_again_when_repeated(gateway, make_pile,
                                                                      pile_client, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)
    frame = record(code, TRADE)

    sent = client.send(frame, sequence=b"\x00\x46")
    ack = client.recv(0x40)

    assert ack.message == m.TransactionRecordAck(TRADE, True)
    assert ack.sequence == b"\x00\x46"
    stored = recorder.records[TRADE]  # stored before the ack was sent
    assert stored.energy_kwh == Decimal("10.0000")
    assert stored.pile_amount_yuan == Decimal("12.34")
    assert stored.energy_by_period["flat"] == Decimal("10.0000")
    assert stored.raw_hex == sent.hex().upper()
    assert stored.started_at.tzinfo is not None

    client.send(frame)
    assert client.recv(0x40).message == m.TransactionRecordAck(TRADE, True)
    assert len(recorder.of(port.TransactionRecord)) == 2
    assert len(recorder.records) == 1


def test_record_not_acknowledged_when_the_domain_fails(gateway, make_pile, pile_client,
                                                       recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)
    recorder.fail_records = True

    client.send(record(code, TRADE))
    client.send(m.Heartbeat(code, 1, False))  # handled after the record: ordering proof

    client.recv(0x04)
    assert recorder.of(port.TransactionRecord)
    assert not [f for f in client.frames if f.frame_type == 0x40]
    assert gateway.sync(lambda: gateway.gateway.metrics.errors.get("record_not_stored")) == 1


def test_card_start_is_decided_by_the_domain(gateway, make_pile, pile_client, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send(m.PileStartRequest(code, 1, 1, False, "00000000D14B0A54", bytes(16), ""))
    reply = client.recv(0x32).message

    request = recorder.of(port.CardStartRequest)[0]
    assert (request.start_mode, request.card_no) == ("card", "00000000D14B0A54")
    assert reply.authorized is True
    assert reply.trade_no == "1" * 32
    assert reply.logical_card_no == "1234567890123456"
    assert reply.balance == Decimal("88.00")


def test_refused_card_start_carries_the_reason(gateway, make_pile, pile_client, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)
    recorder.card_decision = port.CardStartDecision(
        accepted=False, refusal=port.StartRefusal.INSUFFICIENT_BALANCE)

    client.send(m.PileStartRequest(code, 1, 3, False, "0" * 16, bytes(16), "LGAG4PY33S6013235"))
    reply = client.recv(0x32).message

    assert recorder.of(port.CardStartRequest)[0].vin == "LGAG4PY33S6013235"
    assert (reply.authorized, int(reply.failure_reason)) == (False, 0x03)
