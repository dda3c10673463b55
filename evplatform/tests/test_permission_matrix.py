"""The admin permission matrix, generated from the admin registries, asserted over HTTP.

For every model registered in the operator admin and every role — the operator's superuser,
an operator admin (平台管理员, not a superuser), a station owner (站长) and view-only staff
(every view permission, nothing else) — the list view, the export and every action
(Django's site-wide ones included) are tried through the admin's URLs. What a role may do
is what its permissions grant (``accounts.roles`` is the policy) intersected with what the
admin allows at all (what the superuser gets: a read-only admin refuses even them). A model
or action added later is in the matrix without touching this file; an action needing a
permission this file cannot map to a codename fails until the mapping says what it means.

The platform admin (public host) is tried for its super admin and a staff user who is not
a superuser (refused everywhere).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django_tenants.utils import get_public_schema_name, schema_context

from accounts.roles import (
    OPERATOR_ADMIN,
    ROLE_NAMES,
    STATION_OWNER,
    STATION_OWNER_PERMISSIONS,
    role_group,
)
from evplatform.admin_export import exporting_admins
from evplatform.admin_sites import platform_admin_site
from evplatform.tests.helpers import export_form_data

HOST = "tenant-a.testserver"
ROLES = ["superuser", "operator_admin", "station_owner", "view_only"]
OPERATOR_MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)
PLATFORM_MODELS = sorted(platform_admin_site._registry, key=lambda m: m._meta.label)

# An action's declared permission → the codename it stands for ({model}: the model's name).
# Read-only admins cannot use Django's change permission for their actions, so theirs have
# a name of their own that means the same right.
ACTION_PERMISSIONS = {
    "view": "view_{model}",
    "add": "add_{model}",
    "change": "change_{model}",
    "delete": "delete_{model}",
    "review": "change_{model}",  # approve/reject refunds and withdrawals
    "sync": "change_{model}",  # ask WeChat Pay for a payment's state
    "settle": "settle_statement",  # confirm and pay statements
    "approve": "approve_owner_withdrawal",  # one of the two approvals of an owner's withdrawal
}


def _url(model, suffix: str = "") -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


@pytest.fixture
def calls(monkeypatch):
    """Every admin action is replaced by a spy with the same declared permissions: the
    admin still decides whether it may run (and on which rows), nothing is really done."""
    seen: list[tuple[str, str, list]] = []
    original = ModelAdmin.get_action

    def get_action(self, action):
        got = original(self, action)
        if got is None:
            return None
        func, name, description = got

        def spy(modeladmin, request, queryset):
            seen.append((request.user.username, name, list(queryset.values_list("pk", flat=True))))

        if hasattr(func, "allowed_permissions"):
            spy.allowed_permissions = func.allowed_permissions
        return spy, name, description

    monkeypatch.setattr(ModelAdmin, "get_action", get_action)
    return seen


def _user(username: str, *, superuser=False, groups: Iterable[Group] = (), perms=()):
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username, password="x-pass-123")
    else:
        user = User.objects.create_user(username, password="x-pass-123", is_staff=True)
    user.groups.add(*groups)
    user.user_permissions.add(*perms)
    return user


def _perms(codes: Iterable[str]) -> set[str]:
    return set(codes)


@pytest.fixture
def roles(tenant):
    """username → (client, the permissions the role's policy grants; None: all)."""
    every = Permission.objects.select_related("content_type")
    view_perms = [p for p in every if p.codename.startswith("view_")]
    admin_group = role_group(OPERATOR_ADMIN)
    users = {
        "superuser": (_user("m-super", superuser=True), None),
        "operator_admin": (_user("m-opadmin", groups=[admin_group]),
                           {f"{p.content_type.app_label}.{p.codename}"
                            for p in admin_group.permissions.select_related("content_type")}),
        "station_owner": (_user("m-owner", groups=[role_group(STATION_OWNER)]),
                          _perms(STATION_OWNER_PERMISSIONS)),
        "view_only": (_user("m-viewer", perms=view_perms),
                      {f"{p.content_type.app_label}.{p.codename}" for p in view_perms}),
    }
    assert admin_group.name == ROLE_NAMES[OPERATOR_ADMIN]
    out = {}
    for role, (user, granted) in users.items():
        client = Client(HTTP_HOST=HOST)
        client.force_login(user)
        out[role] = (client, user, granted)
    return out


def _grants(granted: set[str] | None, model, codename_pattern: str) -> bool:
    if granted is None:
        return True
    codename = codename_pattern.format(model=model._meta.model_name)
    return f"{model._meta.app_label}.{codename}" in granted


def _may_view(granted, model) -> bool:
    return _grants(granted, model, "view_{model}") or _grants(granted, model, "change_{model}")


def _actions(model_admin, request) -> dict[str, tuple]:
    """Every action the admin has at all (what the superuser sees), by name."""
    return {name: tuple(getattr(func, "allowed_permissions", ()))
            for func, name, _ in model_admin._get_base_actions()}


def test_every_action_declares_its_permission():
    """No action of either admin runs on the bare list permission."""
    undeclared = []
    for site in (admin.site, platform_admin_site):
        for model, model_admin in site._registry.items():
            for func, name, _ in model_admin._get_base_actions():
                if not getattr(func, "allowed_permissions", None):
                    undeclared.append(f"{model._meta.label}.{name}")
                for perm in getattr(func, "allowed_permissions", ()):
                    if perm not in ACTION_PERMISSIONS:
                        undeclared.append(f"{model._meta.label}.{name}: '{perm}' unmapped")
    assert undeclared == []


def test_every_export_needs_the_export_permission_and_the_lists_scoping():
    from evplatform.admin_export import ScopedExportMixin

    loose = [type(ma).__name__ for ma in exporting_admins()
             if hasattr(ma, "export_action") and not isinstance(ma, ScopedExportMixin)]
    assert loose == []


@pytest.mark.parametrize("model", OPERATOR_MODELS, ids=lambda m: m._meta.label)
def test_operator_admin_matrix(model, roles, calls, rf):
    model_admin = admin.site._registry[model]
    exports = hasattr(model_admin, "export_action")
    su_client = roles["superuser"][0]
    assert su_client.get(_url(model)).status_code == 200, "the superuser sees every list"
    if exports:
        assert su_client.get(_url(model, "export/")).status_code == 200
        r = su_client.post(_url(model, "export/"), export_form_data(model))
        assert "attachment" in r["Content-Disposition"]
    request = rf.get("/")
    request.user = roles["superuser"][1]
    actions = _actions(model_admin, request)
    # What the admin lets the superuser run is what it allows at all.
    possible = set()
    for name in actions:
        calls.clear()
        su_client.post(_url(model), {"action": name, "index": "0", "select_across": "1",
                                     "_selected_action": ["0"]})
        if calls:
            possible.add(name)

    failures = []
    for role in ROLES[1:]:
        client, user, granted = roles[role]
        may_view = _may_view(granted, model)
        status = client.get(_url(model)).status_code
        if status != (200 if may_view else 403):
            failures.append(f"{role}: list {status}, expected {'200' if may_view else '403'}")
        if exports:
            may_export = may_view and _grants(granted, model, "export_{model}")
            status = client.get(_url(model, "export/")).status_code
            if status != (200 if may_export else 403):
                failures.append(f"{role}: export page {status}")
            r = client.post(_url(model, "export/"), export_form_data(model))
            got_file = r.status_code == 200 and "attachment" in r.get("Content-Disposition", "")
            if got_file != may_export or (not may_export and r.status_code != 403):
                failures.append(f"{role}: export file {r.status_code}")
        for name, needs in actions.items():
            allowed = name in possible and may_view and all(
                _grants(granted, model, ACTION_PERMISSIONS[p]) for p in needs)
            calls.clear()
            client.post(_url(model), {"action": name, "index": "0", "select_across": "1",
                                      "_selected_action": ["0"]})
            ran = any(who == user.username for who, _, _ in calls)
            if ran != allowed:
                failures.append(f"{role}: action {name} {'ran' if ran else 'refused'}")
    assert failures == []


def test_the_matrix_covers_every_role_and_model():
    """The parametrisation follows the registry: a newly registered model is in it."""
    assert {m._meta.label for m in OPERATOR_MODELS} == {m._meta.label for m in admin.site._registry}
    assert "billing.Payment" in {m._meta.label for m in OPERATOR_MODELS}


@pytest.fixture
def platform_clients(tenant):
    with schema_context(get_public_schema_name()):
        User = get_user_model()
        root = User.objects.create_superuser("m-root", password="x-pass-123")
        staff = User.objects.create_user("m-pstaff", password="x-pass-123", is_staff=True)
        staff.user_permissions.add(*Permission.objects.all())
        clients = {}
        for name, user in (("super_admin", root), ("staff", staff)):
            client = Client(HTTP_HOST="testserver")
            client.force_login(user)
            clients[name] = client
    return clients


@pytest.mark.parametrize("model", PLATFORM_MODELS, ids=lambda m: m._meta.label)
def test_platform_admin_matrix(model, platform_clients, calls):
    """Only the platform's superusers use its admin, even staff holding every permission."""
    model_admin = platform_admin_site._registry[model]
    assert platform_clients["super_admin"].get(_url(model)).status_code == 200
    r = platform_clients["staff"].get(_url(model))
    assert r.status_code == 302 and "/login/" in r["Location"]
    for _func, name, _ in model_admin._get_base_actions():
        calls.clear()
        r = platform_clients["staff"].post(_url(model), {"action": name, "index": "0",
                                                         "select_across": "1",
                                                         "_selected_action": ["0"]})
        assert r.status_code == 302 and calls == []
