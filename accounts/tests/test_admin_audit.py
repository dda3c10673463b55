"""Staff changes in the admin are in the audit log with before and after (issue #18):
an add, a change (only the changed fields) and a delete through the admin's own views,
and a refund review by its admin action."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import AuditEntry
from billing.payments.models import TopUpOffer

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff(tenant, django_user_model):
    user = django_user_model.objects.create_superuser("ops-audit", password="x-pass-123")
    client = Client()
    client.force_login(user)
    return client


def test_add_change_and_delete_in_the_admin_are_audited_with_before_and_after(staff):
    url = "/admin/billing/topupoffer/"
    response = staff.post(url + "add/", {"pay_amount": "100.00", "bonus_amount": "10.00",
                                         "active": "on"}, **HOST)
    assert response.status_code == 302, response.content.decode()[:2000]
    offer = TopUpOffer.objects.get()
    added = AuditEntry.objects.get(action="model.add")
    assert (added.actor_name, added.target_type, added.target_id) == (
        "ops-audit", "billing.topupoffer", str(offer.pk))
    assert added.changes["pay_amount"] == [None, "100.00"]

    # Only what changed, before and after.
    response = staff.post(f"{url}{offer.pk}/change/", {"pay_amount": "100.00",
                                                       "bonus_amount": "15.00"}, **HOST)
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = AuditEntry.objects.get(action="model.change")
    assert changed.changes == {"bonus_amount": ["10.00", "15.00"], "active": ["True", "False"]}
    # Saving without a change records nothing more.
    staff.post(f"{url}{offer.pk}/change/", {"pay_amount": "100.00", "bonus_amount": "15.00"},
               **HOST)
    assert AuditEntry.objects.filter(action="model.change").count() == 1

    response = staff.post(f"{url}{offer.pk}/delete/", {"post": "yes"}, **HOST)
    assert response.status_code == 302
    assert not TopUpOffer.objects.exists()
    deleted = AuditEntry.objects.get(action="model.delete")
    assert (deleted.target_id, deleted.actor_name) == (str(offer.pk), "ops-audit")

    # The delete action on a selection: one entry per object.
    offers = [TopUpOffer.objects.create(pay_amount=Decimal(n), bonus_amount=Decimal(1))
              for n in (50, 200)]
    staff.post(url, {"action": "delete_selected", "_selected_action": [o.pk for o in offers],
                     "post": "yes"}, **HOST)
    assert set(AuditEntry.objects.filter(action="model.delete").values_list(
        "target_id", flat=True)) == {str(offer.pk)} | {str(o.pk) for o in offers}
    log = staff.get("/admin/accounts/auditentry/", **HOST).content.decode()
    assert "后台修改" in log and "后台删除" in log
