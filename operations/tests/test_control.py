"""Remote control from the admin: who may send what, a pile that is not there, refusals,
and the audit of every attempt (the round trip to a pile is in
protocols/tests/test_ykc_operations.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEntry
from accounts.roles import STATION_OWNER, role_group
from operations import control
from operations.models import ControlPolicy

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def admin_user(django_user_model, tenant):
    return django_user_model.objects.create_superuser("ops-ctl", password="x-pass-123")


@pytest.fixture
def owner(django_user_model, station):
    user = django_user_model.objects.create_user("owner-ctl", password="x-pass-123", is_staff=True)
    user.groups.add(role_group(STATION_OWNER))
    station.owners.add(user)
    return user


def test_an_offline_pile_answers_pile_offline_and_the_attempt_is_audited(pile, admin_user):
    outcome = control.command_send(user=admin_user, pile=pile, name="reboot")
    assert (outcome.result.ok, outcome.result.error) == (False, "pile_offline")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_type, entry.actor_name) == ("pile.command", "stations.pile", "ops-ctl")
    assert entry.detail == "重启 44010600000101 → 桩离线"


def test_refusals(pile, admin_user):
    with pytest.raises(control.ControlRefused) as exc:
        control.command_send(user=admin_user, pile=pile, name="power_cap", percent=20)
    assert (exc.value.code, exc.value.status) == ("invalid_percent", 400)
    with pytest.raises(control.ControlRefused) as exc:
        control.command_send(user=admin_user, pile=pile, name="read_realtime", connector_no=7)
    assert exc.value.code == "connector_required"
    with pytest.raises(control.ControlRefused) as exc:
        control.command_send(user=admin_user, pile=pile, name="format_disk")
    assert exc.value.code == "unknown_command"
    assert not AuditEntry.objects.exists()


def test_station_owners_send_only_what_the_operator_allows_to_their_own_piles(
        pile, owner, station, django_user_model):
    from stations.models import Pile, Station

    assert control.commands_allowed(owner, pile) == ["read_realtime", "time_sync"]  # the default
    with pytest.raises(control.ControlRefused) as exc:
        control.command_send(user=owner, pile=pile, name="reboot")
    assert (exc.value.code, exc.value.status) == ("not_allowed", 403)
    policy = ControlPolicy.load()
    policy.owner_commands = ["reboot"]
    policy.save()
    assert control.commands_allowed(owner, pile) == ["reboot"]
    other = Pile.objects.create(station=Station.objects.create(
        name="别人的站", code="GZ0009", address="x", area_code="440106", latitude=23, longitude=113),
        code="44010600000909", rated_power_kw=60)
    assert control.commands_allowed(owner, other) == []

    client = Client()
    client.force_login(owner)
    page = client.get(f"/admin/operations/pilecontrol/{pile.pk}/send/", **HOST)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="reboot"' in body and 'value="power_cap"' not in body
    assert client.get(f"/admin/operations/pilecontrol/{other.pk}/send/", **HOST).status_code == 404
    listing = client.get("/admin/operations/pilecontrol/", **HOST).content.decode()
    assert pile.code in listing and other.code not in listing
    # A command the owner may not send, posted anyway, is refused by the form.
    client.post(f"/admin/operations/pilecontrol/{pile.pk}/send/", {"command": "power_cap",
                                                                   "percent": "50"}, **HOST)
    assert not AuditEntry.objects.exists()


def test_remote_stop_of_a_running_order_goes_through_the_order(pile, admin_user, tenant):
    from accounts.models import Member
    from charging.models import ChargingOrder

    member = Member.objects.create(openid="o-ctl")
    connector = pile.connectors.get(number=1)
    order = ChargingOrder.objects.create(
        number="T202611300001", trade_no="4" * 32, member=member, station=pile.station, pile=pile,
        connector=connector, state="charging")
    outcome = control.command_send(user=admin_user, pile=pile, name="remote_stop", connector_no=1)
    assert outcome.order_number == order.number and outcome.result.ok
    order.refresh_from_db()
    assert order.state == "stopping" and order.transitions.last().actor == "staff"
    assert AuditEntry.objects.get().action == "order.force_stop"
