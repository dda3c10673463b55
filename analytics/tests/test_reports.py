"""Report pages: ranges, filters, XLSX export, station owners scoped to their stations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from django.test import Client

from analytics import services
from analytics.tests.test_aggregates import DAY, _order

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def estate(tenant, connector, member):
    from stations.models import Connector, Pile, Station

    other = Station.objects.create(name="体育中心站", code="GZ0002", address="广州市天河区", area_code="440106",
                                   latitude=Decimal("23.13"), longitude=Decimal("113.32"))
    pile = Pile.objects.create(station=other, code="44010600000202", rated_power_kw=Decimal("60"), online=True,
                               connector_count=1)
    other_connector = Connector.objects.create(pile=pile, number=1, rated_power_kw=Decimal("60"), qr_code="qr-202")
    at = datetime(2026, 3, 10, 3, tzinfo=UTC)
    _order(connector, member, 1, stopped=at)
    _order(other_connector, None, 2, stopped=at, elec="20.00", service="10.00", discount="0.00")
    services.stats_day_rebuild(day=DAY)
    return connector.pile.station, other


def _client(django_user_model, *, owner_of=None):
    from accounts.roles import OPERATOR_ADMIN, STATION_OWNER, role_group

    user = django_user_model.objects.create_user("boss" if owner_of is None else "owner", password="x",
                                                 is_staff=True)
    user.groups.add(role_group(OPERATOR_ADMIN if owner_of is None else STATION_OWNER))
    if owner_of is not None:
        owner_of.owners.add(user)
    client = Client()
    client.force_login(user)
    return client


def test_revenue_report_and_xlsx(estate, django_user_model):
    from openpyxl import load_workbook

    client = _client(django_user_model)
    response = client.get("/reports/", {"kind": "revenue", "from": "2026-03-10", "to": "2026-03-10"}, **HOST)
    assert response.status_code == 200
    assert [r[1] for r in response.context["rows"]] == ["体育中心站", "珠江新城站"]
    assert response.context["rows"][0][-1] == Decimal("30.00")
    response = client.get("/reports/", {"kind": "revenue", "from": "2026-03-10", "to": "2026-03-10",
                                        "station": estate[0].pk, "format": "xlsx"}, **HOST)
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(BytesIO(response.content)).active
    values = list(sheet.values)
    assert len(values) == 2 and values[1][1] == "珠江新城站" and values[1][-1] == 11


def test_owner_sees_only_own_stations(estate, django_user_model):
    client = _client(django_user_model, owner_of=estate[1])
    response = client.get("/reports/", {"kind": "charging", "from": "2026-03-10", "to": "2026-03-10"}, **HOST)
    assert [r[1] for r in response.context["rows"]] == ["体育中心站"]
    # naming another's station filters to nothing rather than showing it
    response = client.get("/reports/", {"kind": "charging", "from": "2026-03-10", "to": "2026-03-10",
                                        "station": estate[0].pk}, **HOST)
    assert response.context["rows"] == []


@pytest.mark.parametrize("query", [
    {"from": "2026-13-01"}, {"from": "2026-03-10", "to": "2026-03-01"}, {"from": "2024-01-01", "to": "2026-01-01"},
    {"kind": "nope"}, {"station": "x"},
])
def test_bad_input_is_a_400_with_a_reason(estate, django_user_model, query):
    response = _client(django_user_model).get("/reports/", query, **HOST)
    assert response.status_code == 400 and response.context["error"]


def test_members_report(estate, django_user_model):
    response = _client(django_user_model).get("/reports/", {"kind": "members", "from": "2026-03-10",
                                                            "to": "2026-03-10"}, **HOST)
    assert response.context["rows"][0][2] == 1  # one active member


def test_reports_need_login(tenant):
    response = Client().get("/reports/", **HOST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_long_reports_come_in_pages_and_the_xlsx_holds_every_row(estate, django_user_model):
    from openpyxl import load_workbook

    from analytics.models import MemberDay
    from analytics.views import ROWS_PER_PAGE

    MemberDay.objects.all().delete()
    MemberDay.objects.bulk_create(MemberDay(day=date(2026, 1, 1) + timedelta(days=i)) for i in range(181))
    client = _client(django_user_model)
    query = {"kind": "members", "from": "2026-01-01", "to": "2026-06-30"}  # one row a day: 181
    first = client.get("/reports/", query, **HOST)
    assert len(first.context["rows"]) == ROWS_PER_PAGE and first.context["row_count"] == 181
    assert "共 181 行，第 1 / 2 页" in first.content.decode()
    second = client.get("/reports/", {**query, "page": 2}, **HOST)
    assert len(second.context["rows"]) == 181 - ROWS_PER_PAGE
    assert second.context["rows"][-1][0] == date(2026, 6, 30)
    beyond = client.get("/reports/", {**query, "page": "x"}, **HOST)  # a bad page is the first
    assert beyond.status_code == 200 and beyond.context["rows"][0][0] == date(2026, 1, 1)
    sheet = load_workbook(BytesIO(client.get("/reports/", {**query, "format": "xlsx"}, **HOST).content)).active
    assert sheet.max_row == 1 + 181
