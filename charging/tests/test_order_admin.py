"""The order admin: list, detail with timeline, export, force stop, settle by hand, refund part."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from charging import port, services
from charging.models import ChargingOrder, OrderState, TransactionRecord
from charging.tests.money import balance, ledger_clean

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff_client(tenant, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    return client


def _settled(member, connector):
    order = services.order_start(member=member, connector=connector)
    now = timezone.now()
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=1, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=20), stopped_at=now, meter_start_kwh=Decimal("0"),
        meter_stop_kwh=Decimal("10"), energy_kwh=Decimal("10"), pile_amount_yuan=Decimal("15"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    return services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)


def test_list_detail_and_export(staff_client, funded_member, connector, tariff):
    order = _settled(funded_member, connector)
    r = staff_client.get("/admin/charging/chargingorder/?state__exact=settled", **HOST)
    assert r.status_code == 200 and order.number in r.content.decode()
    r = staff_client.get(f"/admin/charging/chargingorder/{order.pk}/change/", **HOST)
    body = r.content.decode()
    assert r.status_code == 200 and "protocols/framelog" in body and f"{order.pk}/refund/" in body
    r = staff_client.post(
        "/admin/charging/chargingorder/export/?state__exact=settled",
        {"format": "0", "resource": "0"}, **HOST,
    )
    assert r.status_code == 200


def test_refund_part_of_an_order(staff_client, funded_member, connector, tariff):
    order = _settled(funded_member, connector)
    assert balance(funded_member).available == Decimal("85.00")
    url = f"/admin/charging/chargingorder/{order.pk}/refund/"
    assert staff_client.get(url, **HOST).status_code == 200
    r = staff_client.post(url, {"amount": "5.00", "reason": "充电桩限功率，补偿"}, **HOST)
    assert r.status_code == 302
    order.refresh_from_db()
    assert order.refunded_amount == Decimal("5.00") and balance(funded_member).available == Decimal("90.00")
    assert order.transitions.last().reason.startswith("refund ¥5.00")
    from accounts.models import AuditEntry

    entry = AuditEntry.objects.get(action="order.refund")
    assert entry.changes == {"refunded_amount": ["0.00", "5.00"]} and entry.detail == "充电桩限功率，补偿"
    # More than what is left is refused, and nothing moves.
    staff_client.post(url, {"amount": "10.01", "reason": "again"}, **HOST)
    order.refresh_from_db()
    assert order.refunded_amount == Decimal("5.00") and balance(funded_member).available == Decimal("90.00")
    ledger_clean()


def test_refund_needs_a_settled_wallet_order(funded_member, connector, tariff, django_user_model):
    order = services.order_start(member=funded_member, connector=connector)
    user = django_user_model.objects.create_user("ops2")
    with pytest.raises(services.OrderRefused) as exc:
        services.order_refund_partial(order_id=order.pk, amount=Decimal("1"), user=user, reason="x")
    assert exc.value.code == "order_not_settled"


def test_force_stop_and_settle_by_hand(staff_client, funded_member, connector, tariff):
    order = services.order_start(member=funded_member, connector=connector)
    services.order_start_result(port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=timezone.now()))
    r = staff_client.post(
        "/admin/charging/chargingorder/", {"action": "force_stop", "_selected_action": [order.pk]}, **HOST
    )
    assert r.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.STOPPING and order.transitions.last().actor == "staff"
    services.orders_reconcile(now=timezone.now() + timedelta(hours=1))
    r = staff_client.post(f"/admin/charging/chargingorder/{order.pk}/settle/", {"reason": "桩断电"}, **HOST)
    assert r.status_code == 302
    assert ChargingOrder.objects.get(pk=order.pk).state == OrderState.SETTLED
    # Both are in the audit log, with who and why, and the log exports.
    from accounts.models import AuditEntry

    entries = list(AuditEntry.objects.filter(target_type="charging.chargingorder",
                                             target_id=str(order.pk)).order_by("pk"))
    assert [(e.action, e.actor_name) for e in entries] == [
        ("order.force_stop", "ops-admin"), ("order.settle_by_hand", "ops-admin")]
    assert entries[0].changes == {"state": ["charging", "stopping"]}
    assert entries[1].detail == "桩断电"
    log = staff_client.get("/admin/operations/staffaction/", **HOST).content.decode()
    assert "强制停止订单" in log and "人工结算订单" in log and order.number in log
    export = staff_client.post("/admin/operations/staffaction/export/",
                               {"format": "1", "resource": "0", "actorname": "on",
                                "export_items": [e.pk for e in entries]}, **HOST)
    assert export.status_code == 200, export.content[:500]


def test_station_owner_sees_only_own_stations_orders(funded_member, connector, tariff, django_user_model):
    from accounts.roles import STATION_OWNER, role_group

    _settled(funded_member, connector)
    owner = django_user_model.objects.create_user("owner-x", password="x", is_staff=True)
    owner.groups.add(role_group(STATION_OWNER))
    client = Client()
    client.force_login(owner)
    order = ChargingOrder.objects.get()
    r = client.get("/admin/charging/chargingorder/", **HOST)
    assert r.status_code == 200 and r.context["cl"].result_count == 0
    assert client.get(f"/admin/charging/chargingorder/{order.pk}/change/", **HOST).status_code == 302
    connector.pile.station.owners.add(owner)
    r = client.get("/admin/charging/chargingorder/", **HOST)
    assert r.status_code == 200 and r.context["cl"].result_count == 1


def test_meter_samples_admin_shows_a_station_owner_only_own_piles(connector, django_user_model):
    from accounts.roles import STATION_OWNER, role_group
    from charging.models import MeterSample

    for code in (connector.pile.code, "99999999999999"):
        MeterSample.objects.create(pile_code=code, connector_no=1, at=timezone.now(),
                                   status="charging", energy_kwh=Decimal("1"))
    owner = django_user_model.objects.create_user("owner-s", password="x", is_staff=True)
    owner.groups.add(role_group(STATION_OWNER))
    client = Client()
    client.force_login(owner)
    r = client.get("/admin/charging/metersample/", **HOST)
    assert r.status_code == 200 and r.context["cl"].result_count == 0
    connector.pile.station.owners.add(owner)
    r = client.get("/admin/charging/metersample/", **HOST)
    assert [s.pile_code for s in r.context["cl"].result_list] == [connector.pile.code]


def _owner_of(station, username):
    from django.contrib.auth import get_user_model

    from accounts.roles import STATION_OWNER, role_group

    user = get_user_model().objects.create_user(username, password="x-pass-123", is_staff=True)
    user.groups.add(role_group(STATION_OWNER))
    if station is not None:
        station.owners.add(user)
    client = Client(**HOST)
    client.force_login(user)
    return client


def test_a_view_only_owner_cannot_force_stop_their_own_stations_order(funded_member, connector, tariff):
    order = services.order_start(member=funded_member, connector=connector)
    owner = _owner_of(connector.pile.station, "view-owner")
    r = owner.post("/admin/charging/chargingorder/", {
        "action": "force_stop", "index": "0", "_selected_action": [order.pk]})
    assert r.status_code in (200, 302)
    order.refresh_from_db()
    assert order.state == OrderState.STARTING and order.stop_attempts == 0
    assert not order.transitions.filter(actor="staff").exists()


def _export_rows(client) -> list[list]:
    import csv as csv_module

    from evplatform.tests.helpers import export_form_data

    r = client.post("/admin/charging/chargingorder/export/", export_form_data(ChargingOrder))
    assert r.status_code == 200 and "attachment" in r["Content-Disposition"], r.status_code
    return list(csv_module.reader(r.content.decode("utf-8-sig").splitlines()))[1:]


def test_an_owners_export_of_orders_holds_only_their_stations(funded_member, connector, tariff):
    from stations.tests.conftest import make_station

    _settled(funded_member, connector)
    assert len(_export_rows(_owner_of(connector.pile.station, "own-owner"))) == 1
    assert _export_rows(_owner_of(make_station(name="别家"), "other-owner")) == []


def test_a_station_owner_cannot_export_payments(tenant, funded_member):
    owner = _owner_of(None, "pay-owner")
    assert owner.get("/admin/billing/payment/").status_code == 403
    assert owner.get("/admin/billing/payment/export/").status_code == 403
    r = owner.post("/admin/billing/payment/export/", {"format": "0", "resource": "0"})
    assert r.status_code == 403
