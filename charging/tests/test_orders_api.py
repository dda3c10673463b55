"""POST/GET /api/app/v1/orders…, reservations: each refusal has its own code."""

from decimal import Decimal

import pytest

from accounts.models import Member
from charging.models import ChargingOrder, Reservation
from stations.models import Connector, Station

ORDERS = "/api/app/v1/orders"


def _start(client, **body):
    return client.post(ORDERS, body or {"connector_code": "4401060000010101"}, format="json")


def test_start_by_code_is_202_with_the_order(member_api, funded_member, connector, tariff):
    r = _start(member_api)
    assert r.status_code == 202, r.json()
    body = r.json()
    assert body["state"] == "starting" and "pile_code" not in body and body["connector_no"] == 1
    assert member_api.get(f"{ORDERS}/{body['id']}").json()["number"] == body["number"]
    assert member_api.get(f"{ORDERS}/current").json()["id"] == body["id"]
    assert member_api.get(ORDERS).json()["count"] == 1


@pytest.mark.parametrize("how", ["id", "qr_value"])
def test_start_by_id_and_qr_value(member_api, funded_member, connector, tariff, how):
    body = {"connector_id": connector.pk} if how == "id" else {"connector_code": connector.qr_code}
    r = _start(member_api, **body)
    assert r.status_code == 202 and r.json()["connector_id"] == connector.pk and r.json()["connector_no"] == 1


def _code(r):
    return r.status_code, r.json()["code"]


def test_start_needs_login(api, connector, tariff):
    assert _code(_start(api)) == (401, "not_authenticated")


def test_unknown_connector(member_api, funded_member, tariff):
    assert _code(_start(member_api, connector_code="nope")) == (404, "connector_not_found")


def test_missing_connector_is_validation_error(member_api, funded_member):
    assert _code(member_api.post(ORDERS, {}, format="json")) == (400, "validation_error")


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: Station.objects.update(status=Station.Status.MAINTENANCE), "station_closed"),
        (lambda c: type(c.pile).objects.update(enabled=False), "pile_disabled"),
        (lambda c: type(c.pile).objects.update(online=False), "pile_offline"),
        (lambda c: Connector.objects.filter(pk=c.pk).update(status="fault"), "connector_fault"),
        (lambda c: Connector.objects.filter(pk=c.pk).update(status="idle"), "connector_not_plugged"),
        (lambda c: Connector.objects.filter(pk=c.pk).update(status="charging"), "connector_busy"),
    ],
)
def test_refused_for_the_connector(member_api, funded_member, connector, tariff, change, expected):
    change(connector)
    status, code = _code(_start(member_api))
    assert code == expected and status == 409
    assert ChargingOrder.objects.count() == 0


def test_refused_without_tariff(member_api, funded_member, connector):
    assert _code(_start(member_api)) == (409, "tariff_missing")


def test_refused_without_balance(member_api, member, connector, tariff):
    assert _code(_start(member_api)) == (402, "insufficient_balance")
    assert ChargingOrder.objects.count() == 0


def test_refused_when_another_order_is_active(member_api, funded_member, pile, tariff):
    assert _start(member_api).status_code == 202
    r = _start(member_api, connector_code="4401060000010102")
    assert _code(r) == (409, "order_in_progress")


def test_refused_when_reserved_by_someone_else(member_api, funded_member, connector, tariff):
    from charging import services

    other = Member.objects.create(openid="other-driver")
    from charging.tests.money import wallet_credit

    wallet_credit(other, Decimal("10"))
    services.reservation_create(member=other, connector=connector)
    assert _code(_start(member_api)) == (409, "connector_reserved")


def test_disabled_member_token_is_refused(member_api, funded_member, connector, tariff):
    Member.objects.filter(pk=funded_member.pk).update(status="disabled")
    assert _code(_start(member_api)) == (401, "member_disabled")


def test_stop_and_not_stoppable(member_api, funded_member, connector, tariff):
    order_id = _start(member_api).json()["id"]
    r = member_api.post(f"{ORDERS}/{order_id}/stop")
    assert r.status_code == 202 and r.json()["state"] == "stopping"
    ChargingOrder.objects.filter(pk=order_id).update(state="settled")
    assert _code(member_api.post(f"{ORDERS}/{order_id}/stop")) == (409, "order_not_stoppable")


def test_other_members_orders_are_not_found(member_api, funded_member, connector, tariff, api):
    order_id = _start(member_api).json()["id"]
    from rest_framework.test import APIClient

    from accounts.services import tokens_for

    stranger = Member.objects.create(openid="stranger")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(stranger).access}")
    assert _code(client.get(f"{ORDERS}/{order_id}")) == (404, "not_found")
    assert _code(client.post(f"{ORDERS}/{order_id}/stop")) == (404, "not_found")


def test_no_current_order(member_api, member):
    assert _code(member_api.get(f"{ORDERS}/current")) == (404, "no_current_order")


def test_reservation_lifecycle(member_api, funded_member, connector, tariff):
    r = member_api.post("/api/app/v1/reservations", {"connector_id": connector.pk}, format="json")
    assert r.status_code == 201 and r.json()["state"] == "active"
    assert _code(member_api.post("/api/app/v1/reservations", {"connector_id": connector.pk}, format="json")) == (
        409, "reservation_exists",
    )
    # The owner of the reservation starts normally, and the reservation is used.
    assert _start(member_api).status_code == 202
    assert Reservation.objects.get().state == "used"


def test_reservation_cancel_and_expiry(member_api, funded_member, connector, tariff):
    from datetime import timedelta

    from django.utils import timezone

    from charging import services

    rid = member_api.post("/api/app/v1/reservations", {"connector_id": connector.pk}, format="json").json()["id"]
    assert member_api.post(f"/api/app/v1/reservations/{rid}/cancel").json()["state"] == "cancelled"
    assert _code(member_api.post(f"/api/app/v1/reservations/{rid}/cancel")) == (409, "reservation_not_active")
    rid = member_api.post("/api/app/v1/reservations", {"connector_id": connector.pk}, format="json").json()["id"]
    services.orders_reconcile(now=timezone.now() + timedelta(hours=1))
    assert Reservation.objects.get(pk=rid).state == "expired"
