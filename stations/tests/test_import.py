"""Importing stations, piles and connectors: the admin (preview, row errors, confirm) and
``manage.py import_assets``, 1,000 rows each way, through the registry rule."""

import io

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import tenant_context

from stations.models import Connector, Pile, Station
from tenants.models import PileRegistration

from .conftest import make_pile, make_station

ROWS = 1000


def stations_sheet(n=ROWS) -> tablib.Dataset:
    data = tablib.Dataset(headers=["code", "name", "address", "city", "area_code", "latitude", "longitude", "status", "time_zone"])
    for i in range(n):
        data.append([f"IMP{i:05d}", f"导入站 {i}", f"测试路 {i} 号", "上海市", "310101",
                     f"{31 + i / 10000:.6f}", f"{121 + i / 10000:.6f}", 50, "Asia/Shanghai"])
    return data


def piles_sheet(station_codes, n=ROWS, start=0) -> tablib.Dataset:
    data = tablib.Dataset(headers=["code", "station_code", "name", "protocol", "current_type", "rated_power_kw", "connector_count", "heartbeat_interval_s", "enabled"])
    for i in range(start, start + n):
        data.append([f"4400{i:010d}", station_codes[i % len(station_codes)], f"桩 {i}", "ykc", 1, "60.0", 2, 10, 1])
    return data


def connectors_sheet(pile_codes) -> tablib.Dataset:
    data = tablib.Dataset(headers=["pile_code", "number", "connector_type", "rated_power_kw", "rated_voltage_v", "rated_current_a", "qr_code"])
    for code in pile_codes:
        data.append([code, 1, 4, "60.0", 750, 250, ""])
    return data


def _upload(dataset: tablib.Dataset, name="sheet.xlsx") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, dataset.export("xlsx"), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _admin_import(client, model, dataset):
    """POST the file (preview, dry run); returns the preview response."""
    return client.post(f"/admin/stations/{model}/import/", {"resource": "0", "format": "0", "import_file": _upload(dataset)})


def _confirm(client, model, preview):
    form = preview.context["confirm_form"]
    return client.post(f"/admin/stations/{model}/process_import/", {**form.initial})


def test_admin_imports_1000_stations_then_1000_piles(admin_client, tenant):
    preview = _admin_import(admin_client, "station", stations_sheet())
    assert preview.status_code == 200
    result = preview.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["new"] == ROWS
    assert Station.objects.count() == 0  # a preview saves nothing
    assert _confirm(admin_client, "station", preview).status_code == 302
    assert Station.objects.count() == ROWS

    codes = [f"IMP{i:05d}" for i in range(50)]
    preview = _admin_import(admin_client, "pile", piles_sheet(codes))
    assert preview.context["result"].totals["new"] == ROWS
    assert _confirm(admin_client, "pile", preview).status_code == 302
    assert Pile.objects.count() == ROWS
    assert PileRegistration.objects.filter(operator=tenant, code__startswith="4400").count() == ROWS


def test_admin_import_shows_row_errors_and_saves_nothing(admin_client, tenant, other_tenant):
    with tenant_context(other_tenant):
        make_pile(make_station(), code="44000000000003", connectors=1)
    connection.set_tenant(tenant)
    make_station(code="IMP00000")
    sheet = piles_sheet(["IMP00000"], n=5)
    sheet.append(["44009999999999", "NOPE", "", "ykc", 1, "60", 1, 10, 1])
    preview = _admin_import(admin_client, "pile", sheet)
    assert preview.status_code == 200
    result = preview.context["result"]
    invalid = result.invalid_rows
    assert len(invalid) == 2
    messages = " ".join(str(r.error_dict) for r in invalid)
    assert "44000000000003" in messages
    assert "confirm_form" not in preview.context or preview.context["confirm_form"] is None
    assert not Pile.objects.exists()
    assert "another operator" in preview.content.decode() or "其他运营商" in preview.content.decode()


def test_admin_reimport_updates_and_code_stays_registered(admin_client, tenant):
    make_station(code="IMP00000")
    preview = _admin_import(admin_client, "pile", piles_sheet(["IMP00000"], n=3))
    _confirm(admin_client, "pile", preview)
    sheet = piles_sheet(["IMP00000"], n=3)
    sheet[0] = ["44000000000000", "IMP00000", "改名", "ykc", 1, "60.0", 2, 10, 1]
    preview = _admin_import(admin_client, "pile", sheet)
    totals = preview.context["result"].totals
    assert (totals["update"], totals["skip"]) == (1, 2)
    _confirm(admin_client, "pile", preview)
    assert Pile.objects.get(code="44000000000000").name == "改名"


def test_command_imports_1000_rows_with_a_summary(tenant, tmp_path):
    stations = tmp_path / "stations.xlsx"
    stations.write_bytes(stations_sheet().export("xlsx"))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_assets", str(stations), tenant="tenant-a", stdout=out, stderr=err)
    assert "stations: 1000 rows, created 1000, updated 0, skipped 0, errors 0; saved" in out.getvalue()
    assert "1000/1000" in err.getvalue()  # the progress bar
    piles = tmp_path / "piles.csv"
    piles.write_text(piles_sheet([f"IMP{i:05d}" for i in range(100)]).export("csv"), encoding="utf-8")
    out = io.StringIO()
    call_command("import_assets", str(piles), tenant="tenant-a", stdout=out, stderr=io.StringIO())
    assert "piles: 1000 rows, created 1000" in out.getvalue()
    connection.set_tenant(tenant)
    assert Pile.objects.count() == ROWS
    assert PileRegistration.objects.filter(operator=tenant, code__startswith="4400").count() == ROWS
    conns = tmp_path / "connectors.csv"
    conns.write_text(connectors_sheet([f"4400{i:010d}" for i in range(10)]).export("csv"), encoding="utf-8")
    out = io.StringIO()
    call_command("import_assets", str(conns), tenant="tenant-a", stdout=out, stderr=io.StringIO())
    connection.set_tenant(tenant)
    assert "connectors: 10 rows, created 10" in out.getvalue()
    assert Connector.objects.get(pile__code="44000000000003").qr_code == "4400000000000301"


def test_command_refuses_another_operators_code_and_saves_nothing(tenant, other_tenant, tmp_path):
    with tenant_context(other_tenant):
        make_pile(make_station(), code="44000000000002", connectors=1)
    connection.set_tenant(tenant)
    make_station(code="IMP00000")
    path = tmp_path / "piles.xlsx"
    path.write_bytes(piles_sheet(["IMP00000"], n=5).export("xlsx"))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 rows with errors"):
        call_command("import_assets", str(path), tenant="tenant-a", stdout=io.StringIO(), stderr=err)
    assert "row 4: code: " in err.getvalue()
    connection.set_tenant(tenant)
    assert not Pile.objects.exists()
    assert not PileRegistration.objects.filter(operator=tenant).exists()


def test_command_dry_run_saves_nothing(tenant, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(stations_sheet(20).export("csv"), encoding="utf-8")
    out = io.StringIO()
    call_command("import_assets", str(path), tenant="tenant-a", dry_run=True, stdout=out, stderr=io.StringIO())
    assert "created 20" in out.getvalue() and "nothing saved (dry run)" in out.getvalue()
    connection.set_tenant(tenant)
    assert not Station.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--tenant", "nobody"], "no operator"), (["--tenant", "tenant-a", "--kind", "piles"], "no such file")],
)
def test_command_bad_arguments(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_assets", "/nonexistent.xlsx", *args)


def test_command_unknown_headers(tenant, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(CommandError, match="fits no known sheet|不符"):
        call_command("import_assets", str(path), tenant="tenant-a")


def _chinese(dataset: tablib.Dataset, kind: str) -> tablib.Dataset:
    """The same sheet titled as the template titles it (zh-hans labels)."""
    from django.utils import translation

    from stations.resources import RESOURCES

    resource = RESOURCES[kind]()
    with translation.override("zh-hans"):
        labels = {n: resource.column_label(n) for n in resource.column_names()}
    out = tablib.Dataset(headers=[labels[h] for h in dataset.headers])
    for row in dataset:
        out.append(row)
    return out


def test_the_template_has_chinese_headers_and_explains_the_codes(admin_client, tenant):
    from openpyxl import load_workbook

    response = admin_client.get("/admin/stations/pile/import-template/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    data, notes = book.worksheets
    headers = [c.value for c in data[1]]
    assert headers[:3] == ["桩编号", "电站编号", "名称"] and "交直流类型" in headers
    explained = {row[1]: row for row in notes.iter_rows(min_row=2, values_only=True)}
    assert "1 = 直流" in explained["current_type"][4] and "ykc = 云快充 v1.6" in explained["protocol"][4]
    assert explained["code"][3] == "是"
    page = admin_client.get("/admin/stations/pile/import/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "下载导入模板" in page and "/admin/stations/pile/import-template/" in page


def test_a_station_owner_gets_no_template(tenant, django_user_model):
    from django.test import Client

    from accounts.roles import STATION_OWNER, role_group

    from .conftest import TENANT_HOST

    owner = django_user_model.objects.create_user("tpl-owner", password="x", is_staff=True)
    owner.groups.add(role_group(STATION_OWNER))
    client = Client(HTTP_HOST=TENANT_HOST)
    client.force_login(owner)
    assert client.get("/admin/stations/station/import-template/").status_code == 403


def test_chinese_headers_import_in_the_admin_and_the_command(admin_client, tenant, tmp_path):
    preview = _admin_import(admin_client, "station", _chinese(stations_sheet(5), "stations"))
    result = preview.context["result"]
    assert not result.has_errors() and not result.has_validation_errors() and result.totals["new"] == 5
    _confirm(admin_client, "station", preview)
    path = tmp_path / "桩.xlsx"
    path.write_bytes(_chinese(piles_sheet(["IMP00000"], n=3), "piles").export("xlsx"))
    out = io.StringIO()
    call_command("import_assets", str(path), tenant="tenant-a", stdout=out, stderr=io.StringIO())
    assert "piles: 3 rows, created 3" in out.getvalue()


def test_an_export_imports_back_as_it_is(admin_client, tenant):
    make_station(code="RT0001")
    response = admin_client.post("/admin/stations/station/export/", {
        "format": "0", "resource": "0", **{f"stationresource_{f}": "on" for f in (
            "code", "name", "address", "province", "city", "district", "area_code", "latitude", "longitude",
            "station_type", "status", "opening_hours", "phone", "parking_fee_note", "time_zone")},
    }, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    sheet = tablib.Dataset().load(response.content, format="xlsx")
    assert sheet.headers[0] == "电站编号"
    preview = _admin_import(admin_client, "station", sheet)
    assert preview.context["result"].totals["skip"] == 1  # unchanged, matched by its code


def test_row_errors_read_as_words(admin_client, tenant):
    make_station(code="IMP00000")
    sheet = piles_sheet(["IMP00000"], n=2)
    sheet.append(["44009999999998", "IMP00000", "坏行", "ykc", 1, "六十", 2, 10, 1])
    sheet.append(["44009999999997", "NOPE", "坏站", "ykc", 1, "60", 2, 10, 1])
    page = _admin_import(admin_client, "pile", sheet).content.decode()
    assert "请填写数字，而不是“六十”。" in page and "不存在编号为 NOPE 的充电站。" in page
    assert "以下行的数据不符合要求" in page and "<strong>额定功率（kW）</strong>" in page
    for technical in ("Traceback", "InvalidOperation", "ValueError", "DoesNotExist", "decimal."):
        assert technical not in page
    assert not Pile.objects.filter(code__startswith="440099").exists()
