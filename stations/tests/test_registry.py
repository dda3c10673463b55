"""The public pile registry stays in step with piles, across operators."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import translation
from django_tenants.utils import tenant_context

from stations import services
from stations.models import Pile
from tenants.models import PileRegistration

from .conftest import make_pile, make_station

CODE = "32010600000001"


def _registered(code):
    return list(PileRegistration.objects.filter(code=code).values_list("operator__slug", flat=True))


def test_create_registers_the_code(tenant):
    make_pile(make_station(), code=CODE)
    assert _registered(CODE) == ["tenant-a"]


@translation.override("en")
def test_code_of_another_operator_is_refused(tenant, other_tenant):
    with tenant_context(other_tenant):
        make_pile(make_station(), code=CODE)
    connection.set_tenant(tenant)
    station = make_station()
    with pytest.raises(ValidationError) as exc:
        services.pile_create(station=station, code=CODE, rated_power_kw=Decimal("60"))
    assert "another operator" in str(exc.value.message_dict["code"])
    assert not Pile.objects.filter(code=CODE).exists()
    assert _registered(CODE) == ["tenant-b"]


def test_model_validation_reports_the_taken_code(tenant, other_tenant):
    with tenant_context(other_tenant):
        make_pile(make_station(), code=CODE)
    connection.set_tenant(tenant)
    pile = Pile(station=make_station(), code=CODE, rated_power_kw=Decimal("7"))
    with pytest.raises(ValidationError) as exc:
        pile.full_clean()
    assert list(exc.value.message_dict) == ["code"]


def test_code_change_moves_the_registration(tenant):
    pile = make_pile(make_station(), code=CODE)
    pile.code = "32010600000002"
    services.pile_save(pile=pile)
    assert _registered(CODE) == []
    assert _registered("32010600000002") == ["tenant-a"]


def test_code_change_to_a_taken_code_changes_nothing(tenant, other_tenant):
    with tenant_context(other_tenant):
        make_pile(make_station(), code="32010600000009")
    connection.set_tenant(tenant)
    pile = make_pile(make_station(), code=CODE)
    pile.code = "32010600000009"
    with pytest.raises(ValidationError):
        services.pile_save(pile=pile)
    assert Pile.objects.get(pk=pile.pk).code == CODE
    assert _registered(CODE) == ["tenant-a"]
    assert _registered("32010600000009") == ["tenant-b"]


def test_delete_releases_the_code_for_any_operator(tenant, other_tenant):
    pile = make_pile(make_station(), code=CODE)
    services.pile_delete(pile=pile)
    assert _registered(CODE) == []
    assert not Pile.objects.filter(code=CODE).exists()
    with tenant_context(other_tenant):
        make_pile(make_station(), code=CODE)
    assert _registered(CODE) == ["tenant-b"]


def test_bad_code_is_a_validation_error(tenant):
    with pytest.raises(ValidationError) as exc:
        services.pile_create(station=make_station(), code="12AB", rated_power_kw=Decimal("7"))
    assert "code" in exc.value.message_dict
    assert _registered("12AB") == []


def _pile_form(station, code, **extra):
    return {
        "station": station.pk,
        "code": code,
        "name": "",
        "protocol": "ykc",
        "current_type": 1,
        "rated_power_kw": "60",
        "connector_count": 1,
        "heartbeat_interval_s": 10,
        "enabled": "on",
        "connectors-TOTAL_FORMS": "1",
        "connectors-INITIAL_FORMS": "0",
        "connectors-0-number": "1",
        "connectors-0-connector_type": "4",
        "connectors-0-rated_power_kw": "60",
        "connectors-0-rated_voltage_v": "750",
        "connectors-0-rated_current_a": "250",
        "connectors-0-qr_code": "",
        "faults-TOTAL_FORMS": "0",
        "faults-INITIAL_FORMS": "0",
        **extra,
    }


def test_admin_add_pile_registers_and_fills_qr_code(admin_client, tenant):
    station = make_station()
    r = admin_client.post("/admin/stations/pile/add/", _pile_form(station, CODE))
    assert r.status_code == 302, r.content.decode()[:2000]
    pile = Pile.objects.get(code=CODE)
    assert pile.connectors.get().qr_code == CODE + "01"
    assert _registered(CODE) == ["tenant-a"]


def test_admin_add_pile_with_another_operators_code_shows_the_error(admin_client, tenant, other_tenant):
    with tenant_context(other_tenant):
        make_pile(make_station(), code=CODE)
    connection.set_tenant(tenant)
    station = make_station()
    r = admin_client.post("/admin/stations/pile/add/", _pile_form(station, CODE))
    assert r.status_code == 200
    assert "another operator" in r.content.decode() or "其他运营商" in r.content.decode()
    assert not Pile.objects.filter(code=CODE).exists()


def test_admin_code_change_and_delete_keep_registry_in_step(admin_client, tenant):
    pile = make_pile(make_station(), code=CODE, connectors=0)
    form = _pile_form(pile.station, "32010600000003", **{"connectors-TOTAL_FORMS": "0"})
    r = admin_client.post(f"/admin/stations/pile/{pile.pk}/change/", form)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert _registered(CODE) == []
    assert _registered("32010600000003") == ["tenant-a"]
    r = admin_client.post(f"/admin/stations/pile/{pile.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert _registered("32010600000003") == []


def test_admin_bulk_delete_releases_every_code(admin_client, tenant):
    piles = [make_pile(make_station(), connectors=1) for _ in range(3)]
    r = admin_client.post(
        "/admin/stations/pile/",
        {"action": "delete_selected", "_selected_action": [p.pk for p in piles], "post": "yes"},
    )
    assert r.status_code == 302
    assert not PileRegistration.objects.filter(code__in=[p.code for p in piles]).exists()
