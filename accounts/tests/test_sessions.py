"""Driver sessions (issue 21, item 6): refresh tokens rotate on use and can be revoked
(logout, reuse of a spent one, member disabled); staff sessions end on a password change."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Member, MemberSession
from accounts.services import tokens_for

REFRESH = "/api/app/v1/auth/refresh"
LOGOUT = "/api/app/v1/auth/logout"
ME = "/api/app/v1/me"


def _refresh(token: str):
    return APIClient(HTTP_X_TENANT="tenant-a").post(REFRESH, {"refresh": token}, format="json")


def _me(access: str):
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {access}").get(ME)


def test_refresh_rotates_and_a_spent_token_is_refused(member):
    first = tokens_for(member)
    r = _refresh(first.refresh)
    assert r.status_code == 200
    second = r.json()
    assert second["refresh"] != first.refresh
    # The spent token again: only a copy can hold it, so the whole sign-in ends ...
    r = _refresh(first.refresh)
    assert r.status_code == 401 and r.json()["code"] == "token_reused"
    session = MemberSession.objects.get(member=member)
    assert session.revoked_reason == MemberSession.Revoked.REUSED
    # ... including the tokens the rightful holder got from the rotation.
    assert _refresh(second["refresh"]).json()["code"] == "token_revoked"
    assert _me(second["access"]).json()["code"] == "token_revoked"


def test_each_login_is_its_own_session(member):
    phone, tablet = tokens_for(member), tokens_for(member)
    assert _refresh(phone.refresh).status_code == 200
    assert _refresh(tablet.refresh).status_code == 200
    assert MemberSession.objects.filter(member=member).count() == 2


def test_logout_ends_the_refresh_and_access_tokens(member):
    pair, other_device = tokens_for(member), tokens_for(member)
    assert _me(pair.access).status_code == 200
    r = APIClient(HTTP_AUTHORIZATION=f"Bearer {pair.access}").post(LOGOUT)
    assert r.status_code == 204
    assert _me(pair.access).json()["code"] == "token_revoked"
    assert _refresh(pair.refresh).json()["code"] == "token_revoked"
    # Another device's sign-in is untouched.
    assert _me(other_device.access).status_code == 200


def test_logout_needs_a_token(api):
    assert api.post(LOGOUT).status_code == 401


def test_disabling_a_member_in_the_admin_revokes_its_sessions(member, tenant):
    pair = tokens_for(member)
    admin = get_user_model().objects.create_superuser("ops", password="ops-pass-123")
    client = Client(HTTP_HOST="tenant-a.testserver")
    client.force_login(admin)
    r = client.post(
        f"/admin/accounts/member/{member.pk}/change/",
        {"nickname": member.nickname, "phone": "", "status": "disabled"},
    )
    assert r.status_code == 302, r.content[:500]
    assert MemberSession.objects.get(member=member).revoked_reason == "member_disabled"
    # Enabled again, the old sign-in stays ended: the member logs in anew.
    Member.objects.filter(pk=member.pk).update(status="active")
    assert _me(pair.access).json()["code"] == "token_revoked"
    assert _refresh(pair.refresh).json()["code"] == "token_revoked"


def test_tokens_without_a_session_are_refused(member, tenant, settings):
    import jwt

    legacy = jwt.encode(
        {"sub": str(member.pk), "ten": tenant.schema_name, "typ": "access", "exp": 4102444800},
        settings.SECRET_KEY, algorithm="HS256",
    )
    assert _me(legacy).status_code == 401


def test_staff_password_change_ends_their_other_sessions(tenant):
    user = get_user_model().objects.create_superuser("clerk", password="old-pass-123")
    elsewhere = Client(HTTP_HOST="tenant-a.testserver")
    elsewhere.force_login(user)
    assert elsewhere.get("/admin/").status_code == 200
    here = Client(HTTP_HOST="tenant-a.testserver")
    here.force_login(user)
    r = here.post(
        "/admin/password_change/",
        {"old_password": "old-pass-123", "new_password1": "n3w-Pass-456!", "new_password2": "n3w-Pass-456!"},
    )
    assert r.status_code == 302
    assert here.get("/admin/").status_code == 200  # the session that changed it goes on
    r = elsewhere.get("/admin/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
