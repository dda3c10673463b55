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


def test_first_pull_after_start_up_retries_until_the_partner_answers(infra, peer):
    from evplatform.tests.helpers import free_port
    from protocols.cec.tasks import StationsPullPending, partner_stations_first_pull

    url = infra.base_url
    infra.base_url = f"http://127.0.0.1:{free_port()}"  # the partner's platform not up yet
    infra.save()
    with pytest.raises(StationsPullPending):
        partner_stations_first_pull()
    assert not PartnerStation.objects.exists()
    infra.base_url = url
    infra.save()
    assert partner_stations_first_pull() == {"MA1AGGR01": 1}
    assert PartnerStation.objects.get().station_id == "FAKE001"


def test_demo_first_pull_runs_in_the_operator_schema(tenant, monkeypatch):
    """``make run``'s seed: the demo partner (the fake peer as started by the Procfile)
    pulled by the queued task, run here by an eager worker in the operator's schema."""
    from django.db import connection

    from demo.interconnect import (
        DEMO_CEC_OUR_ID,
        DEMO_CEC_PEER_ID,
        DEMO_CEC_SECRET,
        demo_partner_configure,
        demo_stations_pull_soon,
    )
    from evplatform.celery import app
    from evplatform.tests.helpers import free_port
    from fakes.cec_peer import CecPeer

    demo_peer = CecPeer(("127.0.0.1", free_port()), operator_id=DEMO_CEC_PEER_ID,
                        our_id=DEMO_CEC_OUR_ID, secret=DEMO_CEC_SECRET).start_background()
    try:
        demo_partner_configure(url=demo_peer.url)
        monkeypatch.setitem(app.conf, "task_always_eager", True)
        connection.set_schema_to_public()
        assert demo_stations_pull_soon(tenant) is True
        connection.set_tenant(tenant)
        assert list(PartnerStation.objects.values_list("partner", "station_id")) == [(DEMO_CEC_PEER_ID, "FAKE001")]
    finally:
        demo_peer.shutdown()
