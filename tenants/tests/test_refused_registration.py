"""The super admin registers a refused pile code to an operator; the operator's admin then
links the code to the pile form (issue 20: register a refused pile)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django_tenants.utils import get_public_schema_name

from tenants.models import Operator, PileRegistration, RefusedPileLogin

CODE, HELD = "44010699998888", "44010699998889"


def _refused(code: str) -> RefusedPileLogin:
    now = datetime.now(UTC)
    return RefusedPileLogin.objects.create(pile_code=code, reason="unknown", peer="10.0.0.9:4000",
                                           first_seen_at=now, last_seen_at=now)


def test_a_refused_code_is_registered_to_the_chosen_operator(tenant, other_tenant):
    connection.set_schema_to_public()
    root = get_user_model().objects.create_superuser("reg-root", "", "reg-root-pass-1")
    rows = [_refused(CODE), _refused(HELD)]
    PileRegistration.objects.create(code=HELD, operator=other_tenant)
    client = Client(HTTP_HOST="testserver")
    client.force_login(root)
    url = "/admin/tenants/refusedpilelogin/"
    selected = {"action": "register_to_operator", "_selected_action": [r.pk for r in rows]}

    form = client.post(url, selected)
    page = form.content.decode()
    assert form.status_code == 200 and CODE in page
    choices = page.split("<select", 1)[1].split("</select>")[0]
    assert f'value="{tenant.pk}"' in choices and f'value="{other_tenant.pk}"' in choices
    public = Operator.objects.get(schema_name=get_public_schema_name())
    assert f'value="{public.pk}"' not in choices  # the platform's own row is no operator

    done = client.post(url, {**selected, "apply": "1", "operator": tenant.pk}, follow=True)
    text = done.content.decode()
    assert "已将 1 个桩编号登记到" in text and f"未登记，已属于其他运营商：{HELD}" in text
    assert PileRegistration.objects.get(code=CODE).operator_id == tenant.pk
    assert PileRegistration.objects.get(code=HELD).operator_id == other_tenant.pk  # left as it was
    row = RefusedPileLogin.objects.get(pile_code=CODE)
    assert (row.operator_id, row.reason) == (tenant.pk, RefusedPileLogin.Reason.NOT_IN_ESTATE)

    # The operator's own list links the code to the pile form, code filled in.
    connection.set_tenant(tenant)
    admin = get_user_model().objects.get(username="admin")
    staff = Client(HTTP_HOST="tenant-a.testserver")
    staff.force_login(admin)
    listing = staff.get("/admin/tenants/refusedpilelogin/").content.decode()
    assert f"/admin/stations/pile/add/?code={CODE}" in listing and "添加此桩" in listing
    assert f'value="{CODE}"' in staff.get(f"/admin/stations/pile/add/?code={CODE}").content.decode()


def test_only_staff_who_may_change_can_register(tenant):
    connection.set_schema_to_public()
    row = _refused(CODE)
    viewer = get_user_model().objects.create_user("reg-viewer", password="x", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_refusedpilelogin"))
    client = Client(HTTP_HOST="testserver")
    client.force_login(viewer)
    client.post("/admin/tenants/refusedpilelogin/", {
        "action": "register_to_operator", "_selected_action": [row.pk], "apply": "1", "operator": tenant.pk})
    assert not PileRegistration.objects.filter(code=CODE).exists()
