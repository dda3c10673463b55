"""An infrastructure partner's stations pulled over real HTTP, kept live by its pushes."""

from __future__ import annotations

import pytest

from protocols.cec import remote
from protocols.cec.client import CallFailed
from stations.models import PartnerConnector, PartnerStation


@pytest.fixture
def infra(partner):
    partner.is_infrastructure = True
    partner.save()
    return partner


def test_pull_stations_and_status(infra, peer):
    assert remote.stations_pull(partner=infra) == 1
    station = PartnerStation.objects.get()
    assert (station.name, station.station_id, station.status) == ("互联伙伴·科技园站", "FAKE001", 50)
    assert str(station.latitude) == "22.540000" and "0.9000" in station.price_note
    assert dict(PartnerConnector.objects.values_list("connector_id", "status")) == {
        "MA1FAKE01P0000101": "idle", "MA1FAKE01P0000102": "charging"}
    peer.stations = []  # the partner withdraws the station
    assert remote.stations_pull(partner=infra) == 0
    assert not PartnerStation.objects.exists() and not PartnerConnector.objects.exists()


def test_pull_failure_raises(infra, peer):
    peer.inject_failure(path="/evcs/v1/query_stations_info", mode="error", status=500)
    with pytest.raises(CallFailed):
        remote.stations_pull(partner=infra)


def test_partner_status_push_updates_its_connector(caller, infra, peer):
    remote.stations_pull(partner=infra)
    caller.login()
    info = {"ConnectorStatusInfo": {"ConnectorID": "MA1FAKE01P0000101", "Status": 255}}
    ret, _msg, data = caller.call("notification_stationStatus", info)
    assert (ret, data) == (0, {"Status": 0})
    assert PartnerConnector.objects.get(connector_id="MA1FAKE01P0000101").status == "fault"
    _ret, _msg, data = caller.call("notification_stationStatus",
                                   {"ConnectorStatusInfo": {"ConnectorID": "nope", "Status": 1}})
    assert data == {"Status": 1}  # unknown: ignore, do not retry
    ret, _msg, _data = caller.call("notification_stationStatus", {})
    assert ret == 4004
