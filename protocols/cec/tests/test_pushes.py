"""Pushes to partners over real HTTP: token fetch and renewal on 4002, retries with backoff,
the dead-letter list and its retry (admin), field-name variants, status changes, the daily
reconciliation, and the onboarding command."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from protocols.cec import pushes
from protocols.cec.models import Partner, Push

HOST = {"HTTP_HOST": "tenant-a.testserver"}


def _status_push(partner):
    return pushes.push_enqueue(partner=partner, interface="notification_stationStatus", key="k1",
                               payload={"ConnectorStatusInfo": {"ConnectorID": "x01", "Status": 1}})


def test_token_is_fetched_cached_and_renewed_on_4002(partner, peer):
    push = _status_push(partner)
    assert pushes.push_send(push_id=push.pk) == "done"
    partner.refresh_from_db()
    first = partner.out_token
    assert first and partner.out_token_expires_at > timezone.now()
    peer.revoke_tokens()  # the partner forgets our token: 4002, fetched again, sent once more
    second = pushes.push_enqueue(partner=partner, interface="notification_stationStatus", key="k2",
                                 payload={"ConnectorStatusInfo": {"ConnectorID": "x01", "Status": 2}})
    assert pushes.push_send(push_id=second.pk) == "done"
    partner.refresh_from_db()
    assert partner.out_token != first
    assert [m["ConnectorStatusInfo"]["Status"] for m in peer.messages("notification_stationStatus")] == [1, 2]


def test_failures_retry_with_backoff_then_dead_then_retried_by_staff(partner, peer, settings,
                                                                    django_user_model):
    settings.CEC_RETRY_DELAYS_S = (15, 60)
    settings.CEC_HTTP_TIMEOUT_S = 1
    peer.inject_failure(path="/evcs/v1/notification_stationStatus", mode="error", count=None,
                        status=502)
    push = _status_push(partner)
    assert pushes.push_send(push_id=push.pk) == "retry"
    push.refresh_from_db()
    assert push.attempts == 1 and push.state == Push.State.PENDING and "HTTP 502" in push.last_error
    assert timedelta(seconds=10) < push.next_attempt_at - timezone.now() <= timedelta(seconds=15)
    assert pushes.push_send(push_id=push.pk) == "skipped"  # not due yet
    later = timezone.now() + timedelta(seconds=16)
    assert pushes.push_send(push_id=push.pk, now=later) == "retry"
    assert pushes.push_send(push_id=push.pk, now=later + timedelta(seconds=200)) == "dead"
    push.refresh_from_db()
    assert push.state == Push.State.DEAD and push.attempts == 3 and push.last_request

    peer.failures.clear()
    user = django_user_model.objects.create_superuser("ops-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    page = client.get("/admin/protocols/push/?state__exact=dead", **HOST)
    assert page.status_code == 200 and "notification_stationStatus" in page.content.decode()
    with pytest.MonkeyPatch.context() as mp:  # the worker's task, run here
        mp.setattr(pushes, "task_queue_on_commit", lambda name, push_id: None)
        response = client.post("/admin/protocols/push/", {"action": "retry",
                                                          "_selected_action": [push.pk]}, **HOST)
    assert response.status_code == 302
    push.refresh_from_db()
    assert push.state == Push.State.PENDING and push.attempts == 0
    assert pushes.push_send(push_id=push.pk) == "done"
    assert len(peer.messages("notification_stationStatus")) == 1


def test_a_timing_out_partner_is_a_retry_not_a_hang(partner, peer, settings):
    settings.CEC_HTTP_TIMEOUT_S = 1
    peer.inject_failure(path="/evcs/v1/notification_stationStatus", mode="timeout", delay=5)
    push = _status_push(partner)
    assert pushes.push_send(push_id=push.pk) == "retry"
    push.refresh_from_db()
    assert "Timeout" in push.last_error


def test_partner_field_names_are_used_both_ways(partner, peer):
    partner.field_renames = {"TotalSeviceMoney": "TotalServiceMoney"}
    partner.save()
    push = pushes.push_enqueue(partner=partner, interface="notification_charge_order_info",
                               key="order_info:x", payload={"StartChargeSeq": "S", "ConnectorID": "C",
                                                            "TotalSeviceMoney": 1})
    assert pushes.push_send(push_id=push.pk) == "done"
    [received] = peer.messages("notification_charge_order_info")
    assert "TotalServiceMoney" in received and "TotalSeviceMoney" not in received


def test_connector_status_change_is_pushed_to_who_sees_it(partner, peer, regulator, regulator_peer,
                                                         connector):
    from charging import handlers, port

    handlers.handle(port.ConnectorStatusChanged(connector.pile.code, 1, port.ConnectorStatus.FAULT,
                                                timezone.now()))
    made = pushes.connector_status(pile_code=connector.pile.code, connector_no=1)
    assert {p.partner for p in made} == {partner, regulator}
    pushes.pushes_send_due()
    [sent] = peer.messages("notification_stationStatus")
    assert sent["ConnectorStatusInfo"] == {"ConnectorID": "4401060000010101", "Status": 255}
    assert regulator_peer.messages("notification_stationStatus")
    assert pushes.connector_status(pile_code=connector.pile.code, connector_no=1)  # same change:
    assert Push.objects.count() == 2  # the same messages, not new ones


def test_daily_check_goes_to_regulators_even_without_orders(regulator, regulator_peer, partner):
    day = timezone.localdate() - timedelta(days=1)
    made = pushes.check_orders(day=day)
    assert [p.partner for p in made] == [regulator]  # the aggregator had no orders that day
    pushes.pushes_send_due()
    [check] = regulator_peer.messages("check_charge_orders")
    assert check["OrderCount"] == 0 and len(check["CheckOrderSeq"]) == 27


def test_onboarding_command(tenant):
    out = StringIO()
    call_command("cec_partner", "add", "--tenant", tenant.slug, "--operator-id", "MA1NEW001",
                 "--our-operator-id", "MA59TEST1", "--name", "联联", "--role", "regulator",
                 "--base-url", "http://127.0.0.1:1", "--out-data-secret", "abcdefghijklmnop",
                 "--rename", "TotalSeviceMoney=TotalServiceMoney", stdout=out)
    issued = json.loads(out.getvalue())
    assert len(issued["DataSecret"]) == 16
    out = StringIO()
    call_command("cec_partner", "show", "--tenant", tenant.slug, "--operator-id", "MA1NEW001", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["roles"]["regulator"] and issued["DataSecret"] not in out.getvalue()
    from django.db import connection

    connection.set_tenant(tenant)
    with connection.cursor() as cursor:
        cursor.execute("SELECT in_data_secret FROM protocols_partner WHERE operator_id = %s",
                       ["MA1NEW001"])
        stored = cursor.fetchone()[0]
    assert issued["DataSecret"] not in stored  # encrypted at rest
    call_command("cec_partner", "disable", "--tenant", tenant.slug, "--operator-id", "MA1NEW001",
                 stdout=StringIO())
    connection.set_tenant(tenant)
    assert not Partner.objects.get(operator_id="MA1NEW001").enabled
    with pytest.raises(Exception, match="operator_id"):
        call_command("cec_partner", "add", "--tenant", tenant.slug, "--operator-id", "bad",
                     "--our-operator-id", "MA59TEST1", stdout=StringIO())


def test_partner_admin_masks_secrets_and_keeps_them(tenant, partner, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    page = client.get(f"/admin/protocols/partner/{partner.pk}/change/", **HOST).content.decode()
    assert "InSecretAbcdef12" not in page and "PeerSecret123456" not in page and "••••" in page
    assert client.get("/admin/protocols/partner/", **HOST).status_code == 200
