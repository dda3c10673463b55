"""Printable QR labels: one per connector, plain QR codes or mini-program codes."""

import re

import pytest
from django.db import connection

from stations.labels import LABELS_PER_PAGE, LabelError, labels_pdf, qr_link
from stations.models import Connector, OperatorSettings

from .conftest import make_pile, make_station


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page[^s]", pdf))


def _images(pdf: bytes) -> int:
    return len(re.findall(rb"/Subtype /Image", pdf))


def _connectors():
    return Connector.objects.select_related("pile__station").order_by("pile__code", "number")


def test_one_label_per_connector_over_pages(tenant):
    station = make_station(name="标签站")
    for _ in range(7):
        make_pile(station, connectors=2)
    pdf = labels_pdf(_connectors())
    assert pdf.startswith(b"%PDF")
    assert _pages(pdf) == 2  # 14 labels, 12 a page
    assert _images(pdf) == 14
    assert LABELS_PER_PAGE == 12


def test_default_link_names_the_operator_host_and_connector_code(tenant):
    pile = make_pile(make_station(), code="32000000000001", connectors=1)
    c = pile.connectors.get()
    assert qr_link(c, OperatorSettings.load(), "tenant-a.testserver") == (
        "https://tenant-a.testserver/q/3200000000000101"
    )
    row = OperatorSettings.load()
    row.qr_link_template = "https://ev.example.com/scan?c={code}"
    row.save()
    assert qr_link(c, row, "x") == "https://ev.example.com/scan?c=3200000000000101"


def test_empty_selection_gives_a_one_page_pdf(tenant):
    pdf = labels_pdf(Connector.objects.none())
    assert _pages(pdf) == 1 and _images(pdf) == 0


def test_mini_program_codes_from_wechat(tenant, fake_wechat):
    row = OperatorSettings.load()
    row.use_wxacode = True
    row.save()
    make_pile(make_station(), connectors=3)
    pdf = labels_pdf(_connectors())
    assert _pages(pdf) == 1 and _images(pdf) == 3


def test_mini_program_code_failure_is_a_label_error(tenant, fake_wechat):
    row = OperatorSettings.load()
    row.use_wxacode = True
    row.wxacode_page = "/pages/bad"  # WeChat refuses a page starting with "/"
    row.save()
    make_pile(make_station(), connectors=1)
    with pytest.raises(LabelError):
        labels_pdf(_connectors())


def test_admin_station_action_prints_every_connector_of_the_station(admin_client, tenant):
    s1, s2 = make_station(name="一号站"), make_station(name="二号站")
    make_pile(s1, connectors=2)
    make_pile(s1, connectors=1)
    make_pile(s2, connectors=4)
    r = admin_client.post("/admin/stations/station/", {"action": "print_qr_labels", "_selected_action": [s1.pk]})
    assert r["Content-Type"] == "application/pdf"
    assert _images(r.content) == 3
    assert connection.schema_name == "op_tenant_a"


def test_admin_action_reports_wechat_failure(admin_client, tenant, fake_wechat):
    row = OperatorSettings.load()
    row.use_wxacode = True
    row.wxacode_page = "/bad"
    row.save()
    pile = make_pile(make_station(), connectors=1)
    r = admin_client.post(
        "/admin/stations/connector/",
        {"action": "print_qr_labels", "_selected_action": [pile.connectors.get().pk]},
    )
    assert r.status_code == 302  # back to the list with an error message
