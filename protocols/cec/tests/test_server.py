"""Our T/CEC endpoints, called with real crypto by the fake aggregator: every Ret code, the
station data, and bad input answered with a Ret (never an HTTP 5xx)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from protocols.cec.models import IssuedToken

CID = "4401060000010101"  # pile 44010600000101, connector 1


def test_token_then_station_info(caller, connector, tariff):
    token = caller.login()
    assert token["TokenAvailableTime"] == 7200 and len(token["AccessToken"]) == 64
    ret, msg, data = caller.call("query_stations_info", {"PageNo": 1, "PageSize": 10})
    assert (ret, msg) == (0, "")
    assert data["ItemSize"] == 1 and data["PageCount"] == 1
    info = data["StationInfos"][0]
    assert info["StationName"] == "珠江新城站" and info["OperatorID"] == "MA59TEST1"
    assert info["StationLat"] == 23.119 and info["AreaCode"] == "440106"
    equipment = info["EquipmentInfos"][0]
    assert equipment["EquipmentID"] == "44010600000101" and equipment["Power"] == 120.0
    assert [c["ConnectorID"] for c in equipment["ConnectorInfos"]] == [CID, "4401060000010102"]


def test_station_status_and_auth(caller, connector):
    caller.login()
    ret, _msg, data = caller.call("query_station_status", {"StationIDs": [str(connector.pile.station_id)]})
    assert ret == 0 and data["Total"] == 1
    statuses = data["StationStatusInfos"][0]["ConnectorStatusInfos"]
    assert statuses[0] == {"ConnectorID": CID, "Status": 2}  # plugged, not charging
    ret, _msg, data = caller.call(
        "query_equip_auth", {"EquipAuthSeq": "MA1AGGR01" + "0" * 18, "ConnectorID": CID})
    assert ret == 0 and (data["SuccStat"], data["FailReason"]) == (0, 0)


def test_wrong_operator_secret_gets_no_token(caller):
    ret, _msg, data = caller.call("query_token", {"OperatorID": "MA1AGGR01", "OperatorSecret": "nope"})
    assert ret == 0 and (data["SuccStat"], data["FailReason"]) == (1, 2)
    assert not IssuedToken.objects.exists()


def test_a_new_token_does_not_revoke_the_older_one(caller, connector):
    first = caller.login()["AccessToken"]
    caller.login()
    ret, _msg, _data = caller.call("query_station_status", {"StationIDs": []}, token=first)
    assert ret == 0


def test_bad_signature_is_4001(caller):
    caller.login()
    ret, msg, _data = caller.call("query_stations_info", {}, Sig="0" * 32)
    assert (ret, msg) == (4001, "signature mismatch")


@pytest.mark.parametrize("token", ["", "F" * 64, "expired", "foreign"])
def test_missing_expired_or_foreign_token_is_4002(caller, token, tenant):
    from protocols.cec.tests.conftest import make_partner

    caller.login()
    if token == "expired":
        IssuedToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        token = caller.token
    elif token == "foreign":  # a token another partner obtained
        other = make_partner(operator_id="MA1OTHER1")
        other_caller = type(caller)(caller.client, caller.peer, operator_id=other.operator_id)
        other_caller.login()
        token = other_caller.token
    ret, _msg, _data = caller.call("query_stations_info", {}, token=token)
    assert ret == 4002


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", '{"OperatorID": "MA1AGGR01"}',
     '{"OperatorID": "MA1NOBODY", "Data": "x", "TimeStamp": "20260101000000", "Seq": "0001", "Sig": "AA"}'],
)
def test_malformed_envelopes_and_strangers_are_4003(caller, body):
    answer = caller.raw("query_stations_info", body)
    assert answer["Ret"] == 4003 and answer["Data"] == ""


def test_undecryptable_data_is_4004(caller):
    from fakes.cec_peer import sig

    caller.login()
    body = {"OperatorID": "MA1AGGR01", "Data": "AAAAAAAAAAAAAAAAAAAAAA==", "TimeStamp": "20260101000000",
            "Seq": "0001"}
    body["Sig"] = sig("MA1AGGR01" + body["Data"] + body["TimeStamp"] + body["Seq"], caller.secret)
    answer = caller.raw("query_stations_info", body)
    assert answer["Ret"] == 4004


@pytest.mark.parametrize(
    ("interface", "data"),
    [
        ("query_start_charge", {"ConnectorID": CID, "QRCode": ""}),  # no StartChargeSeq
        ("query_start_charge", {"StartChargeSeq": "MA1AGGR01123", "ConnectorID": CID}),  # not 27
        ("query_start_charge", {"StartChargeSeq": "MA1OTHER1" + "1" * 18, "ConnectorID": CID}),
        ("query_start_charge", {"StartChargeSeq": "MA1AGGR01" + "1" * 18, "ConnectorID": "99"}),
        ("query_equip_charge_status", {"StartChargeSeq": "MA1AGGR01" + "2" * 18}),  # unknown
        ("query_stop_charge", {"StartChargeSeq": "MA1AGGR01" + "2" * 18, "ConnectorID": CID}),
        ("query_station_status", {"StationIDs": ["abc"]}),
        ("query_stations_info", {"LastQueryTime": "yesterday"}),
        ("query_no_such_thing", {}),
    ],
)
def test_bad_business_parameters_are_4004(caller, connector, interface, data):
    caller.login()
    ret, msg, _data = caller.call(interface, data)
    assert ret == 4004, msg


def test_get_and_crashes_are_never_5xx(caller, connector, monkeypatch):
    from protocols.cec import server

    assert caller.client.get("/evcs/v1/query_token").status_code == 405
    caller.login()

    def boom(partner, data):
        raise RuntimeError("bug")

    monkeypatch.setitem(server.INTERFACES, "query_station_status", boom)
    ret, msg, _data = caller.call("query_station_status", {"StationIDs": []})
    assert (ret, msg) == (500, "system error")


def test_partner_sees_only_its_stations(caller, connector, partner):
    from stations.models import Station

    other = Station.objects.create(name="别的站", code="GZ0002", address="广州",
                                   latitude="23.1", longitude="113.3")
    partner.all_stations = False
    partner.save()
    partner.stations.set([other])
    caller.login()
    _ret, _msg, data = caller.call("query_stations_info", {})
    assert [s["StationName"] for s in data["StationInfos"]] == ["别的站"]
    ret, _msg, _data = caller.call("query_equip_auth",
                                   {"EquipAuthSeq": "MA1AGGR01" + "0" * 18, "ConnectorID": CID})
    assert ret == 4004  # the connector of a station it may not see is unknown to it
