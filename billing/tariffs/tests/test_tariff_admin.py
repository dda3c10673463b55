"""The tariff admin: ranges → slots, errors on the right field, versions, owners, assignment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import translation

from billing.tariffs import pricing
from billing.tariffs.forms import TariffForm, initial_from_snapshot
from billing.tariffs.models import StationTariff, Tariff, TariffVersion
from billing.tariffs.services import tariff_version_lock

P = pricing.Period


def _form_data(**overrides) -> dict:
    data = {
        "name": "分时电价",
        "description": "",
        "kind": "tou",
        "base_period": "flat",
        "ranges": "valley 00:00-08:00\npeak 10:00-12:00\n峰 14:00–19:00",
        "peak_electricity": "1.02",
        "peak_service": "0.4",
        "flat_electricity": "0.6",
        "flat_service": "0.4",
        "valley_electricity": "0.228",
        "valley_service": "0.4",
        "seasons": "",
        "special_dates": "",
        "occupancy_per_minute": "",
        "occupancy_grace_minutes": "",
        "occupancy_cap": "",
        "minimum_charge": "",
        "publish_effective_from_0": "",
        "publish_effective_from_1": "",
    }
    data.update(overrides)
    return data


def test_ranges_become_the_48_slots(tenant):
    form = TariffForm(data=_form_data())
    assert form.is_valid(), form.errors
    assert form.snapshot.slots == pricing.GUANGDONG_DEFAULT_SLOTS
    assert form.snapshot.price_of(P.VALLEY).electricity == Decimal("0.228")


def test_seasons_special_dates_occupancy_and_minimum(tenant):
    form = TariffForm(
        data=_form_data(
            sharp_electricity="1.275",
            sharp_service="0.4",
            seasons="7-9 summer | sharp 11:00-12:00, 尖 15:00-17:00",
            special_dates="2026-05-20 heat | sharp 11:00-12:00; sharp 15:00-17:00",
            occupancy_per_minute="0.5",
            occupancy_grace_minutes="15",
            occupancy_cap="30",
            minimum_charge="1",
        )
    )
    assert form.is_valid(), form.errors
    snapshot = form.snapshot
    assert snapshot.seasons[0].slots == pricing.GUANGDONG_SUMMER_SLOTS
    assert snapshot.seasons[0].months == frozenset({7, 8, 9})
    assert snapshot.slots_on(date(2026, 5, 20)) == pricing.GUANGDONG_SUMMER_SLOTS
    assert snapshot.occupancy == pricing.OccupancyFee(Decimal("0.5"), 15, Decimal("30"))
    assert snapshot.minimum_charge == Decimal("1")


def test_initial_values_round_trip_the_snapshot(tenant):
    snapshot = pricing.guangdong_tou_tariff(
        Decimal("0.6"), Decimal("0.4"), critical_peak_days=[date(2026, 5, 20)]
    )
    initial = initial_from_snapshot(snapshot.to_dict())
    data = _form_data(**{k: "" if v is None else str(v) for k, v in initial.items()})
    form = TariffForm(data=data)
    assert form.is_valid(), form.errors
    assert form.snapshot == snapshot


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"ranges": "peak 10:15-12:00"}, "ranges", "half hour"),
        ({"ranges": "rush 10:00-12:00"}, "ranges", "unknown period"),
        ({"ranges": "peak 12:00-10:00"}, "ranges", "end after"),
        ({"peak_service": ""}, "peak_service", "needs a price"),
        ({"peak_electricity": "1.000001"}, "peak_electricity", ""),
        ({"seasons": "7-13 summer | peak 11:00-12:00"}, "seasons", "month"),
        ({"seasons": "summer sharp"}, "seasons", "7-9 summer"),
        ({"special_dates": "2026-02-30 x | peak 10:00-11:00"}, "special_dates", "2026-08-01"),
        ({"occupancy_per_minute": "0.5", "occupancy_cap": "1.234"}, "occupancy_cap", ""),
        ({"kind": "flat"}, "__all__", "exactly one price"),
    ],
)
@translation.override("en")  # the fragments are the English messages
def test_validation_errors_land_on_the_field(tenant, overrides, field, fragment):
    form = TariffForm(data=_form_data(**overrides))
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert fragment in " ".join(form.errors[field])


def test_sharp_used_but_unpriced_names_the_sharp_field(tenant):
    form = TariffForm(data=_form_data(ranges="sharp 11:00-12:00"))
    assert not form.is_valid()
    assert list(form.errors) == ["sharp_electricity"]


def test_admin_add_then_publish_creates_a_version(admin_web):
    r = admin_web.post("/admin/billing/tariff/add/", _form_data())
    assert r.status_code == 302, r.content.decode()[:2000]
    tariff = Tariff.objects.get(name="分时电价")
    assert tariff.kind == "tou"
    assert tariff.versions.count() == 0

    data = _form_data(publish_effective_from_0="2099-03-01", publish_effective_from_1="00:00:00")
    r = admin_web.post(f"/admin/billing/tariff/{tariff.pk}/change/", data)
    assert r.status_code == 302
    version = tariff.versions.get()
    # Admin times are the operator's wall clock (Asia/Shanghai).
    assert version.effective_from == datetime(2099, 2, 28, 16, 0, tzinfo=UTC)
    assert version.snapshot["model_number"] == version.model_number
    assert version.created_by.username == "admin"

    page = admin_web.get(f"/admin/billing/tariff/{tariff.pk}/change/").content.decode()
    assert "tariff-bar" in page
    assert f"{version.model_number:04d}" in page
    assert "60 kW" in page  # the sample bill


def test_admin_shows_a_pricing_error_on_the_slot_field(admin_web):
    r = admin_web.post("/admin/billing/tariff/add/", _form_data(ranges="peak 10:10-11:00"))
    assert r.status_code == 200
    assert r.context["adminform"].form.errors["ranges"]
    assert not Tariff.objects.exists()


def test_locked_version_refuses_edits_and_deletion_in_the_admin(admin_web, gd_tariff):
    version = gd_tariff.versions.get()
    tariff_version_lock(version)
    url = f"/admin/billing/tariffversion/{version.pk}/"
    r = admin_web.post(
        url + "change/",
        {"effective_from_0": "2030-01-01", "effective_from_1": "00:00:00"},
    )
    version.refresh_from_db()
    assert version.effective_from == datetime(2020, 1, 1, tzinfo=UTC)
    assert admin_web.get(url + "delete/").status_code == 403
    assert admin_web.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert TariffVersion.objects.filter(pk=version.pk).exists()
    del r


def test_unlocked_version_can_be_rescheduled_in_the_admin(admin_web, gd_tariff):
    version = gd_tariff.versions.get()
    r = admin_web.post(
        f"/admin/billing/tariffversion/{version.pk}/change/",
        {"effective_from_0": "2021-01-01", "effective_from_1": "08:00:00"},
    )
    assert r.status_code == 302
    version.refresh_from_db()
    assert version.effective_from == datetime(2021, 1, 1, 0, 0, tzinfo=UTC)


def test_bulk_assign_action_with_intermediate_form(admin_web, station, gd_tariff):
    from stations.models import Station

    second = Station.objects.create(
        name="海珠站",
        code="ST0002",
        address="广州市海珠区",
        area_code="440105",
        latitude=Decimal("23.1"),
        longitude=Decimal("113.3"),
    )
    changelist = "/admin/billing/tariff/"
    base = {"action": "assign_to_stations", "_selected_action": [gd_tariff.pk]}
    r = admin_web.post(changelist, base)
    assert r.status_code == 200
    assert "海珠站" in r.content.decode()
    r = admin_web.post(changelist, {**base, "apply": "1", "stations": [station.pk, second.pk]})
    assert r.status_code == 302
    assert set(StationTariff.objects.values_list("station__code", "tariff_id")) == {
        ("ST0001", gd_tariff.pk),
        ("ST0002", gd_tariff.pk),
    }
    station.refresh_from_db()
    assert station.price_today is not None


def test_station_owner_views_own_tariffs_but_cannot_change(
    owner_web, station, gd_tariff, flat_tariff
):
    from billing.tariffs.services import station_tariff_assign

    station_tariff_assign(stations=[station], tariff=gd_tariff)
    r = owner_web.get("/admin/billing/tariff/")
    assert r.status_code == 200
    page = r.content.decode()
    assert "广东分时" in page and "统一价" not in page
    r = owner_web.get(f"/admin/billing/tariff/{gd_tariff.pk}/change/")
    assert r.status_code == 200
    assert "tariff-bar" in r.content.decode()
    before = Tariff.objects.get(pk=gd_tariff.pk).draft
    r = owner_web.post(f"/admin/billing/tariff/{gd_tariff.pk}/change/", _form_data(name="x"))
    assert r.status_code == 403
    assert Tariff.objects.get(pk=gd_tariff.pk).draft == before
    assert owner_web.get(f"/admin/billing/tariff/{flat_tariff.pk}/change/").status_code == 302
    assert owner_web.get("/admin/billing/tariff/add/").status_code == 403


def test_a_version_cannot_be_published_in_the_past(admin_web):
    admin_web.post("/admin/billing/tariff/add/", _form_data())
    tariff = Tariff.objects.get(name="分时电价")
    data = _form_data(publish_effective_from_0="2020-03-01", publish_effective_from_1="00:00:00")
    r = admin_web.post(f"/admin/billing/tariff/{tariff.pk}/change/", data)
    assert r.status_code == 200
    assert r.context["adminform"].form.errors["publish_effective_from"]
    assert not tariff.versions.exists()


def test_chinese_period_names_read_back_in_chinese(admin_web):
    form = TariffForm(data=_form_data())
    assert form.is_valid(), form.errors
    with translation.override("zh-hans"):
        initial = initial_from_snapshot(form.snapshot.to_dict())
    assert initial["ranges"].splitlines() == ["谷 00:00-08:00", "峰 10:00-12:00", "峰 14:00-19:00"]
    with translation.override("en"):
        assert initial_from_snapshot(form.snapshot.to_dict())["ranges"].startswith("valley 00:00-08:00")


def test_the_working_copy_note_follows_publishing(admin_web):
    from django.utils import timezone

    admin_web.post("/admin/billing/tariff/add/", _form_data())
    tariff = Tariff.objects.get(name="分时电价")
    url = f"/admin/billing/tariff/{tariff.pk}/change/"
    assert "工作副本与当前生效版本不同" in admin_web.get(url).content.decode() or \
        "differs from the version in force" in admin_web.get(url).content.decode()
    later = timezone.localtime(timezone.now()).replace(year=2099)
    admin_web.post(url, _form_data(publish_effective_from_0=later.strftime("%Y-%m-%d"),
                                   publish_effective_from_1="08:00:00"))
    page = admin_web.get(url).content.decode()
    assert "differs from the version in force" not in page and "工作副本与当前生效版本不同" not in page
    assert "2099-" in page and ("takes effect at" in page or "将于" in page)
    now = timezone.localtime(timezone.now())
    admin_web.post(url, _form_data(name="分时电价", publish_effective_from_0=now.strftime("%Y-%m-%d"),
                                   publish_effective_from_1=now.strftime("%H:%M:%S")))
    page = admin_web.get(url).content.decode()
    assert "is the version in force" in page or "工作副本与当前生效版本一致" in page
