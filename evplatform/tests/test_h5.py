"""The drivers' H5 app at /m/: one build, each operator's branding injected; assets, logo,
and what happens before the app is built. (The app itself in a browser:
demo/tests/test_h5_journey.py.)"""

import json
import re

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client

INDEX = """<!DOCTYPE html>
<html lang="zh-CN">
  <head>
    <title>充电</title>
    <!--evp-config-->
    <script type="module" crossorigin src="/m/assets/index-abc.js"></script>
  </head>
  <body><div id="app"></div></body>
</html>
"""


@pytest.fixture
def build(tmp_path, settings):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX, encoding="utf-8")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log('充电')", encoding="utf-8")
    settings.MINIPROGRAM_H5_DIR = tmp_path
    return tmp_path


def injected(response) -> dict:
    match = re.search(r"window\.__EVP__ = (\{.*?\});</script>", response.content.decode())
    assert match, response.content.decode()
    return json.loads(match.group(1))


def host(operator) -> Client:
    return Client(HTTP_HOST=operator.domains.first().domain)


def test_each_operator_gets_its_own_branding_from_one_build(build, operators, db):
    a, b = operators["tenant-a"], operators["tenant-b"]
    b.brand_color = "#D4380D"
    b.save(update_fields=["brand_color"])

    ra, rb = host(a).get("/m/"), host(b).get("/m/")
    assert ra.status_code == rb.status_code == 200
    assert ra["Cache-Control"] == "no-cache"
    ca, cb = injected(ra), injected(rb)
    assert (ca["tenant"], ca["name"], ca["themeColor"]) == ("tenant-a", "测试运营商 A", "#1AAD6B")
    assert (cb["tenant"], cb["themeColor"]) == ("tenant-b", "#D4380D")
    assert "<title>测试运营商 A</title>" in ra.content.decode()
    assert '<meta name="theme-color" content="#D4380D">' in rb.content.decode()
    assert ca["apiBase"] == "" and ca["logo"] == ""
    # Development: log in through the fake WeChat, pay in the fake WeChat Pay.
    assert ca["devLogin"] is True and ca["fakePayUrl"]


def test_production_has_no_development_login_or_fake_pay(build, operators, db, settings):
    settings.MINIPROGRAM_H5_DEV_TOOLS = False
    config = injected(host(operators["tenant-a"]).get("/m/"))
    assert config["devLogin"] is False and config["fakePayUrl"] == ""


def test_operator_names_cannot_break_out_of_the_page(build, operators, db):
    a = operators["tenant-a"]
    name, a.name = a.name, '</script><script>alert("x")</script>'
    a.save(update_fields=["name"])
    try:
        body = host(a).get("/m/").content.decode()
        assert "<script>alert" not in body
        assert injected(host(a).get("/m/"))["name"] == a.name  # intact once parsed
    finally:
        # The session's operator object is shared by later tests: the rollback restores
        # the row, not this object.
        a.name = name
        a.save(update_fields=["name"])


def test_the_map_centre_is_the_operators_stations(build, tenant):
    from decimal import Decimal

    from stations.models import Station

    for i, (lat, lng) in enumerate([("23.10", "113.30"), ("23.20", "113.40")]):
        Station.objects.create(
            name=f"站{i}", code=f"H5-{i}", address="广州", latitude=Decimal(lat), longitude=Decimal(lng)
        )
    connection.set_schema_to_public()
    centre = injected(host(tenant).get("/m/"))["center"]
    assert centre == pytest.approx({"lat": 23.15, "lng": 113.35})


def test_logo_is_served_and_named_in_the_config(build, operators, db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    a = operators["tenant-a"]
    assert host(a).get("/m/logo").status_code == 404
    a.logo.save("a.png", ContentFile(b"\x89PNG\r\n\x1a\nfake"), save=True)
    try:
        config = injected(host(a).get("/m/"))
        assert config["logo"].startswith("/m/logo?v=")
        logo = host(a).get(config["logo"])
        assert logo.status_code == 200 and logo["Content-Type"] == "image/png"
        assert logo.content.startswith(b"\x89PNG")
    finally:
        a.logo = ""
        a.save(update_fields=["logo"])


def test_assets_are_served_with_long_caching(build, operators, db):
    client = host(operators["tenant-a"])
    r = client.get("/m/assets/index-abc.js")
    assert r.status_code == 200 and r.content.decode() == "console.log('充电')"
    assert "immutable" in r["Cache-Control"] and r["Content-Type"].startswith("text/javascript")
    assert client.get("/m/assets/missing.js").status_code == 404
    assert client.get("/m/assets/..%2Findex.html").status_code == 404  # one file name only


def test_before_the_build_the_page_says_how_to_build_it(operators, db, settings, tmp_path):
    settings.MINIPROGRAM_H5_DIR = tmp_path / "nothing"
    r = host(operators["tenant-a"]).get("/m/")
    assert r.status_code == 503 and "make miniprogram" in r.content.decode()


def test_the_platform_host_has_no_driver_app(build, operators, db):
    assert Client(HTTP_HOST="testserver").get("/m/").status_code == 404
