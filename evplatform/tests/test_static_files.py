"""Static files are served by the app on every host, the API docs need no CDN, and errors
are Chinese pages for people (JSON only for API clients)."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory, override_settings

from evplatform import error_pages

TENANT_HOST = "tenant-a.testserver"


@pytest.mark.parametrize("host", ["testserver", TENANT_HOST, "unknown.example"])
def test_admin_styles_are_served_on_every_host(db, operators, host):
    r = Client().get("/static/admin/css/base.css", HTTP_HOST=host)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/css")
    assert b"body" in b"".join(r.streaming_content)


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)


@pytest.mark.parametrize("host", ["testserver", TENANT_HOST])
def test_api_docs_load_only_local_assets(db, operators, host):
    client = Client()
    r = client.get("/api/docs/", HTTP_HOST=host)
    assert r.status_code == 200
    html = r.content.decode()
    assets = _asset_urls(html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    assert any(a.endswith("swagger-ui.css") for a in assets), assets
    assert "cdn" not in html.lower() and "//unpkg" not in html and "jsdelivr" not in html
    for url in assets:
        assert url.startswith("/static/"), url  # nothing from another origin
        assert client.get(url, HTTP_HOST=host).status_code == 200, url


def test_collectstatic_with_the_production_storage_serves_hashed_files(db, operators, tmp_path):
    prod = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=prod, WHITENOISE_USE_FINDERS=False,
                           WHITENOISE_AUTOREFRESH=False, DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
        css = manifest["admin/css/base.css"]
        bundle = manifest["drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"]
        assert (tmp_path / (css + ".gz")).exists()  # compressed beside the file
        client = Client()  # a new handler: whitenoise reads the collected files
        r = client.get("/static/" + css, HTTP_HOST=TENANT_HOST)
        assert r.status_code == 200 and "max-age=315360000" in r["Cache-Control"]
        assert client.get("/static/" + bundle, HTTP_HOST="testserver").status_code == 200
        page = client.get("/admin/login/", HTTP_HOST=TENANT_HOST).content.decode()
        assert "/static/" + css in page  # the admin links the hashed name


def test_unknown_page_is_a_chinese_html_page(db, operators):
    r = Client().get("/no-such-page", HTTP_HOST=TENANT_HOST)
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    assert "页面不存在" in r.text and 'lang="zh-hans"' in r.text
    assert "Traceback" not in r.text and "DEBUG" not in r.text


def test_unknown_api_path_stays_json(db, operators):
    r = Client().get("/api/app/v1/no-such-thing", HTTP_X_TENANT="tenant-a")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "path, accept, is_json",
    [("/admin/x", "text/html", False), ("/q/ABC", "*/*", False), ("/api/app/v1/x", "*/*", True),
     ("/admin/x", "application/json", True)],
)
def test_server_error_page(db, path, accept, is_json):
    request = RequestFactory().get(path, HTTP_ACCEPT=accept)
    r = error_pages.handler500(request)
    assert r.status_code == 500
    if is_json:
        assert json.loads(r.content)["code"] == "server_error"
    else:
        text = r.content.decode()
        assert "服务器错误" in text and "<html" in text


def test_admin_permission_denied_is_html(db, operators):
    request = RequestFactory().get("/admin/charging/chargingorder/")
    r = error_pages.handler403(request)
    assert r.status_code == 403 and "没有权限" in r.content.decode()
