"""We as the customer-owning operator: our member charges on an infrastructure partner's
pile. Our calls to the partner (query_stations_info, query_station_status,
query_start_charge, query_stop_charge) go over real HTTP to the fake peer; the peer's
pushes to us (start and stop results, charge status, the final order, check_charge_orders)
are signed and encrypted by the peer's own crypto and reach our platform over a real socket
too: the ASGI app under uvicorn (``live``), addressed as the operator's host."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from charging.models import RoamingOrder
from protocols.cec import pushes, remote
from protocols.cec.models import Push
from settlement import selectors as ledger
from stations.models import PartnerConnector, PartnerStation

from .conftest import IN_SECRET

IDLE, BUSY = "MA1FAKE01P0000101", "MA1FAKE01P0000102"


@pytest.fixture
def infra(partner, peer, live):
    """The fake peer as an infrastructure partner: we pull its stations, it pushes to us
    over real HTTP (its own urllib) at our live server, as the operator's host."""
    partner.is_infrastructure = True
    partner.save()
    peer.push_target(url=f"{live.base}/evcs/v1/", host=live.host, operator_secret=IN_SECRET,
                     data_secret=IN_SECRET, data_iv=IN_SECRET, sig_secret=IN_SECRET)
    return partner


@pytest.fixture
def funded(member):
    from charging.tests.money import wallet_credit

    wallet_credit(member, Decimal("100.00"))
    return member


def _available(member) -> Decimal:
    return ledger.wallet_balance(member).available


def _start(member_api, connector_id):
    return member_api.post("/api/app/v1/orders/roaming", {"connector_id": connector_id}, format="json")


def test_partner_stations_show_in_search_map_and_detail(infra, api):
    assert remote.stations_pull(partner=infra) == 1
    station = PartnerStation.objects.get()
    assert (station.partner, station.name, station.our_operator_id) == ("MA1AGGR01", "互联伙伴·科技园站", "MA59TEST1")
    assert dict(PartnerConnector.objects.values_list("connector_id", "status")) == {IDLE: "idle", BUSY: "charging"}

    rows = api.get("/api/app/v1/stations/partners", {"lat": "22.5401", "lng": "113.9531"}).json()
    assert rows["count"] == 1
    row = rows["results"][0]
    assert row["partner"] is True and row["partner_name"] == infra.name
    assert (row["free"], row["total"]) == (1, 2) and row["distance"] < 50 and "0.9000" in row["prices"]
    assert api.get("/api/app/v1/stations/partners", {"lat": "31.0", "lng": "121.0"}).json()["count"] == 0

    pins = api.get("/api/app/v1/stations/map", {"bbox": "113.9,22.5,114.0,22.6"}).json()["results"]
    assert [p for p in pins if p.get("partner")] == [
        {"id": station.pk, "lat": 22.54, "lng": 113.953, "free": 1, "total": 2, "status": 50, "partner": True}]

    detail = api.get(f"/api/app/v1/stations/partners/{station.pk}").json()
    assert [(c["connector_id"], c["status"]) for c in detail["connectors"]] == [(IDLE, "idle"), (BUSY, "charging")]
    assert api.get("/api/app/v1/stations/partners/999999").json()["code"] == "station_not_found"
    assert api.get("/api/app/v1/stations/partners", {"lat": "22.5"}).json()["code"] == "location_required"
    assert api.get("/api/app/v1/stations/partners", {"lat": "x", "lng": "1"}).status_code == 400


def test_member_charges_on_partner_pile_and_is_billed_once(infra, peer, funded, member_api,
                                                          django_capture_on_commit_callbacks):
    remote.stations_pull(partner=infra)
    idle = PartnerConnector.objects.get(connector_id=IDLE)
    busy = PartnerConnector.objects.get(connector_id=BUSY)
    assert _start(member_api, busy.pk).json()["code"] == "connector_unavailable"

    with django_capture_on_commit_callbacks() as queued:
        response = _start(member_api, idle.pk)
    assert response.status_code == 202, response.content
    assert len(queued) == 1  # cec.roaming_start, sent by the worker: no partner call in the request
    body = response.json()
    assert (body["state"], body["hold_amount"], body["partner_name"]) == ("starting", "100.00", infra.name)
    order = RoamingOrder.objects.get()
    assert len(order.seq) == 27 and order.seq.startswith("MA59TEST1")
    assert _available(funded) == Decimal("0.00")
    assert _start(member_api, idle.pk).json()["code"] == "order_in_progress"

    # The worker asks the partner (real HTTP); the partner accepts and pushes its result.
    assert remote.order_start(order_id=order.pk) == "accepted"
    assert peer.session(order.seq)["ConnectorID"] == IDLE
    ret, _msg, data = peer.push("notification_start_charge_result", {
        "StartChargeSeq": order.seq, "StartChargeSeqStat": 2, "ConnectorID": IDLE,
        "StartTime": peer.session(order.seq)["StartTime"], "IdentCode": ""})
    assert (ret, data["SuccStat"]) == (0, 0)
    order.refresh_from_db()
    assert order.state == "charging" and order.started_at is not None

    ret, _msg, data = peer.push("notification_equip_charge_status",
                                peer.charge_status(order.seq, kwh=5, elec=4.5, service=3.0, soc=40))
    assert (ret, data) == (0, {"StartChargeSeq": order.seq, "SuccStat": 0})
    live = member_api.get(f"/api/app/v1/orders/roaming/{order.pk}").json()
    assert (live["energy_kwh"], live["total_amount"], live["soc_percent"]) == ("5.0000", "7.50", 40)

    # The member stops; the worker asks the partner, which confirms by its push.
    response = member_api.post(f"/api/app/v1/orders/roaming/{order.pk}/stop")
    assert response.status_code == 202 and response.json()["state"] == "stopping"
    assert remote.order_stop(order_id=order.pk) == "stopping"
    assert peer.session(order.seq)["state"] == "stopping"
    ret, _msg, data = peer.push("notification_stop_charge_result", {
        "StartChargeSeq": order.seq, "StartChargeSeqStat": 4, "ConnectorID": IDLE,
        "SuccStat": 0, "FailReason": 0})
    assert (ret, data["SuccStat"]) == (0, 0)
    order.refresh_from_db()
    assert order.state == "finished" and _available(funded) == Decimal("0.00")  # held until billed

    # The partner's bill: our member pays once, the partner's account is credited.
    info = peer.order_info(order.seq, kwh=10, elec=9.0, service=6.0)
    # Two time-of-use lines (07:30–08:00 valley, 08:00–08:40 flat, China time), and one
    # the partner garbled: left out of the lines, the totals still billed.
    info["ChargeDetails"] = [
        {"DetailStartTime": "2026-11-30 07:30:00", "DetailEndTime": "2026-11-30 08:00:00",
         "ElecPrice": 0.3, "SevicePrice": 0.6, "DetailPower": 4.0,
         "DetailElecMoney": 1.2, "DetailSeviceMoney": 2.4},
        {"DetailStartTime": "2026-11-30 08:00:00", "DetailEndTime": "bad time",
         "ElecPrice": 1.3, "SevicePrice": 0.6, "DetailPower": 6.0,
         "DetailElecMoney": 7.8, "DetailSeviceMoney": 3.6},
        {"DetailStartTime": "2026-11-30 08:40:00", "DetailPower": "NaN", "ElecPrice": 1},
    ]
    info["SumPeriod"] = 3
    ret, _msg, data = peer.push("notification_charge_order_info", info)
    assert (ret, data["ConfirmResult"]) == (0, 0)
    order.refresh_from_db()
    assert (order.state, order.total_amount, order.paid_amount, order.energy_kwh) == (
        "settled", Decimal("15.00"), Decimal("15.00"), Decimal("10.0000"))
    billed = member_api.get(f"/api/app/v1/orders/roaming/{order.pk}").json()
    assert billed["bill_lines"] == [
        {"start": "2026-11-30T07:30:00+08:00", "end": "2026-11-30T08:00:00+08:00",
         "energy_kwh": "4.0", "electricity_price": "0.3", "service_price": "0.6",
         "electricity_yuan": "1.20", "service_yuan": "2.40"},
        {"start": "2026-11-30T08:00:00+08:00", "end": None,
         "energy_kwh": "6.0", "electricity_price": "1.3", "service_price": "0.6",
         "electricity_yuan": "7.80", "service_yuan": "3.60"},
    ]
    # Staff see the same lines as a table in the operator's zone, not the partner's JSON.
    staff = Client(HTTP_HOST="tenant-a.testserver")
    staff.force_login(get_user_model().objects.get(username="admin"))
    page = staff.get(f"/admin/charging/roamingorder/{order.pk}/change/").content.decode()
    assert "<td>2026-11-30 07:30:00</td><td>2026-11-30 08:00:00</td><td>4.0</td>" in page
    assert "<td>¥7.80</td><td>0.6</td><td>¥3.60</td>" in page
    assert "DetailPower" not in page and "ChargeDetails" not in page
    assert _available(funded) == Decimal("85.00")
    assert ledger.partner_receivable("MA1AGGR01") == Decimal("-15.00")  # we owe the partner
    # The partner pushes it again (a retry): confirmed, nothing moves.
    ret, _msg, data = peer.push("notification_charge_order_info", info)
    assert (ret, data["ConfirmResult"]) == (0, 0)
    # Again with another total: disputed, nothing moves.
    ret, _msg, data = peer.push("notification_charge_order_info",
                                peer.order_info(order.seq, kwh=10, elec=9.0, service=9.0))
    assert (ret, data["ConfirmResult"]) == (0, 1)
    assert _available(funded) == Decimal("85.00")
    assert ledger.partner_receivable("MA1AGGR01") == Decimal("-15.00")

    # The partner's daily reconciliation: our order agrees; one we never had is disputed.
    unknown = "MA59TEST1" + "000000000000000999"
    ret, _msg, data = peer.push("check_charge_orders", {
        "CheckOrderSeq": "MA1AGGR01" + "000000000020261130", "StartTime": "2026-11-30 00:00:00",
        "EndTime": "2026-12-01 00:00:00", "OrderCount": 2, "TotalOrderPower": 11.0, "TotalOrderMoney": 17.0,
        "ChargeOrders": [{"StartChargeSeq": order.seq, "TotalPower": 10.0, "TotalMoney": 15.0},
                         {"StartChargeSeq": unknown, "TotalPower": 1.0, "TotalMoney": 2.0}]})
    assert ret == 0 and data["TotalDisputeOrder"] == 1
    assert data["DisputeOrders"] == [{"StartChargeSeq": unknown, "TotalPower": 1.0, "TotalMoney": 2.0,
                                      "DisputeReason": 1}]
    order.refresh_from_db()
    assert order.reconciled_at is not None and order.dispute == ""
    _ret, _msg, data = peer.push("check_charge_orders", {
        "CheckOrderSeq": "MA1AGGR01" + "000000000020261130", "StartTime": "", "EndTime": "",
        "ChargeOrders": [{"StartChargeSeq": order.seq, "TotalPower": 10.0, "TotalMoney": 16.0}]})
    assert [d["DisputeReason"] for d in data["DisputeOrders"]] == [2]
    order.refresh_from_db()
    assert order.dispute.startswith("partner: 16")
    assert _available(funded) == Decimal("85.00")  # reconciliation never moves money


def test_refused_or_unreachable_start_releases_the_hold(infra, peer, funded, member_api):
    remote.stations_pull(partner=infra)
    idle = PartnerConnector.objects.get(connector_id=IDLE)
    peer.refuse_starts = 2  # 此设备离线
    _start(member_api, idle.pk)
    order = RoamingOrder.objects.get()
    assert remote.order_start(order_id=order.pk) == "refused 2"
    order.refresh_from_db()
    assert (order.state, order.fail_reason) == ("failed", 2)
    assert _available(funded) == Decimal("100.00")
    assert remote.order_start(order_id=order.pk) == "not starting"  # a redelivered task: nothing

    peer.refuse_starts = 0
    _start(member_api, idle.pk)
    second = RoamingOrder.objects.exclude(pk=order.pk).get()
    peer.inject_failure(path="/evcs/v1/query_start_charge", mode="error", status=500)
    assert remote.order_start(order_id=second.pk) == "unreachable"
    second.refresh_from_db()
    assert (second.state, second.fail_reason) == ("failed", -1)
    assert _available(funded) == Decimal("100.00")


def test_bad_pushes_are_answered_with_their_codes(infra, peer, funded, member_api, caller):
    remote.stations_pull(partner=infra)
    caller.login()
    # A StartChargeSeq that is not ours (not our OperatorID): 4004.
    ret, _msg, _data = caller.call("notification_charge_order_info", {
        "StartChargeSeq": "MA1AGGR01" + "0" * 18, "TotalMoney": 1.0})
    assert ret == 4004
    # Ours in form but unknown: answered, ConfirmResult 2; no money moves.
    ret, _msg, data = caller.call("notification_charge_order_info", {
        "StartChargeSeq": "MA59TEST1" + "0" * 18, "ConnectorID": IDLE, "TotalMoney": 1.0})
    assert (ret, data["ConfirmResult"]) == (0, 2)
    ret, _msg, data = caller.call("notification_equip_charge_status", {"StartChargeSeq": "MA59TEST1" + "0" * 18})
    assert (ret, data["SuccStat"]) == (0, 1)
    ret, _msg, _data = caller.call("notification_charge_order_info", {"StartChargeSeq": "MA59TEST1" + "0" * 18})
    assert ret == 4004  # no TotalMoney
    ret, _msg, _data = caller.call("check_charge_orders", {"CheckOrderSeq": "x", "ChargeOrders": "nope"})
    assert ret == 4004
    # A partner that is not an infrastructure partner may not report on our orders.
    infra.is_infrastructure = False
    infra.save()
    ret, _msg, _data = caller.call("notification_stop_charge_result", {"StartChargeSeq": "MA59TEST1" + "0" * 18})
    assert ret == 4004
    assert _available(funded) == Decimal("100.00")


def test_low_balance_may_not_start(infra, member, member_api):
    remote.stations_pull(partner=infra)
    idle = PartnerConnector.objects.get(connector_id=IDLE)
    response = _start(member_api, idle.pk)
    assert response.status_code == 409 and response.json()["code"] == "insufficient_balance"
    assert _start(member_api, 999999).json()["code"] == "connector_not_found"
    assert member_api.post("/api/app/v1/orders/roaming", {}, format="json").status_code == 400
    assert not RoamingOrder.objects.exists()


def test_check_charge_orders_goes_out_inside_the_night_window(partner, peer, regulator):
    from protocols.cec.convert import CHINA

    assert pushes.check_orders_if_due(now=datetime(2026, 11, 30, 5, 0, tzinfo=CHINA)) == []
    assert pushes.check_orders_if_due(now=datetime(2026, 11, 30, 23, 59, tzinfo=CHINA)) == []
    sent = pushes.check_orders_if_due(now=datetime(2026, 11, 30, 1, 30, tzinfo=CHINA))
    assert [p.key for p in sent] == ["check:2026-11-29"]  # the regulator, for the day before
    again = pushes.check_orders_if_due(now=datetime(2026, 11, 30, 2, 45, tzinfo=CHINA))
    assert [p.pk for p in again] == [p.pk for p in sent]  # the same message, not a new one
    assert Push.objects.filter(interface="check_charge_orders").count() == 1


def test_staff_maintenance_reaches_partners_as_station_status(connector, partner, peer):
    from operations.workorders import work_order_create
    from stations.services import pile_save

    pile = connector.pile
    pile.online = True
    pile.save(update_fields=["online"])
    pushed = pushes.station_status(station_id=pile.station_id)
    assert {p.data()["ConnectorStatusInfo"]["Status"] for p in pushed} == {2}  # first: as it is (plugged)
    assert pushes.station_status(station_id=pile.station_id) == []  # nothing changed: nothing

    pile.enabled = False  # staff disable the pile
    pile_save(pile=pile)
    pushed = pushes.station_status(station_id=pile.station_id)
    ids = sorted(f"{pile.code}{c.number:02d}" for c in pile.connectors.all())
    assert sorted((p.data()["ConnectorStatusInfo"]["ConnectorID"], p.data()["ConnectorStatusInfo"]["Status"])
                  for p in pushed) == [(i, 255) for i in ids]
    pushes.pushes_send_due()
    assert {m["ConnectorStatusInfo"]["ConnectorID"]: m["ConnectorStatusInfo"]["Status"]
            for m in peer.messages("notification_stationStatus")} == dict.fromkeys(ids, 255)

    pile.enabled = True
    pile_save(pile=pile)
    assert {p.data()["ConnectorStatusInfo"]["Status"] for p in pushes.station_status(station_id=pile.station_id)} == {2}

    # A maintenance work order takes the pile out of service: the same push.
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create(username="ops")
    work_order_create(user=staff, title="fix", station=pile.station, pile=pile, pile_maintenance=True)
    pile.refresh_from_db()
    assert pile.enabled is False
    assert {p.data()["ConnectorStatusInfo"]["Status"] for p in pushes.station_status(station_id=pile.station_id)} == {255}


def test_one_running_charge_across_our_piles_and_partners(infra, funded, member_api, connector, tariff):
    remote.stations_pull(partner=infra)
    idle = PartnerConnector.objects.get(connector_id=IDLE)
    assert _start(member_api, idle.pk).status_code == 202
    response = member_api.post("/api/app/v1/orders", {"connector_id": connector.pk}, format="json")
    assert response.json()["code"] == "order_in_progress"
    assert not connector.orders.exists()
