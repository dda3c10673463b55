"""Every admin page of the operator's main models reads in Chinese: lists, detail pages,
add forms — no msgid left in English, no unmarked English label (``untranslated``)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from evplatform.tests.estate import ADMIN, OWNER, estate_build
from evplatform.tests.untranslated import html_pieces, untranslated

HOST = {"HTTP_HOST": "tenant-a.testserver"}
USERNAMES = frozenset({"admin", "boss", ADMIN[0], OWNER[0]})  # data: user names


@pytest.fixture
def estate(tenant):
    return estate_build()


def _pages(user) -> list[str]:
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"admin:{meta.app_label}_{meta.model_name}"
        urls.append(reverse(base + "_changelist"))
        obj = model_admin.get_queryset(_Request(user)).first() if model_admin else None
        if obj is not None:
            urls.append(reverse(base + "_change", args=[obj.pk]))
        if model_admin.has_add_permission(_Request(user)):
            urls.append(reverse(base + "_add"))
    return urls


class _Request:
    def __init__(self, user):
        self.user = user
        self.GET = {}
        self.META = {}


def test_every_operator_admin_page_is_chinese(estate, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="boss-pass-123")
    client = Client()
    client.force_login(boss)
    problems = {}
    for url in _pages(boss):
        r = client.get(url, **HOST)
        assert r.status_code == 200, (url, r.status_code)
        found = untranslated(html_pieces(r.content.decode()), USERNAMES)
        if found:
            problems[url] = found
    assert not problems, "\n".join(f"{u}\n    " + "\n    ".join(f) for u, f in problems.items())
