"""Operator tools for recovery: orders whose pile still charges after they ended (admin list,
re-send stop), ``manage.py reconcile``, ``consistency_check``, parked tasks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from charging import port, services
from charging.consistency import consistency_check
from charging.models import ChargingOrder, TransactionRecord
from stations import live

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff_client(tenant, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def clean_live(tenant):
    r = live.client()

    def clear():
        keys = list(r.scan_iter(f"{live.connector_key(connection.schema_name, '', 0)[:-2]}*"))
        if keys:
            r.delete(*keys)

    clear()
    yield
    clear()


def _settled(member, connector, kwh="10"):
    order = services.order_start(member=member, connector=connector)
    now = timezone.now()
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=Decimal("0"),
        meter_stop_kwh=Decimal(kwh), energy_kwh=Decimal(kwh), pile_amount_yuan=Decimal(kwh) * Decimal("1.5"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    return services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)


def test_admin_lists_ended_orders_whose_pile_still_charges_and_resends_the_stop(
    staff_client, funded_member, connector, tariff, clean_live, django_capture_on_commit_callbacks
):
    order = _settled(funded_member, connector)
    url = "/admin/charging/chargingorder/?pile_still_charging=yes"
    assert order.number not in staff_client.get(url, **HOST).content.decode()
    live.connector_update(connection.schema_name, order.pile.code, 1, status="charging",
                          trade_no=order.trade_no)
    page = staff_client.get(url, **HOST).content.decode()
    assert order.number in page
    with django_capture_on_commit_callbacks() as queued:
        r = staff_client.post(
            "/admin/charging/chargingorder/",
            {"action": "resend_stop", "_selected_action": [order.pk]}, **HOST,
        )
    assert r.status_code == 302 and len(queued) == 1
    assert order.transitions.last().reason == "stop re-sent by staff (pile still charging)"
    # Just before sending, the task checks again: the pile still shows this session.
    assert services.stop_unwanted(order, staff=True) == ""
    assert services.stop_unwanted(order) == "not_stopping"  # only staff may, and only so
    live.connector_update(connection.schema_name, order.pile.code, 1, status="plugged",
                          trade_no="0" * 32)
    assert services.stop_unwanted(order, staff=True) == "not_charging"


def test_consistency_check_finds_what_does_not_agree(funded_member, connector, tariff):
    from settlement.models import Hold, Posting

    order = _settled(funded_member, connector)
    assert consistency_check().ok
    # A hold left held for an ended order, a charge posting for an unsettled order.
    Hold.objects.filter(key=f"order:{order.number}:hold").update(status=Hold.Status.HELD)
    ChargingOrder.objects.filter(pk=order.pk).update(state="finished")
    report = consistency_check()
    assert report.counts() == {"hold_kept": 1, "charge_unsettled": 1}
    ChargingOrder.objects.filter(pk=order.pk).update(state="settled", energy_kwh=Decimal("9"))
    Hold.objects.filter(key=f"order:{order.number}:hold").update(status=Hold.Status.CONSUMED)
    assert consistency_check(grace_s=0).counts() == {"record_mismatch": 1}
    ChargingOrder.objects.filter(pk=order.pk).update(energy_kwh=Decimal("10"))
    Posting.objects.filter(key=f"order:{order.number}:charge").update(key="order:other:charge")
    assert consistency_check(grace_s=0).counts() == {"charge_missing": 1}


def test_consistency_check_counts_stuck_and_unsettled(funded_member, connector, tariff):
    order = services.order_start(member=funded_member, connector=connector)
    later = timezone.now() + timedelta(hours=2)
    assert consistency_check(now=later).counts() == {"stuck": 1}
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=timezone.now() - timedelta(minutes=5), stopped_at=timezone.now(),
        meter_start_kwh=Decimal("0"), meter_stop_kwh=Decimal("1"), energy_kwh=Decimal("1"),
        pile_amount_yuan=Decimal("1.5"), stop_reason=port.StopReason.DRIVER,
        protocol_stop_code=0x40,
    ))
    assert consistency_check(now=later).counts() == {"stuck": 1, "record_unsettled": 1}


def test_consistency_check_command(funded_member, connector, tariff):
    _settled(funded_member, connector)
    out = StringIO()
    call_command("consistency_check", "--tenant", "tenant-a", stdout=out)
    assert "tenant-a: 1 orders, 1 records, 1 settled, 0 abnormal, 0 to review: ok" in out.getvalue()


def test_reconcile_command_runs_the_reconcilers_now(funded_member, connector, tariff):
    order = services.order_start(member=funded_member, connector=connector)
    ChargingOrder.objects.filter(pk=order.pk).update(start_deadline=timezone.now() - timedelta(seconds=1))
    out = StringIO()
    call_command("reconcile", "--tenant", "tenant-a", stdout=out)
    text = out.getvalue()
    assert "tenant-a: orders start_timeout=1" in text and "unacknowledged tasks:" in text
    order.refresh_from_db()
    assert order.state == "failed"


@pytest.mark.parametrize("command", ["reconcile", "consistency_check", "ledger_verify", "points_verify",
                                     "points_expire"])
def test_operator_commands_refuse_an_unknown_operator_and_take_a_schema_name(command, tenant):
    """Every ``--tenant`` command: an unknown name is a clear error (exit 1), not a
    traceback; the schema name works like the slug."""
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no-such-operator"):
        call_command(command, "--tenant", "no-such-operator", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command(command, "--tenant", tenant.schema_name, stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("tenant-a")


def test_stats_rebuild_unknown_operator(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no-such-operator"):
        call_command("stats_rebuild", "--tenant", "no-such-operator", "--from", "2026-11-01",
                     "--to", "2026-11-02")


def test_parked_tasks_are_listed_with_when_they_return(tenant, settings):
    import json
    import time

    from evplatform.celery import parked_tasks

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    r = live.client()
    message = {"headers": {"id": "t-1", "task": "charging.record_settle", "_schema_name": "op_tenant_a"}}
    r.zadd(f"{prefix}unacked_index", {"tag-1": time.time() - 100})
    r.hset(f"{prefix}unacked", "tag-1", json.dumps([message, "", "celery"]))
    try:
        parked = [p for p in parked_tasks() if p["id"] == "t-1"]
    finally:
        r.zrem(f"{prefix}unacked_index", "tag-1")
        r.hdel(f"{prefix}unacked", "tag-1")
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert parked == [{
        "id": "t-1", "task": "charging.record_settle", "schema": "op_tenant_a", "age_s": 100,
        "returns_in_s": visibility - 100,
    }]
