"""The settlement admin: split rules with a worked example (never edited: each save is a new
version), statements confirmed, exported, paid offline; station owners see only their own."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.roles import STATION_OWNER, role_group, roles_sync
from charging.tests.test_order_admin import _settled
from settlement import splits, statements
from settlement.models import SplitRule, SplitShare, Statement
from settlement.services import owner_account

D = Decimal
HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff_client(tenant, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner, station):
    roles_sync()
    owner.groups.add(role_group(STATION_OWNER))
    station.owners.add(owner)
    client = Client()
    client.force_login(owner)
    return client


def _rule_post(station, owner, **extra):
    data = {
        "station": station.pk, "pile": "", "effective_from_0": "2026-01-01",
        "effective_from_1": "00:00:00", "base": "service", "fee_bearer": "operator",
        "payment_fee_percent": "0.60", "discounts_reduce_base": "on", "note": "合作协议",
        "shares-TOTAL_FORMS": "1", "shares-INITIAL_FORMS": "0", "shares-MIN_NUM_FORMS": "0",
        "shares-MAX_NUM_FORMS": "1000", "shares-0-owner": owner.pk, "shares-0-kind": "percent",
        "shares-0-value": "40",
    }
    data.update(extra)
    return data


def test_rule_added_with_worked_example_and_versions(staff_client, station, owner, tenant):
    r = staff_client.post("/admin/settlement/splitrule/add/", _rule_post(station, owner), **HOST)
    assert r.status_code == 302, r.content.decode()[:2000]
    rule = SplitRule.objects.get()
    assert rule.version == 1 and rule.created_by.username == "ops-admin"
    assert list(rule.shares.values_list("owner_id", "value")) == [(owner.pk, D("40.00000"))]
    page = staff_client.get(f"/admin/settlement/splitrule/{rule.pk}/change/", **HOST).content.decode()
    # 40 kWh, service 24.00 − discount 2.00 = 22.00; owner 40 % = 8.80; operator 13.20.
    assert "¥22.00" in page and "¥8.80" in page and "¥13.20" in page
    staff_client.post("/admin/settlement/splitrule/add/", _rule_post(station, owner, **{"shares-0-value": "45"}), **HOST)
    assert list(SplitRule.objects.order_by("version").values_list("version", flat=True)) == [1, 2]


def test_rule_over_100_percent_is_refused(staff_client, station, owner, tenant):
    r = staff_client.post("/admin/settlement/splitrule/add/", _rule_post(station, owner, **{"shares-0-value": "100.5"}), **HOST)
    assert r.status_code == 200 and not SplitRule.objects.exists()


def _statement(owner):
    end = timezone.now()
    return statements.statement_build(owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end)


@pytest.fixture
def built(station, owner, funded_member, connector, tariff):
    splits.split_rule_create(
        station_id=station.pk, effective_from=timezone.now() - timedelta(days=1),
        shares=[splits.ShareInput(owner.pk, SplitShare.Kind.PERCENT, D("40"))],
    )
    _settled(funded_member, connector)
    return _statement(owner)


def test_confirm_export_and_pay_offline(staff_client, built, owner):
    r = staff_client.post("/admin/settlement/statement/",
                          {"action": "confirm", "_selected_action": [built.pk]}, **HOST)
    assert r.status_code == 302
    assert Statement.objects.get(pk=built.pk).status == Statement.Status.CONFIRMED
    xlsx = staff_client.get(f"/admin/settlement/statement/{built.pk}/export/xlsx/", **HOST)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx.content))
    values = [row for row in book.worksheets[0].iter_rows(values_only=True)]
    assert values[-1][1] == "2.00"  # the net payable, last on the summary (either language)
    assert len(list(book.worksheets[1].iter_rows())) == 2  # headers and the order's share
    pdf = staff_client.get(f"/admin/settlement/statement/{built.pk}/export/pdf/", **HOST)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    page = staff_client.get(f"/admin/settlement/statement/{built.pk}/change/", **HOST).content.decode()
    assert f"/admin/settlement/statement/{built.pk}/pay-offline/" in page
    url = f"/admin/settlement/statement/{built.pk}/pay-offline/"
    assert staff_client.get(url, **HOST).status_code == 200
    r = staff_client.post(url, {"reference": "ICBC-001"}, **HOST)
    assert r.status_code == 302
    assert Statement.objects.get(pk=built.pk).status == Statement.Status.PAID
    assert owner_account(owner.pk).balance == D("0.00")


def test_owner_sees_only_own_statements_and_cannot_settle(owner_client, built, owner, owner2):
    other = Statement.objects.create(number="STX", owner=owner2, period_start=timezone.now(),
                                     period_end=timezone.now())
    page = owner_client.get("/admin/settlement/statement/", **HOST).content.decode()
    assert built.number in page and "STX" not in page
    assert owner_client.get(f"/admin/settlement/statement/{other.pk}/export/pdf/", **HOST).status_code == 404
    assert owner_client.get(f"/admin/settlement/statement/{built.pk}/export/xlsx/", **HOST).status_code == 200
    # No settle permission: the action is not offered and the offline payment is refused.
    owner_client.post("/admin/settlement/statement/", {"action": "confirm", "_selected_action": [built.pk]}, **HOST)
    assert Statement.objects.get(pk=built.pk).status == Statement.Status.DRAFT
    r = owner_client.post(f"/admin/settlement/statement/{built.pk}/pay-offline/", {"reference": "x"}, **HOST)
    assert r.status_code == 403
    assert Statement.objects.get(pk=built.pk).status == Statement.Status.DRAFT


def test_a_statement_export_needs_the_export_permission(owner_client, built, owner):
    from django.contrib.auth.models import Permission

    url = f"/admin/settlement/statement/{built.pk}/export/xlsx/"
    assert owner_client.get(url, **HOST).status_code == 200
    # The same owner holding only the view permission (no export_statement): refused.
    owner.groups.clear()
    owner.user_permissions.add(Permission.objects.get(codename="view_statement"))
    owner_client.force_login(type(owner).objects.get(pk=owner.pk))
    assert owner_client.get("/admin/settlement/statement/", **HOST).status_code == 200
    assert owner_client.get(url, **HOST).status_code == 403
