"""A partner's driver charges on our pile: query_start_charge through the order services,
the pile's events through the port, settlement to the partner's receivable, and the pushes
over real HTTP to the fake aggregator and the fake regulator (each exactly once)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charging import port, services
from charging.models import ChargingOrder, OrderState, PaymentMode, TransactionRecord
from protocols.cec import pushes
from protocols.cec.models import Push

CID = "4401060000010101"
SEQ = "MA1AGGR01" + "202611301000000001"


def _send_all():
    for push in Push.objects.filter(state=Push.State.PENDING).order_by("pk"):
        pushes.push_send(push_id=push.pk)


def _record(order):
    at = timezone.now()
    return port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=at - timedelta(minutes=20), stopped_at=at,
        meter_start_kwh=Decimal("1000.0000"), meter_stop_kwh=Decimal("1010.0000"),
        energy_kwh=Decimal("10.0000"), pile_amount_yuan=Decimal("15.0000"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    )


def test_partner_charge_settles_once_and_reaches_partner_and_regulator(
    live_caller, connector, tariff, peer, regulator, regulator_peer
):
    from settlement import selectors as ledger

    live_caller.login()
    ret, _msg, data = live_caller.call("query_start_charge",
                                  {"StartChargeSeq": SEQ, "ConnectorID": CID, "QRCode": ""})
    assert ret == 0 and data == {"StartChargeSeq": SEQ, "ConnectorID": CID,
                                 "StartChargeSeqStat": 1, "SuccStat": 0, "FailReason": 0}
    order = ChargingOrder.objects.get(partner="MA1AGGR01", partner_seq=SEQ)
    assert order.mode == PaymentMode.PARTNER and order.member is None
    assert order.state == OrderState.STARTING and order.hold_amount == Decimal("200.00")
    # The partner retries its start: the same order, nothing new.
    ret, _msg, data = live_caller.call("query_start_charge", {"StartChargeSeq": SEQ, "ConnectorID": CID})
    assert data["SuccStat"] == 0 and ChargingOrder.objects.count() == 1
    # The same StartChargeSeq on another connector is refused.
    _ret, _msg, data = live_caller.call("query_start_charge",
                                   {"StartChargeSeq": SEQ, "ConnectorID": "4401060000010102"})
    assert (data["SuccStat"], data["FailReason"]) == (1, 9)

    # The pile starts and reports progress (through the port, as the YKC gateway does).
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True,
                                                 at=timezone.now()))
    services.order_progress(port.Progress(
        order.pile.code, 1, "charging", timezone.now(), trade_no=order.trade_no,
        energy_kwh=Decimal("5.0000"), amount_yuan=Decimal("7.50"), voltage_v=Decimal("400.0"),
        current_a=Decimal("100.0"), soc_percent=40))
    pushes.order_changed(order_id=order.pk, state="charging")
    assert pushes.charge_status_due() == 1
    _send_all()
    [started] = peer.messages("notification_start_charge_result")
    assert (started["StartChargeSeq"], started["StartChargeSeqStat"], started["ConnectorID"]) == (SEQ, 2, CID)
    [status] = peer.messages("notification_equip_charge_status")
    assert status["TotalPower"] == 5.0 and status["Soc"] == 40 and status["StartChargeSeqStat"] == 2

    ret, _msg, data = live_caller.call("query_equip_charge_status", {"StartChargeSeq": SEQ})
    assert ret == 0 and data["TotalPower"] == 5.0 and data["TotalMoney"] == 7.5
    assert (data["ElecMoney"], data["SeviceMoney"]) == (5.0, 2.5)  # the running split adds up
    assert data["VoltageA"] == 400.0 and data["ConnectorStatus"] in (2, 3)

    ret, _msg, data = live_caller.call("query_stop_charge", {"StartChargeSeq": SEQ, "ConnectorID": CID})
    assert ret == 0 and (data["SuccStat"], data["StartChargeSeqStat"]) == (0, 3)
    order.refresh_from_db()
    assert order.state == OrderState.STOPPING

    services.record_store(_record(order))
    record = TransactionRecord.objects.get(trade_no=order.trade_no)
    services.record_settle(record_id=record.pk)
    services.record_settle(record_id=record.pk)  # a retried settlement moves nothing twice
    order.refresh_from_db()
    assert order.state == OrderState.SETTLED and order.total_amount == Decimal("15.00")
    assert ledger.partner_receivable("MA1AGGR01") == Decimal("15.00")

    for state in ("finished", "settled", "settled"):  # the event arrives twice
        pushes.order_changed(order_id=order.pk, state=state)
    _send_all()
    [stopped] = peer.messages("notification_stop_charge_result")
    assert (stopped["SuccStat"], stopped["StartChargeSeqStat"]) == (0, 4)
    [info] = peer.messages("notification_charge_order_info")
    assert info["StartChargeSeq"] == SEQ and info["TotalPower"] == 10.0
    assert (info["TotalElecMoney"], info["TotalSeviceMoney"], info["TotalMoney"]) == (10.0, 5.0, 15.0)
    assert info["SumPeriod"] == len(info["ChargeDetails"]) == 1
    assert info["ChargeDetails"][0]["SevicePrice"] == 0.5
    [reported] = regulator_peer.messages("notification_charge_order_info")
    assert reported["StartChargeSeq"] == SEQ and reported["TotalMoney"] == 15.0
    assert Push.objects.filter(state=Push.State.DONE).count() == 5
    assert not Push.objects.exclude(state=Push.State.DONE).exists()
    # A manual push of the day's orders to the regulator sends the same message again.
    now = timezone.now()
    assert pushes.orders_push(regulator=regulator, settled_from=now - timedelta(hours=1),
                              settled_to=now + timedelta(hours=1)) == 1
    _send_all()
    assert len(regulator_peer.messages("notification_charge_order_info")) == 2
    assert Push.objects.filter(partner=regulator).count() == 1


def test_our_members_orders_reach_the_regulator(funded_member, connector, tariff, regulator,
                                                regulator_peer):
    order = services.order_start(member=funded_member, connector=connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True,
                                                 at=timezone.now()))
    services.record_store(_record(order))
    services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    pushes.order_changed(order_id=order.pk, state="settled")
    _send_all()
    [reported] = regulator_peer.messages("notification_charge_order_info")
    assert len(reported["StartChargeSeq"]) == 27 and reported["StartChargeSeq"].startswith("MA59TEST1")
    assert reported["TotalMoney"] == 15.0


def test_owing_partner_may_not_start_when_switched_off(caller, connector, tariff, partner):
    from settlement import services as ledger

    ledger.partner_order_charge(partner="MA1AGGR01", amount=Decimal("3.00"), key="earlier-order")
    partner.charge_while_owing = False
    partner.save()
    caller.login()
    _ret, _msg, data = caller.call("query_start_charge", {"StartChargeSeq": SEQ, "ConnectorID": CID})
    assert (data["SuccStat"], data["FailReason"]) == (1, 8)
    assert not ChargingOrder.objects.exists()


def test_start_refusals_come_back_as_fail_reasons(caller, connector, tariff):
    connector.pile.online = False
    connector.pile.save()
    caller.login()
    _ret, _msg, data = caller.call("query_start_charge", {"StartChargeSeq": SEQ, "ConnectorID": CID})
    assert (data["SuccStat"], data["FailReason"]) == (1, 2)  # 此设备离线


@pytest.fixture
def tou_tariff(station):
    """Guangdong time of use (valley 0–8, peak 10–12 and 14–19, flat otherwise; 1.00 flat,
    1.70 peak, service 0.50 yuan/kWh) for the station."""
    from billing.tariffs import pricing
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )
    from charging.tests.conftest import LONG_AGO

    tariff = tariff_create(name="分时", draft=pricing.guangdong_tou_tariff(Decimal("1.0"), Decimal("0.5")))
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    station_tariff_assign(stations=[station], tariff=tariff)
    return tariff


def test_charge_details_are_split_at_tariff_period_boundaries(live_caller, connector, tou_tariff, peer):
    """A session 09:30–12:30 (China time) on a time-of-use tariff, priced from the pile's
    buckets (flat 2 kWh, peak 8 kWh): three ChargeDetails — flat 09:30–10:00, peak
    10:00–12:00, flat 12:00–12:30 — adding up to the totals; TotalMoney = TotalElecMoney +
    TotalSeviceMoney."""
    from datetime import datetime

    from charging.tests.conftest import LONG_AGO
    from protocols.cec.convert import CHINA

    live_caller.login()
    ret, _msg, data = live_caller.call("query_start_charge", {"StartChargeSeq": SEQ, "ConnectorID": CID})
    assert ret == 0 and data["SuccStat"] == 0
    order = ChargingOrder.objects.get(partner_seq=SEQ)
    day = timezone.localdate() - timedelta(days=2)
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=CHINA)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True,
                                                 at=start))
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no, started_at=start,
        stopped_at=start + timedelta(hours=3), meter_start_kwh=Decimal("1000.0000"),
        meter_stop_kwh=Decimal("1010.0000"), energy_kwh=Decimal("10.0000"),
        pile_amount_yuan=Decimal("20.60"), stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
        energy_by_period={"flat": Decimal("2.0000"), "peak": Decimal("8.0000")},
        amount_by_period={"flat": Decimal("3.00"), "peak": Decimal("17.60")},
        pile_tariff_version=order.tariff_snapshot["model_number"], pile_tariff_since=LONG_AGO,
    ))
    services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    order.refresh_from_db()
    assert order.state == OrderState.SETTLED and order.total_amount == Decimal("20.60")
    assert order.bill["source"] == "pile"
    pushes.order_changed(order_id=order.pk, state="settled")
    _send_all()
    [info] = peer.messages("notification_charge_order_info")
    assert (info["TotalElecMoney"], info["TotalSeviceMoney"], info["TotalMoney"]) == (15.6, 5.0, 20.6)
    when = f"{day:%Y-%m-%d}"
    assert [(d["DetailStartTime"], d["DetailEndTime"], d["ElecPrice"], d["DetailPower"],
             d["DetailElecMoney"], d["DetailSeviceMoney"]) for d in info["ChargeDetails"]] == [
        (f"{when} 09:30:00", f"{when} 10:00:00", 1.0, 1.0, 1.0, 0.5),
        (f"{when} 10:00:00", f"{when} 12:00:00", 1.7, 8.0, 13.6, 4.0),
        (f"{when} 12:00:00", f"{when} 12:30:00", 1.0, 1.0, 1.0, 0.5),
    ]
    assert info["SumPeriod"] == 3


def test_a_minimum_charge_keeps_the_total_the_sum_of_its_parts(live_caller, connector, station, peer):
    """A 起步价 top-up (and any other non-energy charge) is part of the service money: the
    partner always gets TotalMoney = TotalElecMoney + TotalSeviceMoney."""
    from billing.tariffs import pricing
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )
    from charging.tests.conftest import LONG_AGO

    tariff = tariff_create(name="起步价", draft=pricing.flat_tariff(
        Decimal("1.0"), Decimal("0.5"), minimum_charge=Decimal("5.00")))
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    station_tariff_assign(stations=[station], tariff=tariff)
    live_caller.login()
    live_caller.call("query_start_charge", {"StartChargeSeq": SEQ, "ConnectorID": CID})
    order = ChargingOrder.objects.get(partner_seq=SEQ)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True,
                                                 at=timezone.now()))
    record = _record(order)
    small = port.TransactionRecord(**{**record.__dict__, "meter_stop_kwh": Decimal("1002.0000"),
                                      "energy_kwh": Decimal("2.0000"), "pile_amount_yuan": Decimal("3.00")})
    services.record_store(small)
    services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)
    order.refresh_from_db()
    assert order.state == OrderState.SETTLED and order.total_amount == Decimal("5.00")
    pushes.order_changed(order_id=order.pk, state="settled")
    _send_all()
    [info] = peer.messages("notification_charge_order_info")
    assert (info["TotalElecMoney"], info["TotalSeviceMoney"], info["TotalMoney"]) == (2.0, 3.0, 5.0)
    assert [(d["DetailElecMoney"], d["DetailSeviceMoney"]) for d in info["ChargeDetails"]] == [(2.0, 1.0)]


@pytest.fixture
def funded_member(member):
    from charging.tests.money import wallet_credit

    wallet_credit(member, Decimal("100.00"))
    return member
