"""charging 0003–0005 / protocols 0002: JSON records become typed columns and period
rows, the gateway's samples join the order samples in one MeterSample.

Runs the real migrations on a scratch operator schema (created and dropped inside the
test's transaction): migrate to the old state, write rows as the old code did, migrate
forward, read them back typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

SCRATCH = "migration_scratch"
OLD = [("charging", "0002_stop_retry_review_idempotency"), ("protocols", "0001_initial")]
NEW = [("charging", "0005_typed_records_required"), ("protocols", "0002_delete_metersample")]
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def scratch(tenant):
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{SCRATCH}"')
    connection.set_schema(SCRATCH)
    yield
    connection.set_tenant(tenant)


def _table(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::text", [f'"{SCRATCH}".{name}'])
        return cursor.fetchone()[0]


def test_records_and_samples_are_converted(scratch):
    apps = _migrate(OLD)
    assert _table("protocols_metersample") and _table("charging_transactionrecord")
    Station = apps.get_model("stations", "Station")
    Pile = apps.get_model("stations", "Pile")
    Member = apps.get_model("accounts", "Member")
    Order = apps.get_model("charging", "ChargingOrder")
    Record = apps.get_model("charging", "TransactionRecord")
    OrderSample = apps.get_model("charging", "MeterSample")
    GatewaySample = apps.get_model("protocols", "MeterSample")

    station = Station.objects.create(name="站", code="S1", address="路", area_code="440106",
                                     latitude=Decimal("23.1"), longitude=Decimal("113.3"))
    pile = Pile.objects.create(station=station, code="44010600000101",
                               rated_power_kw=Decimal("60"), connector_count=1)
    connector = pile.connectors.create(number=1, rated_power_kw=Decimal("60"), qr_code="q1")
    member = Member.objects.create(openid="o1")
    trade = "4401060000010101" + "2611200800000001"
    order = Order.objects.create(number="CD1", member=member, connector=connector, pile=pile,
                                 station=station, trade_no=trade, mode="wallet",
                                 state="finished")
    Record.objects.create(trade_no=trade, pile_code=pile.code, connector_no=1, order=order,
                          raw_hex="68AB", duplicates=2, data={
        "pile_code": pile.code, "connector_no": 1, "trade_no": trade,
        "started_at": T0.isoformat(), "stopped_at": T1.isoformat(),
        "meter_start_kwh": "100.0000", "meter_stop_kwh": "110.5000", "energy_kwh": "10.5000",
        "pile_amount_yuan": "15.75", "stop_reason_code": 0x45,
        "energy_by_period": {"sharp": "0", "peak": "0", "flat": "10.5000", "valley": "0"},
        "vin": "LGAG4PY33S6013235", "card_no": "",
    })
    Record.objects.create(trade_no="9" * 32, pile_code=pile.code, connector_no=1, data={
        "started_at": T0.isoformat(), "stopped_at": T1.isoformat(),
        "meter_start_kwh": "0", "meter_stop_kwh": "1", "energy_kwh": "1",
        "pile_amount_yuan": "1.5", "stop_reason_code": 0x75, "energy_by_period": {},
    })
    OrderSample.objects.create(order=order, at=T0, energy_kwh=Decimal("1.0000"))
    GatewaySample.objects.create(
        pile_code=pile.code, connector_no=1, at=T1, status="charging", trade_no=trade,
        plugged=True, voltage_v=Decimal("380.0"), current_a=Decimal("100.0"),
        power_kw=Decimal("38.00"), energy_kwh=Decimal("10.5000"), amount_yuan=Decimal("15.75"),
        soc_percent=80, elapsed_min=60, remaining_min=5, fault_bits=0x0102)
    GatewaySample.objects.create(
        pile_code=pile.code, connector_no=1, at=T1, status="idle", voltage_v=0, current_a=0,
        power_kw=0, energy_kwh=0, amount_yuan=0)
    # Let the deferred foreign-key checks run now: the next migrations alter these tables.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    apps = _migrate(NEW)
    Record = apps.get_model("charging", "TransactionRecord")
    Sample = apps.get_model("charging", "MeterSample")

    record = Record.objects.get(trade_no=trade)
    assert (record.started_at, record.stopped_at) == (T0, T1)
    assert (record.meter_start_kwh, record.meter_stop_kwh, record.energy_kwh) == (
        Decimal("100.0000"), Decimal("110.5000"), Decimal("10.5000"))
    assert record.pile_amount_yuan == Decimal("15.75")
    assert (record.stop_reason, record.protocol_stop_code) == ("at_pile", 0x45)
    assert (record.vin, record.card_no, record.raw_hex, record.duplicates) == (
        "LGAG4PY33S6013235", "", "68AB", 2)
    assert sorted((p.period, p.energy_kwh, p.amount_yuan) for p in record.periods.all()) == [
        ("flat", Decimal("10.5000"), None), ("peak", Decimal("0.0000"), None),
        ("sharp", Decimal("0.0000"), None), ("valley", Decimal("0.0000"), None)]
    other = Record.objects.get(trade_no="9" * 32)
    assert (other.stop_reason, other.protocol_stop_code, other.periods.count()) == (
        "fault", 0x75, 0)

    samples = list(Sample.objects.order_by("at", "status").values(
        "order_id", "pile_code", "connector_no", "trade_no", "status", "energy_kwh",
        "fault_code", "voltage_v", "plugged"))
    assert samples == [
        {"order_id": order.pk, "pile_code": pile.code, "connector_no": 1, "trade_no": trade,
         "status": "", "energy_kwh": Decimal("1.0000"), "fault_code": "", "voltage_v": None,
         "plugged": None},
        {"order_id": order.pk, "pile_code": pile.code, "connector_no": 1, "trade_no": trade,
         "status": "charging", "energy_kwh": Decimal("10.5000"), "fault_code": "0x0102",
         "voltage_v": Decimal("380.0"), "plugged": True},
        {"order_id": None, "pile_code": pile.code, "connector_no": 1, "trade_no": "",
         "status": "idle", "energy_kwh": Decimal("0.0000"), "fault_code": "",
         "voltage_v": Decimal("0.0"), "plugged": False},
    ]
    assert _table("protocols_metersample") is None
