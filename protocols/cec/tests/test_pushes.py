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


def test_status_changes_of_a_job_batch_go_as_one_task_that_pushes_each(
        partner, peer, regulator, regulator_peer, pile, monkeypatch,
        django_capture_on_commit_callbacks):
    from django.db import connection

    from charging import handlers, port
    from evplatform.queue import app, tasks_batched
    from protocols.cec import tasks

    queued = []
    monkeypatch.setattr(app, "send_task", lambda name, args=(), headers=None, **kw:
                        queued.append((name, args, headers["_schema_name"])))
    now = timezone.now()
    with tasks_batched():  # as a gateway's batch of jobs
        with django_capture_on_commit_callbacks(execute=True):
            for no in (1, 2, 2):  # the third is no change: no push
                handlers.handle(port.ConnectorStatusChanged(pile.code, no,
                                                            port.ConnectorStatus.FAULT, now))
        assert not [q for q in queued if q[0].startswith("cec.")]
    [(name, (connectors,), schema)] = [q for q in queued if q[0].startswith("cec.")]
    assert name == "cec.connector_statuses" and schema == connection.schema_name
    assert connectors == [[pile.code, 1], [pile.code, 2]]
    assert tasks.connector_statuses(connectors) == 4  # the worker: 2 connectors × 2 partners
    pushes.pushes_send_due()
    assert sorted(m["ConnectorStatusInfo"]["ConnectorID"]
                  for m in peer.messages("notification_stationStatus")) == [
        "4401060000010101", "4401060000010102"]
    assert len(regulator_peer.messages("notification_stationStatus")) == 2
    assert tasks.connector_statuses(connectors + [["NOSUCHPILE", 1]]) == 4  # same changes
    assert Push.objects.count() == 4  # the same messages, not new ones; an unknown pile skipped


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


def test_a_partner_hears_of_its_order_in_order(partner, peer, settings):
    """The settled order is not sent while the stop result before it is still pending
    (e.g. two worker threads picked them up at once, or the stop result failed once): it
    waits, without counting an attempt, and goes after; a dead stop result blocks nothing."""
    settings.CEC_HTTP_TIMEOUT_S = 1
    seq = "MA1AGGR01" + "202611301000000009"
    stop = pushes.push_enqueue(partner=partner, interface="notification_stop_charge_result",
                               key=f"stop_result:{seq}", payload={"StartChargeSeq": seq, "SuccStat": 0})
    info = pushes.push_enqueue(partner=partner, interface="notification_charge_order_info",
                               key=f"order_info:{seq}", payload={"StartChargeSeq": seq, "TotalMoney": 1})
    assert pushes.push_send(push_id=info.pk) == "waiting"
    info.refresh_from_db()
    assert info.state == Push.State.PENDING and info.attempts == 0 and info.next_attempt_at > timezone.now()
    assert not peer.received
    assert pushes.push_send(push_id=stop.pk) == "done"
    assert pushes.push_send(push_id=info.pk, now=timezone.now() + timedelta(seconds=3)) == "done"
    assert [name for name, _data in peer.received] == ["notification_stop_charge_result",
                                                        "notification_charge_order_info"]
    # A charge status still waiting when the stop result came is closed unsent.
    status = pushes.push_enqueue(partner=partner, interface="notification_equip_charge_status",
                                 key=f"charge_status:{seq}:1", payload={"StartChargeSeq": seq})
    assert pushes.push_send(push_id=status.pk) == "superseded"
    status.refresh_from_db()
    assert status.state == Push.State.DONE and status.attempts == 0 and "superseded" in status.last_error
    assert not peer.messages("notification_equip_charge_status")
    # Another order whose stop result is dead: its settled order still goes.
    other = "MA1AGGR01" + "202611301000000010"
    Push.objects.create(partner=partner, interface="notification_stop_charge_result",
                        key=f"stop_result:{other}", payload="{}", state=Push.State.DEAD)
    late = pushes.push_enqueue(partner=partner, interface="notification_charge_order_info",
                               key=f"order_info:{other}", payload={"StartChargeSeq": other})
    assert pushes.push_send(push_id=late.pk) == "done"


def test_our_stations_reach_the_regulators_once_per_change(partner, peer, regulator, regulator_peer,
                                                          connector, tariff, settings):
    """notification_stationInfo: each station a regulator sees, once per content (a second
    run sends nothing new, a renamed station goes again); not to a plain aggregator."""
    from protocols.cec.tasks import check_orders

    settings.CEC_CHECK_ORDERS_HOURS = (0, 0)  # outside the reconciliation window, whatever the hour
    made = pushes.stations_to_regulators()
    assert [p.partner for p in made] == [regulator]
    pushes.pushes_send_due()
    [info] = regulator_peer.messages("notification_stationInfo")
    station = info["StationInfo"]
    assert station["StationID"] == str(connector.pile.station_id) and station["OperatorID"] == "MA59TEST1"
    assert station["EquipmentInfos"][0]["ConnectorInfos"][0]["ConnectorID"] == "4401060000010101"
    assert "1.0000+0.5000" in station["ElectricityFee"]
    assert not peer.messages("notification_stationInfo")
    check_orders()  # the scheduled run: nothing changed, nothing new
    pushes.pushes_send_due()
    assert Push.objects.filter(interface="notification_stationInfo").count() == 1
    assert len(regulator_peer.messages("notification_stationInfo")) == 1
    station_row = connector.pile.station
    station_row.name = "改名后的站"
    station_row.save()
    check_orders()
    assert Push.objects.filter(interface="notification_stationInfo").count() == 2
    pushes.pushes_send_due()
    assert [m["StationInfo"]["StationName"] for m in regulator_peer.messages("notification_stationInfo")][-1] == "改名后的站"


def test_regulator_admin_actions_push_orders_and_stations_now(tenant, regulator, regulator_peer, partner,
                                                              connector, tariff, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    queued = []
    with pytest.MonkeyPatch.context() as mp:  # the worker's task, counted here
        mp.setattr(pushes, "task_queue_on_commit", lambda name, push_id, **kw: queued.append(push_id))
        response = client.post("/admin/protocols/partner/", {
            "action": "push_stations", "_selected_action": [regulator.pk, partner.pk]}, **HOST)
        assert response.status_code == 302
        assert Push.objects.filter(partner=regulator, interface="notification_stationInfo").count() == 1
        assert not Push.objects.filter(partner=partner).exists()  # not a regulator: nothing
        form = client.post("/admin/protocols/partner/", {
            "action": "push_orders", "_selected_action": [regulator.pk]}, **HOST)
        assert form.status_code == 200 and "start" in form.content.decode()  # asks for the range
        day = timezone.localdate()
        done = client.post("/admin/protocols/partner/", {
            "action": "push_orders", "_selected_action": [regulator.pk], "start": day.isoformat(),
            "end": day.isoformat()}, **HOST)
        assert done.status_code == 302
    assert len(queued) == 1


def test_onboarding_command_sets_the_arrears_switch_and_pushes_stations(tenant, regulator, regulator_peer,
                                                                        connector, tariff):
    from django.db import connection

    call_command("cec_partner", "add", "--tenant", tenant.slug, "--operator-id", "MA1NEW002",
                 "--our-operator-id", "MA59TEST1", "--owing", "refuse", "--credit", "80.00",
                 stdout=StringIO())
    connection.set_tenant(tenant)
    added = Partner.objects.get(operator_id="MA1NEW002")
    assert added.charge_while_owing is False and str(added.credit_yuan) == "80.00"
    out = StringIO()
    call_command("cec_partner", "list", "--tenant", tenant.slug, stdout=out)
    assert "MA1NEW002" in out.getvalue() and "MA1REGU01\t" in out.getvalue()
    out = StringIO()
    call_command("cec_partner", "push-stations", "--tenant", tenant.slug, "--operator-id", "MA1REGU01",
                 stdout=out)
    assert out.getvalue().startswith("1 stations queued")
    connection.set_tenant(tenant)
    pushes.pushes_send_due()
    assert regulator_peer.messages("notification_stationInfo")
    with pytest.raises(Exception, match="not a regulator"):
        call_command("cec_partner", "push-stations", "--tenant", tenant.slug, "--operator-id", "MA1NEW002",
                     stdout=StringIO())
