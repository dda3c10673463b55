"""A station owner (站长) sees and edits only their own stations and what hangs off them;
operator admins see everything."""

import pytest
from django.db import connection

from stations.models import Connector, Fault, Pile, Station
from stations.resources import CONNECTOR_FIELDS, PILE_FIELDS, STATION_FIELDS

from .conftest import make_station

A = "/admin/stations"


@pytest.fixture
def faults(estate):
    from django.utils import timezone

    return {
        key: Fault.objects.create(
            pile=estate[f"{key}_pile"], source="pile", code=f"E-{key}", started_at=timezone.now()
        )
        for key in ("own", "other")
    }


def _objects(estate, faults, key):
    pile = estate[f"{key}_pile"]
    return {
        "station": estate[key],
        "pile": pile,
        "connector": pile.connectors.get(number=1),
        "fault": faults[key],
    }


@pytest.mark.parametrize("model", ["station", "pile", "connector", "fault"])
def test_owner_list_shows_only_own(owner_client, estate, faults, model):
    own = _objects(estate, faults, "own")[model]
    other = _objects(estate, faults, "other")[model]
    r = owner_client.get(f"{A}/{model}/")
    assert r.status_code == 200
    shown = {obj.pk for obj in r.context["cl"].result_list}
    assert own.pk in shown
    assert other.pk not in shown


@pytest.mark.parametrize("model", ["station", "pile", "connector", "fault"])
def test_owner_detail_of_own_is_200_and_others_is_404(owner_client, estate, faults, model):
    own = _objects(estate, faults, "own")[model]
    other = _objects(estate, faults, "other")[model]
    assert owner_client.get(f"{A}/{model}/{own.pk}/change/").status_code == 200
    for suffix in ("change/", "history/", "delete/"):
        assert owner_client.get(f"{A}/{model}/{other.pk}/{suffix}").status_code in (403, 404)


def test_owner_cannot_post_changes_to_another_station(owner_client, estate):
    other = estate["other"]
    r = owner_client.post(f"{A}/station/{other.pk}/change/", {"name": "hijacked"})
    assert r.status_code == 404
    other.refresh_from_db()
    assert other.name == "别人的站"


def test_owner_edits_own_station_but_not_its_owners(owner_client, estate, station_owner):
    own = estate["own"]
    r = owner_client.get(f"{A}/station/{own.pk}/change/")
    assert "owners" not in r.context["adminform"].form.fields
    data = {
        "name": "改名站", "address": own.address, "province": "", "city": own.city, "district": "",
        "area_code": own.area_code, "latitude": "31.230000", "longitude": "121.470000",
        "station_type": 1, "status": 50, "opening_hours": "00:00-24:00", "phone": "",
        "parking_fee_note": "", "time_zone": "Asia/Shanghai",
        # lists are typed one per line (or 、-separated), not as JSON
        "facilities": "卫生间\n便利店、休息室", "photos": "https://example.com/a.jpg",
        # the read-only piles inline's management form, as the browser sends it
        "piles-TOTAL_FORMS": "1", "piles-INITIAL_FORMS": "1",
    }
    r = owner_client.post(f"{A}/station/{own.pk}/change/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    own.refresh_from_db()
    assert own.name == "改名站"
    assert own.facilities == ["卫生间", "便利店", "休息室"]
    assert own.photos == ["https://example.com/a.jpg"]
    assert list(own.owners.all()) == [station_owner]
    data["photos"] = "not a url"
    r = owner_client.post(f"{A}/station/{own.pk}/change/", data)
    assert r.status_code == 200 and "photos" in r.context["adminform"].form.errors


def test_owner_pile_form_offers_only_own_stations(owner_client, estate):
    r = owner_client.get(f"{A}/pile/{estate['own_pile'].pk}/change/")
    choices = set(r.context["adminform"].form.fields["station"].queryset)
    assert choices == {estate["own"]}


def test_owner_cannot_add_or_import(owner_client, estate):
    assert owner_client.get(f"{A}/station/add/").status_code == 403
    assert owner_client.get(f"{A}/pile/import/").status_code == 403


def _export_form(resource: str, fields) -> dict:
    data = {"format": "1", "resource": "0"}  # formats: XLSX, CSV
    data.update({f"{resource}_{f}": "on" for f in fields})
    return data


@pytest.mark.parametrize(
    ("model", "resource", "fields", "own_key", "other_key"),
    [
        ("station", "stationresource", STATION_FIELDS, "own", "other"),
        ("pile", "pileresource", PILE_FIELDS, "own_pile", "other_pile"),
        ("connector", "connectorresource", CONNECTOR_FIELDS, "own_pile", "other_pile"),
    ],
)
def test_owner_export_contains_only_own(owner_client, estate, model, resource, fields, own_key, other_key):
    r = owner_client.post(f"{A}/{model}/export/", _export_form(resource, fields))
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    assert estate[own_key].code in text
    assert estate[other_key].code not in text


def test_owner_export_action_with_anothers_ids_exports_nothing_of_theirs(owner_client, estate):
    data = _export_form("stationresource", STATION_FIELDS)
    data["export_items"] = [estate["other"].pk, estate["own"].pk]
    r = owner_client.post(f"{A}/station/export/", data)
    text = r.content.decode("utf-8-sig")
    assert estate["other"].code not in text


def test_owner_qr_labels_action_ignores_others(owner_client, estate):
    r = owner_client.post(
        f"{A}/connector/",
        {"action": "print_qr_labels", "_selected_action": list(Connector.objects.values_list("pk", flat=True))},
    )
    assert r["Content-Type"] == "application/pdf"
    assert r.content.count(b"/Type /Page\n") + r.content.count(b"/Type /Page ") >= 1
    assert estate["other_pile"].code.encode() not in r.content


def test_operator_admin_sees_everything(admin_client, estate, faults):
    for model, count in (("station", 2), ("pile", 2), ("connector", 4), ("fault", 2)):
        r = admin_client.get(f"{A}/{model}/")
        assert len(r.context["cl"].result_list) == count
    assert admin_client.get(f"{A}/station/{estate['other'].pk}/change/").status_code == 200


def test_connector_list_shows_live_columns(admin_client, estate):
    from datetime import UTC, datetime

    from stations import live

    pile = estate["own_pile"]
    live.connector_update(connection.schema_name, pile.code, 1, status="charging", power_kw="42.5",
                          soc_percent=55, updated=datetime.now(UTC).isoformat())
    r = admin_client.get(f"{A}/connector/")
    html = r.content.decode()
    assert "42.5" in html and "55" in html
    assert admin_client.get(f"{A}/pile/").status_code == 200
    assert admin_client.get(f"{A}/station/?q=自家").status_code == 200


def test_station_owner_without_stations_sees_nothing(tenant, estate):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.roles import STATION_OWNER, role_group

    user = get_user_model().objects.create_user(username="lonely", password="x" * 12, is_staff=True)
    user.groups.add(role_group(STATION_OWNER))
    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(user)
    assert list(client.get(f"{A}/station/").context["cl"].result_list) == []
    assert client.get(f"{A}/pile/{estate['own_pile'].pk}/change/").status_code == 404
    assert Station.objects.count() == 2 and Pile.objects.count() == 2
    make_station()  # unrelated new stations stay invisible too
    assert list(client.get(f"{A}/station/").context["cl"].result_list) == []
