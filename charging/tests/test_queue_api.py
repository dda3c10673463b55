"""The station queue through the driver API: join, see position and wait, get an offer
with its countdown, decline, leave."""

from __future__ import annotations

from decimal import Decimal

from charging import services
from charging.models import ChargingOrder, OrderState

from .test_scheduling import make_pile, running_order

D = Decimal


def test_queue_through_the_api(member_api, member, station):
    pile = make_pile(station)
    running_order(pile)
    assert member_api.get("/api/app/v1/queue").json()["code"] == "queue_none"
    bad = member_api.post("/api/app/v1/queue", {"station_id": station.pk, "kind": "hydrogen"},
                          format="json")
    assert bad.status_code == 400
    joined = member_api.post("/api/app/v1/queue", {"station_id": station.pk, "kind": "dc"},
                             format="json")
    assert joined.status_code == 201, joined.json()
    body = joined.json()
    assert (body["state"], body["position"], body["offer"]) == ("waiting", 1, None)
    assert body["wait_min"] == 45
    again = member_api.post("/api/app/v1/queue", {"station_id": station.pk}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "queue_exists")

    ChargingOrder.objects.filter(pile=pile).update(state=OrderState.SETTLED)
    pile.connectors.update(status="idle")
    services.queue_offer(station_id=station.pk)
    mine = member_api.get("/api/app/v1/queue").json()
    assert mine["state"] == "offered"
    assert mine["offer"]["connector_no"] == 1 and "pile" not in str(mine["offer"])
    assert 290 <= mine["expires_in_s"] <= 300
    assert member_api.get("/api/app/v1/reservations").json()["id"] == mine["offer"]["id"]

    declined = member_api.post(f"/api/app/v1/queue/{mine['id']}/decline")
    assert declined.status_code == 200 and declined.json()["state"] == "passed"
    assert member_api.get("/api/app/v1/queue").status_code == 404
    assert member_api.get("/api/app/v1/reservations").status_code == 404


def test_a_free_station_sends_the_driver_to_charge_and_leaving_works(member_api, station):
    pile = make_pile(station, status="idle")
    refused = member_api.post("/api/app/v1/queue", {"station_id": station.pk}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "connector_free")
    assert member_api.post("/api/app/v1/queue", {"station_id": 999999}, format="json").status_code == 404
    pile.connectors.update(status="charging")
    running_order(pile)
    entry = member_api.post("/api/app/v1/queue", {"station_id": station.pk}, format="json").json()
    left = member_api.post(f"/api/app/v1/queue/{entry['id']}/leave")
    assert left.json()["state"] == "cancelled"
    assert member_api.post(f"/api/app/v1/queue/{entry['id']}/leave").json()["code"] == "queue_not_open"
