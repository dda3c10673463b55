"""POST /orders with an Idempotency-Key: a retry after a lost response gets the same order."""

from decimal import Decimal

from charging.models import ChargingOrder
from charging.tests.money import balance

ORDERS = "/api/app/v1/orders"


def _start(client, key=None, connector_code="4401060000010101"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(ORDERS, {"connector_code": connector_code}, format="json", **headers)


def test_a_retry_with_the_same_key_returns_the_same_order(member_api, funded_member, connector, tariff):
    first = _start(member_api, "start-7f3a2c")
    assert first.status_code == 202, first.json()
    again = _start(member_api, "start-7f3a2c")
    assert again.status_code == 202, again.json()
    assert again.json()["id"] == first.json()["id"] and again.json()["number"] == first.json()["number"]
    assert ChargingOrder.objects.count() == 1
    assert balance(funded_member).available == Decimal("0.00")  # held once
    # Without the key a second start is what it always was.
    assert _start(member_api).json()["code"] == "order_in_progress"
    # A new key is a new request.
    assert _start(member_api, "start-8b1d9e").json()["code"] == "order_in_progress"


def test_the_same_key_after_the_order_ended_still_returns_it(member_api, funded_member, connector, tariff):
    from charging import services

    first = _start(member_api, "k1").json()
    services.order_fail(order_id=first["id"], reason="test")
    again = _start(member_api, "k1")
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    assert again.json()["state"] == "failed"


def test_a_key_reused_for_another_connector_is_refused(member_api, funded_member, pile, connector, tariff):
    assert _start(member_api, "k2").status_code == 202
    other = pile.connectors.get(number=2)
    r = _start(member_api, "k2", connector_code=other.qr_code)
    assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_reused")


def test_a_malformed_key_is_a_400(member_api, funded_member, connector, tariff):
    r = _start(member_api, "x" * 65)
    assert (r.status_code, r.json()["code"]) == (400, "idempotency_key_invalid")
    assert ChargingOrder.objects.count() == 0


def test_keys_are_per_member(member_api, funded_member, connector, tariff, pile):
    from rest_framework.test import APIClient

    from accounts.models import Member
    from accounts.services import tokens_for
    from charging.tests.money import wallet_credit

    assert _start(member_api, "shared").status_code == 202
    other = Member.objects.create(openid="openid-other", nickname="另一位")
    wallet_credit(other, Decimal("100.00"))
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(other).access}")
    r = _start(client, "shared", connector_code=pile.connectors.get(number=2).qr_code)
    assert r.status_code == 202 and r.json()["id"] != ChargingOrder.objects.get(member=funded_member).pk
