"""The OCPP 1.6J gateway on real sockets: the handshake is the login (registry, protocol,
HTTP Basic), the core profile's calls reach the domain as the port's events, the
platform's commands reach the pile through the bus, and bad input is answered with the
right CALLERROR while the connection stays usable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django_tenants.utils import get_public_schema_name, schema_context
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from charging import bus, port
from protocols.ocpp import commands as c

from .conftest import SCHEMA
from .helpers import wait_for
from .ocpp_helpers import OcppGatewayThread, RawClient, SimLoop


@pytest.fixture
def ocpp(unblocked, make_pile):
    gw = OcppGatewayThread()
    yield gw
    gw.stop()


@pytest.fixture
def sims():
    loop = SimLoop()
    yield loop
    loop.stop()


@pytest.fixture
def raw(ocpp):
    clients = []

    def open_(code, password=None):
        client = RawClient(ocpp.url, code, password)
        clients.append(client)
        return client

    yield open_
    for client in clients:
        client.close()


@pytest.fixture
def sender():
    with ThreadPoolExecutor(2) as pool:
        yield lambda command, timeout=10.0: pool.submit(bus.send, SCHEMA, command, timeout)


def _pile(code):
    from stations.models import Pile

    with schema_context(SCHEMA):
        return Pile.objects.prefetch_related("connectors").get(code=code)


def _refused(code):
    from tenants.models import RefusedPileLogin

    with schema_context(get_public_schema_name()):
        return RefusedPileLogin.objects.filter(pile_code=code).first()


# --- handshake --------------------------------------------------------------------------


def test_unknown_and_wrong_protocol_piles_are_refused_at_the_handshake(ocpp, make_pile):
    unknown = make_pile(protocol="ocpp", register=False)
    ykc = make_pile()  # registered, but a YKC pile
    for code in (unknown, ykc):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{ocpp.url}/{code}", subprotocols=["ocpp1.6"], open_timeout=10)
        assert refused.value.response.status_code == 404
    assert _refused(unknown).reason == "unknown"
    assert _refused(ykc).reason == "wrong_protocol"
    for path in ("/ocpp/", "/other/32010000000001", "/ocpp/a/b"):
        with pytest.raises(InvalidStatus):
            connect(f"ws://127.0.0.1:{ocpp.port}{path}", subprotocols=["ocpp1.6"],
                    open_timeout=10)


def test_subprotocol_ocpp16_is_required(ocpp, make_pile):
    code = make_pile(protocol="ocpp")
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{ocpp.url}/{code}", open_timeout=10)
    assert refused.value.response.status_code == 400
    with connect(f"{ocpp.url}/{code}", subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6"


def test_security_profile_1_basic_auth_with_the_piles_hashed_password(ocpp, make_pile, raw):
    code = make_pile(protocol="ocpp", password="s3cret-pass")
    assert _pile(code).ocpp_password.startswith(("md5$", "pbkdf2")) and \
        "s3cret" not in _pile(code).ocpp_password
    for password in (None, "wrong"):
        with pytest.raises(InvalidStatus) as refused:
            RawClient(ocpp.url, code, password)
        assert refused.value.response.status_code == 401
    assert _refused(code).reason == "bad_password"
    client = raw(code, "s3cret-pass")
    assert client.boot()[2]["status"] == "Accepted"


# --- core profile -----------------------------------------------------------------------


def test_boot_heartbeat_and_status_reach_the_domain(ocpp, make_pile, raw):
    code = make_pile(protocol="ocpp", connectors=2, heartbeat_s=90)
    client = raw(code)
    reply = client.call("1", "BootNotification", {"chargePointVendor": "ACME",
                                                  "chargePointModel": "AC22",
                                                  "firmwareVersion": "fw-9.1"})
    assert reply[0] == 3 and reply[1] == "1"
    assert reply[2]["status"] == "Accepted" and reply[2]["interval"] == 90
    assert client.call("2", "Heartbeat", {})[2]["currentTime"]
    wait_for(lambda: _pile(code).online, timeout=20)
    assert _pile(code).firmware_version == "fw-9.1"
    client.call("3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                            "status": "Preparing"})
    client.call("4", "StatusNotification", {"connectorId": 2, "errorCode": "GroundFailure",
                                            "status": "Faulted"})
    wait_for(lambda: {c.number: c.status for c in _pile(code).connectors.all()}
             == {1: "plugged", 2: "fault"}, timeout=20)
    # connectorId 0 is the pile: its fault is every connector's.
    client.call("5", "StatusNotification", {"connectorId": 0, "errorCode": "PowerMeterFailure",
                                            "status": "Faulted"})
    wait_for(lambda: {c.status for c in _pile(code).connectors.all()} == {"fault"}, timeout=20)
    client.close()
    wait_for(lambda: not _pile(code).online, timeout=20)


def test_idtag_start_at_the_pile_meter_values_and_stop_make_one_record(ocpp, make_pile, raw,
                                                                     recorder):
    code = make_pile(protocol="ocpp")
    client = raw(code)
    client.boot()
    assert client.call("a", "Authorize", {"idTag": "CARD0001"})[2] == {
        "idTagInfo": {"status": "Accepted"}}
    assert client.call("b", "Authorize", {"idTag": "BADCARD"})[2] == {
        "idTagInfo": {"status": "Invalid"}}
    start = {"connectorId": 1, "idTag": "CARD0001", "meterStart": 1_000_000,
             "timestamp": "2026-11-20T08:00:00Z"}
    reply = client.call("c", "StartTransaction", start)[2]
    assert reply["idTagInfo"]["status"] == "Accepted"
    tx = reply["transactionId"]
    card = recorder.of(port.CardStartRequest)[0]
    assert (card.pile_code, card.connector_no, card.card_no) == (code, 1, "CARD0001")
    started = recorder.of(port.StartResult)[0]
    assert started.accepted and started.trade_no == "1" * 32
    # The same StartTransaction again (the pile missed our answer): the same transaction.
    assert client.call("c2", "StartTransaction", start)[2]["transactionId"] == tx
    assert len(recorder.of(port.CardStartRequest)) == 1
    values = {"connectorId": 1, "transactionId": tx, "meterValue": [{
        "timestamp": "2026-11-20T08:15:00Z", "sampledValue": [
            {"value": "1003.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
            {"value": "14000", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "56", "measurand": "SoC", "unit": "Percent"},
            {"value": "32.5", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
            {"value": "31.0", "measurand": "Current.Import", "unit": "A", "phase": "L2"},
            {"value": "229.4", "measurand": "Voltage", "unit": "V", "phase": "L1-N"}]}]}
    assert client.call("d", "MeterValues", values)[2] == {}
    client.call("d2", "MeterValues", values)  # replayed: applied once
    progress = [p for p in recorder.of(port.Progress) if p.trade_no == "1" * 32]
    assert len(progress) == 1
    p = progress[0]
    assert (p.energy_kwh, p.power_kw, p.soc_percent, p.current_a, p.voltage_v) == (
        Decimal("3.5000"), Decimal("14.00"), 56, Decimal("32.5"), Decimal("229.4"))
    assert p.status == "charging"
    stop = {"transactionId": tx, "meterStop": 1_007_250, "timestamp": "2026-11-20T09:00:00Z",
            "reason": "EVDisconnected", "idTag": "CARD0001", "transactionData": [
                {"timestamp": "2026-11-20T09:00:00Z", "sampledValue": [
                    {"value": "1007250", "context": "Transaction.End"}]}]}
    assert client.call("e", "StopTransaction", stop)[2] == {"idTagInfo": {"status": "Accepted"}}
    client.call("e2", "StopTransaction", stop)  # replayed after a reconnect
    records = recorder.of(port.TransactionRecord)
    assert len(records) == 2 and len(recorder.records) == 1  # stored once (domain dedupes)
    record = records[0]
    assert record.trade_no == "1" * 32 and record.connector_no == 1
    assert (record.meter_start_kwh, record.meter_stop_kwh, record.energy_kwh) == (
        Decimal("1000.0000"), Decimal("1007.2500"), Decimal("7.2500"))
    assert record.pile_amount_yuan is None and record.energy_by_period == {}
    assert record.stop_reason == port.StopReason.UNPLUGGED
    assert str(record.started_at) == "2026-11-20 08:00:00+00:00"


def test_refused_idtag_and_unknown_transaction_stop(ocpp, make_pile, raw, recorder):
    code = make_pile(protocol="ocpp")
    client = raw(code)
    client.boot()
    recorder.card_decision = port.CardStartDecision(
        accepted=False, refusal=port.StartRefusal.INSUFFICIENT_BALANCE)
    reply = client.call("s", "StartTransaction", {"connectorId": 1, "idTag": "POOR",
                                                  "meterStart": 0,
                                                  "timestamp": "2026-11-20T08:00:00Z"})[2]
    assert reply["idTagInfo"]["status"] == "Invalid" and reply["transactionId"] > 0
    assert not recorder.of(port.StartResult)
    # A stop for a transaction this platform never gave out: a record under a new trade
    # number, which the domain turns into a flagged pile-initiated order.
    assert client.call("x", "StopTransaction", {"transactionId": 987654, "meterStop": 5000,
                                                "timestamp": "2026-11-20T10:00:00Z"})[2] == {}
    record = recorder.of(port.TransactionRecord)[-1]
    assert record.trade_no.startswith(code) and len(record.trade_no) == 32
    assert record.stop_reason == port.StopReason.AT_PILE  # no reason: Local


def test_a_record_the_domain_cannot_store_is_not_acknowledged(ocpp, make_pile, raw, recorder):
    code = make_pile(protocol="ocpp")
    client = raw(code)
    client.boot()
    recorder.fail_records = True
    reply = client.call("x", "StopTransaction", {"transactionId": 1, "meterStop": 5000,
                                                 "timestamp": "2026-11-20T10:00:00Z"})
    assert reply[0] == 4 and reply[2] == "InternalError"
    recorder.fail_records = False
    reply = client.call("y", "StopTransaction", {"transactionId": 1, "meterStop": 5000,
                                                 "timestamp": "2026-11-20T10:00:00Z"})
    assert reply[0] == 3 and len(recorder.records) == 1


# --- bad input --------------------------------------------------------------------------


def test_bad_input_is_answered_with_callerror_and_the_connection_stays_usable(ocpp, make_pile,
                                                                            raw):
    code = make_pile(protocol="ocpp")
    client = raw(code)
    # Anything but BootNotification from a pile that never booted.
    reply = client.call("h0", "Heartbeat", {})
    assert reply[:3] == [4, "h0", "SecurityError"]
    client.boot()
    cases = [
        ("{not json", [4, "-1", "FormationViolation"]),
        ('{"a": 1}', [4, "-1", "FormationViolation"]),
        ('[7, "m1", "Heartbeat", {}]', [4, "m1", "ProtocolError"]),
        ('[2, "m2"]', [4, "m2", "ProtocolError"]),
        ('[2, "m3", "Heartbeat", "payload"]', [4, "m3", "FormationViolation"]),
        ('[2, "m4", "BootNotification", {"chargePointModel": "T1"}]',
         [4, "m4", "ProtocolError"]),  # OCPP-J 1.6 §4.2.3: payload incomplete
        ('[2, "m5", "StartTransaction", {"connectorId": "one", "idTag": "X", '
         '"meterStart": 0, "timestamp": "2026-11-20T08:00:00Z"}]',
         [4, "m5", "TypeConstraintViolation"]),
        ('[2, "m6", "FlyToTheMoon", {}]', [4, "m6", "NotSupported"]),
        ('[2, "m7", "RemoteStartTransaction", {"idTag": "X"}]', [4, "m7", "NotImplemented"]),
    ]
    for i, (text, expected) in enumerate(cases):
        client.send(text)
        reply = client.recv()
        assert reply[:3] == expected, (text, reply)
        assert client.call(f"hb-{i}", "Heartbeat", {})[0] == 3  # still usable
    # A reply to nothing is ignored (never answered with an error).
    client.send('[3, "nobody-asked", {}]')
    client.send('[4, "nobody-asked", "GenericError", "", {}]')
    # The same unique id: the same call is answered again, another call is refused.
    first = client.call("dup", "Heartbeat", {})
    assert client.call("dup", "Heartbeat", {}) == first
    assert client.call("dup", "Authorize", {"idTag": "X"})[:3] == [4, "dup", "ProtocolError"]
    ocpp.flush()
    from protocols.models import FrameLog

    with schema_context(SCHEMA):
        logged = FrameLog.objects.filter(pile_code=code)
        names = set(logged.values_list("name", flat=True))
        assert {"BootNotification", "Heartbeat", "CallResult", "CallError", "Invalid"} <= names
        bad = {bytes.fromhex(h).decode() for h in logged.filter(
            direction="in", name="Invalid").values_list("hex", flat=True)}
        assert {"{not json", '{"a": 1}'} <= bad  # as received, byte for byte
    errors = ocpp.gateway.metrics.errors
    assert errors.get("before_boot") == 1 and errors.get("duplicate_unique_id") == 1


# --- commands ---------------------------------------------------------------------------


def test_commands_reach_the_pile_and_its_replies_are_correlated(ocpp, make_pile, sims,
                                                               sender):
    code = make_pile(protocol="ocpp", connectors=2)
    pile = sims.pile(code, ocpp.url, connectors=2)
    sims.online(pile)
    from charging import bus as bus_

    wait_for(lambda: bus_._redis().get(bus_.route_key(SCHEMA, code)))

    def run(command):
        return sender(command).result(15)

    reply = run(c.OcppGetConfiguration(code, keys=("HeartbeatInterval", "Nope")))
    assert reply.ok and reply.detail["configuration_key"][0]["key"] == "HeartbeatInterval"
    assert reply.detail["unknown_key"] == ["Nope"]
    assert run(c.OcppChangeConfiguration(code, "HeartbeatInterval", "120")).ok
    assert pile.configuration["HeartbeatInterval"] == "120"
    refused = run(c.OcppChangeConfiguration(code, "NoSuchKey", "1"))
    assert not refused.ok and refused.detail["status"] == "NotSupported"
    assert run(c.OcppDataTransfer(code, "acme", "ping", "42")).detail == {
        "status": "Accepted", "data": "echo:42"}
    assert run(c.OcppUnlockConnector(code, 2)).ok
    assert run(c.OcppChangeAvailability(code, 2, "Inoperative")).ok
    wait_for(lambda: {c.number: c.status for c in _pile(code).connectors.all()}.get(2) == "fault")
    assert run(c.OcppTriggerMessage(code, "Heartbeat")).ok
    read = run(port.ReadRealtime(code, 1))
    assert read.ok and read.detail["voltage_v"] == "0.0"
    assert run(port.BalanceUpdate(code, 1, Decimal("5"))).error == "unsupported"
    stop = run(port.RemoteStop(code, 1, trade_no="9" * 32))
    assert stop.error == "refused" and stop.detail["refusal"] == "not_charging"
    assert run(c.OcppReset(code, "Soft")).ok
    # The pile reboots: it reconnects and boots again.
    wait_for(lambda: pile.stats.boots >= 2, timeout=30)
    other = make_pile(protocol="ocpp")
    assert run(c.OcppReset(other)).error == "pile_offline"
    metrics = ocpp.gateway.metrics
    assert metrics.messages_out.get("GetConfiguration") == 1
    assert metrics.messages_in.get("BootNotification") >= 2
    # Each collection's pause is timed into ocpp_gc_pause_seconds (gc_pauses.PauseTimer).
    import gc

    before = metrics.gc_pause.series.get(("2",), [None, 0.0, 0])[2]
    gc.collect()
    assert metrics.gc_pause.series[("2",)][2] == before + 1


# --- offline and retries ----------------------------------------------------------------


def test_a_pile_back_online_replays_its_queued_messages_once(ocpp, make_pile, sims, recorder):
    code = make_pile(protocol="ocpp")
    pile = sims.pile(code, ocpp.url, power_kw=22, time_scale=60)
    sims.online(pile)
    sims.run(pile.plug, 1)
    sims.run(pile.begin, pile.connectors[1], "CARD0001")
    sims.drained(pile)
    wait_for(lambda: recorder.of(port.StartResult), timeout=15)
    # The link drops mid-session: meter values and the stop queue up on the pile.
    sims.run(pile.go_offline)
    wait_for(lambda: not pile.online.is_set(), timeout=15)
    wait_for(lambda: len(pile.outbox) >= 3, timeout=30)
    sims.run(pile.finish, pile.connectors[1], "Local")
    queued = len(pile.outbox)
    sims.run(pile.go_online)
    sims.online(pile)
    sims.drained(pile)
    wait_for(lambda: recorder.of(port.TransactionRecord), timeout=15)
    records = recorder.of(port.TransactionRecord)
    assert len(records) == 1 and records[0].trade_no == "1" * 32
    assert records[0].energy_kwh > 0 and records[0].stop_reason == port.StopReason.AT_PILE
    readings = [p for p in recorder.of(port.Progress) if p.trade_no == "1" * 32]
    assert len(readings) >= queued - 1  # every queued MeterValues (and the end reading)
    energies = [p.energy_kwh for p in readings]
    assert energies == sorted(energies) and energies[-1] == records[0].energy_kwh
    assert len(recorder.of(port.CardStartRequest)) == 1
    assert pile.stats.boots == 1  # a reconnect, not a reboot: no BootNotification again


def test_ocpp_command_cli_reaches_the_pile(ocpp, make_pile, sims, capsys):
    from django.core.management import call_command

    from charging import bus as bus_

    code = make_pile(protocol="ocpp")
    pile = sims.pile(code, ocpp.url)
    sims.online(pile)
    wait_for(lambda: bus_._redis().get(bus_.route_key(SCHEMA, code)))
    call_command("ocpp_command", "set-config", tenant="tenant-a", pile=code,
                 key=["MeterValueSampleInterval"], value="30", timeout=10)
    assert '"ok": true' in capsys.readouterr().out
    assert pile.configuration["MeterValueSampleInterval"] == "30"
