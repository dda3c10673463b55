"""The frame log in the operator admin; refused logins in the platform admin."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import get_public_schema_name, schema_context

from protocols.models import FrameLog
from tenants.models import RefusedPileLogin

from .conftest import SCHEMA, committed


def test_operator_admin_lists_a_piles_frames(make_pile):
    code = make_pile()

    def given():
        with schema_context(SCHEMA):
            FrameLog.objects.create(pile_code=code, at=datetime.now(UTC), direction="in",
                                    frame_type=3, name="Heartbeat", hex="680D")

    committed(given)
    client = Client(HTTP_HOST="tenant-a.testserver")
    with schema_context(SCHEMA):
        assert client.login(username="admin", password="admin-pass-123")

    page = client.get(f"/admin/protocols/framelog/?pile_code={code}")

    assert page.status_code == 200
    assert "680D" in page.content.decode()
    assert client.get("/admin/protocols/framelog/add/").status_code == 403


def test_platform_admin_lists_refused_logins(make_pile):
    code = make_pile(register=False, in_estate=False)

    def given():
        with schema_context(get_public_schema_name()):
            now = datetime.now(UTC)
            RefusedPileLogin.objects.create(pile_code=code, reason="unknown", peer="10.0.0.1:5",
                                            first_seen_at=now, last_seen_at=now)
            get_user_model().objects.filter(username="gw-root").delete()
            get_user_model().objects.create_superuser("gw-root", "", "gw-root-pass-1")

    committed(given)
    client = Client(HTTP_HOST="testserver")
    with schema_context(get_public_schema_name()):
        assert client.login(username="gw-root", password="gw-root-pass-1")

    page = client.get("/admin/tenants/refusedpilelogin/")

    assert page.status_code == 200
    assert code in page.content.decode()


def test_the_frame_viewer_shows_an_ocpp_message_as_json(make_pile):
    code = make_pile(protocol="ocpp")
    text = '[2,"42","Heartbeat",{}]'

    def given():
        with schema_context(SCHEMA):
            return FrameLog.objects.create(pile_code=code, at=datetime.now(UTC), direction="in",
                                           frame_type=2, name="Heartbeat",
                                           hex=text.encode().hex().upper()).pk

    pk = committed(given)
    client = Client(HTTP_HOST="tenant-a.testserver")
    with schema_context(SCHEMA):
        assert client.login(username="admin", password="admin-pass-123")
    listing = client.get(f"/admin/protocols/framelog/?pile_code={code}").content.decode()
    assert "<code>[2]</code> Heartbeat" in listing
    page = client.get(f"/admin/protocols/framelog/{pk}/change/").content.decode()
    assert "&quot;Heartbeat&quot;" in page and "&quot;42&quot;" in page
