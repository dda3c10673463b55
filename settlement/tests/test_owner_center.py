"""The station-owner center API: an owner member sees their stations, figures, orders,
statements and faults — and only theirs; anyone else is refused."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Member
from accounts.services import tokens_for
from charging.tests.test_order_admin import _settled
from settlement import splits, statements
from settlement.models import OwnerContract, SplitShare
from stations.models import Fault, Station

D = Decimal
BASE = "/api/app/v1/owner"


def _client(member):
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens_for(member).access}")


@pytest.fixture
def owner_member(tenant, owner, station):
    station.owners.add(owner)
    member = Member.objects.create(openid="openid-owner-li", nickname="李站长")
    OwnerContract.objects.create(owner=owner, member=member)
    splits.split_rule_create(
        station_id=station.pk, effective_from=timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    return member


def test_owner_sees_own_figures(owner_member, owner, funded_member, connector, tariff):
    order = _settled(funded_member, connector)
    Fault.objects.create(pile=connector.pile, source="pile", code="E01", description="过温",
                         started_at=timezone.now())
    api = _client(owner_member)
    body = api.get(f"{BASE}/overview").json()
    assert body["today"] == {"orders": 1, "energy_kwh": "10.0000", "earnings": "2.00"}
    assert body["payable"] == "2.00" and body["not_yet_on_a_statement"] == "2.00"
    stations = api.get(f"{BASE}/stations").json()
    assert [s["name"] for s in stations] == ["珠江新城站"]
    assert {c["id"] for c in stations[0]["connectors"]} == {c.pk for c in connector.pile.connectors.all()}
    pile = connector.pile
    for path in ("stations", "faults", "orders", "overview"):  # the owner never sees a pile's code
        text = api.get(f"{BASE}/{path}").content.decode()
        assert pile.code not in text and connector.code not in text, path
    orders = api.get(f"{BASE}/orders").json()["results"]
    assert [(o["order_ref"], o["my_share"]) for o in orders] == [(order.number, "2.00")]
    end = timezone.now()
    statement = statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)
    listed = api.get(f"{BASE}/statements").json()["results"]
    assert [s["number"] for s in listed] == [statement.number] and listed[0]["net"] == "2.00"
    assert api.get(f"{BASE}/statements/{statement.pk}").status_code == 200
    assert [f["code"] for f in api.get(f"{BASE}/faults").json()["results"]] == ["E01"]


def test_other_owner_sees_nothing_of_it(owner_member, owner, owner2, funded_member, connector, tariff):
    _settled(funded_member, connector)
    end = timezone.now()
    statement = statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)
    Station.objects.create(name="别人的站", code="GZ0002", address="-", area_code="440106",
                           latitude=D("23.1"), longitude=D("113.3")).owners.add(owner2)
    other = Member.objects.create(openid="openid-owner-wang")
    OwnerContract.objects.create(owner=owner2, member=other)
    api = _client(other)
    assert api.get(f"{BASE}/overview").json()["payable"] == "0.00"
    assert [s["name"] for s in api.get(f"{BASE}/stations").json()] == ["别人的站"]
    assert api.get(f"{BASE}/orders").json()["results"] == []
    assert api.get(f"{BASE}/statements").json()["results"] == []
    assert api.get(f"{BASE}/statements/{statement.pk}").status_code == 404
    assert api.get(f"{BASE}/faults").json()["results"] == []


@pytest.mark.parametrize("path", ["overview", "stations", "orders", "statements", "faults"])
def test_members_who_are_not_owners_are_refused(member_api, path):
    r = member_api.get(f"{BASE}/{path}")
    assert r.status_code == 403 and r.json()["code"] == "not_station_owner"


def test_anonymous_is_refused(api):
    assert api.get(f"{BASE}/overview").status_code in (401, 403)
