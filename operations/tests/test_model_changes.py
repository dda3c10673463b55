"""The model-change log (模型变更记录, django-auditlog) through the operator's admin (#18):
who changed which fields of a tariff or a station, before and after; a save that changes
nothing (the same amount written 100 or 100.00) records nothing; a station owner sees
only the changes of their own stations; both halves of the audit log under 运维, in Chinese.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.roles import OPERATOR_ADMIN, STATION_OWNER, role_group
from billing.payments.models import TopUpOffer
from billing.tariffs.models import Tariff
from billing.tariffs.tests.test_tariff_admin import _form_data as tariff_form
from operations import model_changes
from stations.models import Pile, Station

HOST = "tenant-a.testserver"
CHANGES = "/admin/operations/modelchange/"


def _client(user) -> Client:
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    return client


@pytest.fixture
def ops_admin(tenant):
    user = get_user_model().objects.create_user("ops-li", password="x-pass-123", is_staff=True)
    user.groups.add(role_group(OPERATOR_ADMIN))
    return user


@pytest.fixture
def owner(tenant, station):
    user = get_user_model().objects.create_user("zhan-wang", password="x-pass-123", is_staff=True)
    user.groups.add(role_group(STATION_OWNER))
    station.owners.add(user)
    return user


def _entries(obj):
    return LogEntry.objects.get_for_object(obj).order_by("pk")


def test_a_tariff_changed_in_the_admin_is_logged_with_its_staff_and_fields(ops_admin):
    web = _client(ops_admin)
    r = web.post("/admin/billing/tariff/add/", tariff_form())
    assert r.status_code == 302, r.content.decode()[:2000]
    tariff = Tariff.objects.get(name="分时电价")
    [added] = _entries(tariff)
    assert (added.action, added.actor) == (LogEntry.Action.CREATE, ops_admin)

    r = web.post(f"/admin/billing/tariff/{tariff.pk}/change/",
                 tariff_form(name="分时电价2027", peak_electricity="1.05"))
    assert r.status_code == 302, r.content.decode()[:2000]
    changed = _entries(tariff).last()
    assert (changed.action, changed.actor, changed.remote_addr) == (
        LogEntry.Action.UPDATE, ops_admin, "127.0.0.1")
    assert set(changed.changes) == {"name", "draft"}
    rows = model_changes.rows(changed)
    assert ("名称", "分时电价", "分时电价2027") in rows
    assert ("工作副本 · prices.peak.electricity", "1.02000", "1.05000") in rows

    # The same form again: nothing changed, nothing logged.
    web.post(f"/admin/billing/tariff/{tariff.pk}/change/",
             tariff_form(name="分时电价2027", peak_electricity="1.050"))
    assert _entries(tariff).count() == 2


def test_the_same_amount_written_differently_is_no_change(ops_admin):
    offer = TopUpOffer.objects.create(pay_amount=Decimal("100.00"), bonus_amount=Decimal("10.00"))
    web = _client(ops_admin)
    url = f"/admin/billing/topupoffer/{offer.pk}/change/"
    r = web.post(url, {"pay_amount": "100", "bonus_amount": "10.0", "active": "on"})
    assert r.status_code == 302, r.content.decode()[:2000]
    offer.refresh_from_db()
    offer.bonus_amount = Decimal("10")  # and in code
    offer.save()
    assert [e.action for e in _entries(offer)] == [LogEntry.Action.CREATE]

    web.post(url, {"pay_amount": "100", "bonus_amount": "15", "active": "on"})
    changed = _entries(offer).last()
    assert changed.actor == ops_admin
    assert model_changes.rows(changed) == [("赠送金额（元）", "10.00", "15.00")]


def test_deletes_in_the_admin_are_logged_one_per_object(ops_admin):
    offers = [TopUpOffer.objects.create(pay_amount=Decimal(n), bonus_amount=Decimal(1)) for n in (50, 200)]
    r = _client(ops_admin).post("/admin/billing/topupoffer/", {
        "action": "delete_selected", "_selected_action": [o.pk for o in offers], "post": "yes"})
    assert r.status_code == 302 and not TopUpOffer.objects.exists()
    deleted = LogEntry.objects.get_for_model(TopUpOffer).filter(
        action=LogEntry.Action.DELETE, object_id__in=[o.pk for o in offers]).order_by("object_id")
    assert [(e.object_id, e.actor) for e in deleted] == [(o.pk, ops_admin) for o in offers]


def test_noise_the_piles_make_is_not_logged(tenant, station):
    pile = Pile.objects.create(station=station, code="44010600000777", rated_power_kw=Decimal("60.0"))
    pile.online = True
    pile.save(update_fields=["online", "last_seen_at", "updated_at"])
    pile.rated_power_kw = Decimal("60")
    pile.save()
    assert [e.action for e in _entries(pile)] == [LogEntry.Action.CREATE]


def test_a_station_owner_sees_the_changes_of_own_stations_only(ops_admin, owner, station):
    other = Station.objects.create(name="别人的站", code="GZ0999", address="广州", area_code="440106",
                                   latitude=Decimal("23.1"), longitude=Decimal("113.3"))
    other.name = "别人的站（改）"
    other.save()
    # The owner renames their own station in the admin.
    r = _client(owner).post(f"/admin/stations/station/{station.pk}/change/", {
        "name": "珠江新城站（东）", "address": station.address, "province": "", "city": "", "district": "",
        "area_code": station.area_code, "latitude": "23.119", "longitude": "113.321000",
        "station_type": 1, "status": 50, "opening_hours": "00:00-24:00", "phone": "",
        "parking_fee_note": "", "time_zone": "Asia/Shanghai", "facilities": "", "photos": "",
        "piles-TOTAL_FORMS": "0", "piles-INITIAL_FORMS": "0"})
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    mine = _entries(station).last()
    # Only the name: 23.119 is the latitude already stored as 23.119000.
    assert (mine.actor, set(mine.changes)) == (owner, {"name"})

    owner_view = _client(owner).get(CHANGES)
    assert owner_view.status_code == 200
    shown = {e.pk for e in owner_view.context["cl"].result_list}
    assert mine.pk in shown
    assert not shown & {e.pk for e in _entries(other)}
    hidden = _entries(other).last()
    r = _client(owner).get(f"{CHANGES}{hidden.pk}/change/")
    assert r.status_code == 302 and "别人的站" not in r.content.decode()
    # The operator's admins see every change.
    everything = {e.pk for e in _client(ops_admin).get(CHANGES).context["cl"].result_list}
    assert {mine.pk, hidden.pk} <= everything


def test_an_owner_added_to_a_station_is_logged(ops_admin, station):
    zhang = get_user_model().objects.create_user("zhang", password="x-pass-123", is_staff=True)
    station.owners.add(zhang)
    entry = _entries(station).last()
    assert model_changes.rows(entry) == [("站长", "", "新增：zhang")]


def test_both_halves_of_the_audit_log_in_chinese_and_exportable(ops_admin, station):
    from accounts import audit
    from evplatform.tests.helpers import export_form_data
    from operations.models import ModelChange

    station.name = "珠江新城站（西）"
    station.save()
    audit.record(ops_admin, "tariff.publish", station, detail="v2")
    web = _client(ops_admin)
    page = web.get(CHANGES).content.decode()
    assert "模型变更记录" in page and "修改" in page and "名称：珠江新城站 → 珠江新城站（西）" in page
    assert 'href="/admin/operations/staffaction/"' in page
    actions = web.get("/admin/operations/staffaction/").content.decode()
    assert "发布电价" in actions and f'href="{CHANGES}"' in actions
    index = web.get("/admin/").content.decode()
    section = index[index.index("app-operations"):]
    assert "模型变更记录" in section and "操作日志" in section
    entry = _entries(station).last()
    detail = web.get(f"{CHANGES}{entry.pk}/change/").content.decode()
    assert "修改前" in detail and "修改后" in detail and "珠江新城站（西）" in detail
    export = web.post(f"{CHANGES}export/", export_form_data(ModelChange))
    assert "attachment" in export["Content-Disposition"]
    text = export.content.decode("utf-8-sig")
    assert "变更内容" in text and "珠江新城站 → 珠江新城站（西）" in text
