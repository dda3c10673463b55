"""Browser tests: the real ASGI app under uvicorn (whitenoise, tenant routing by host) and
Debian's Chromium driven by Playwright (``executable_path=/usr/bin/chromium``; no browser
is ever downloaded). Screenshots go to ``var/screenshots/<test>.png``.

Data is committed (a browser is another client): one operator ``browser`` with the
``estate`` of ``evplatform/tests/estate.py`` at ``browser.localhost`` and a super admin
on the platform host, made once per module and removed afterwards. ``*.localhost`` and
the platform host ``testserver`` are mapped to 127.0.0.1 inside Chromium.

Set ``EVP_TEST_PORT_RANGE=18400-18499`` to keep the test server inside a port range.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from evplatform.tests.estate import ADMIN, OWNER
from evplatform.tests.helpers import Uvicorn
from evplatform.tests.untranslated import BROWSER_PIECES_JS, untranslated

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
SLUG = "browser"
TENANT_HOST = f"{SLUG}.localhost"
PLATFORM_HOST = "testserver"
ROOT = ("root-test", "root-pass-123")
WIDTH = 1440
USERNAMES = frozenset({"admin", SLUG, ADMIN[0], OWNER[0], ROOT[0]})  # data, not English

# Playwright's sync API keeps an event loop in this thread; Django's ORM in the test body
# is still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    # A test database must exist for the committed data below: mark every browser test as
    # a database test (pytest-django creates the test database only for those).
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.django_db)


@dataclass
class Site:
    web: Uvicorn
    operator: object
    estate: object

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.web.port}{path}"


@pytest.fixture(scope="module")
def site(operators, django_db_blocker):
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django_tenants.utils import tenant_context

    from evplatform.tests.estate import estate_build
    from tenants.services import operator_create

    assert connection.settings_dict["NAME"].startswith("test_"), "not on the test database"
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    db_settings = connections.settings["default"]
    saved_max_age, db_settings["CONN_MAX_AGE"] = db_settings["CONN_MAX_AGE"], 0
    with django_db_blocker.unblock():
        connection.set_schema_to_public()  # whatever schema an earlier test left set
        operator = operator_create(
            slug=SLUG, name="浏览器测试运营商", domain=TENANT_HOST, admin_username="admin",
            admin_password="admin-pass-123",
        ).operator
        with tenant_context(operator):
            estate = estate_build()
        connection.set_schema_to_public()
        # Left for the test database's end: deleting a user from the public schema would
        # cascade into tenant tables that public does not have.
        if not get_user_model().objects.filter(username=ROOT[0]).exists():
            get_user_model().objects.create_superuser(ROOT[0], password=ROOT[1])
        web = Uvicorn()
        try:
            yield Site(web=web, operator=operator, estate=estate)
        finally:
            web.stop()
            connection.set_schema_to_public()
            operator.delete(force_drop=True)
            db_settings["CONN_MAX_AGE"] = saved_max_age
            with connection.cursor() as cursor:  # the server's idle connections
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[f"--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP {PLATFORM_HOST} 127.0.0.1",
                  "--no-sandbox"],
        )
        yield chromium
        chromium.close()


class Page:
    """A logged-in admin tab at 1440 × 900 with checks for what people see."""

    def __init__(self, page, site: Site, host: str, test_name: str):
        self.page, self.site, self.host, self.test_name = page, site, host, test_name
        self.failed: list[str] = []  # static files or pages that did not load
        page.on("response", self._response)
        self.shots = 0

    def _response(self, response):
        if "/static/" in response.url and response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def goto(self, path: str, expect_status: int = 200):
        response = self.page.goto(self.site.url(self.host, path))
        assert response.status == expect_status, (path, response.status)
        return response

    def login(self, username: str, password: str) -> None:
        self.goto("/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_selector("#user-tools")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_styled(self) -> None:
        """The admin's stylesheet is applied (not a bare HTML page) and no static file failed."""
        assert not self.failed, self.failed
        header_bg = self.page.evaluate(
            "getComputedStyle(document.querySelector('#header')).backgroundColor")
        assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent"), header_bg
        font = self.page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "sans" in font.lower() or "segoe" in font.lower(), font

    def assert_chinese(self, allow: frozenset[str] = USERNAMES) -> None:
        found = untranslated([tuple(p) for p in self.page.evaluate(BROWSER_PIECES_JS)], allow)
        assert not found, f"{self.page.url}: English left:\n  " + "\n  ".join(found)

    def assert_fits(self) -> None:
        """No horizontal scrolling at 1440 px: neither the page nor a list's table, which
        the admin would otherwise cut off inside a scrolling box."""
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"{self.page.url}: {width} px wide at {WIDTH} px"
        boxes = self.page.evaluate(
            "[...document.querySelectorAll('#changelist .results, .inline-group .tabular')]"
            ".map(e => [e.scrollWidth, e.clientWidth])")
        for scroll, client in boxes:
            assert scroll <= client + 1, f"{self.page.url}: list {scroll} px in a {client} px box"

    def text(self, selector: str = "#content") -> str:
        return self.page.inner_text(selector)


@pytest.fixture
def open_page(site, browser, request):
    contexts = []

    def make(host: str = TENANT_HOST) -> Page:
        context = browser.new_context(viewport={"width": WIDTH, "height": 900}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        contexts.append(context)
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)
        return Page(context.new_page(), site, host, name)

    yield make
    for context in contexts:
        context.close()
