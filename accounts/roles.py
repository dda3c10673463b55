"""Staff roles inside an operator: operator admin and station owner (站长).

Each role is a Group whose permissions are listed here by ``app_label.codename``; a
permission that does not exist yet (its app not installed) is skipped.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import connection
from django_tenants.utils import get_public_schema_name

OPERATOR_ADMIN = "operator_admin"
STATION_OWNER = "station_owner"

ROLE_NAMES = {OPERATOR_ADMIN: "平台管理员", STATION_OWNER: "站长"}

# Station owners see and edit their own stations and what hangs off them; scoping to
# their own objects is done by the admin classes of those models.
STATION_OWNER_PERMISSIONS = [
    "stations.view_station",
    "stations.change_station",
    "stations.view_pile",
    "stations.change_pile",
    "stations.view_connector",
    "stations.change_connector",
    "stations.view_fault",
    "charging.view_chargingorder",
    "billing.view_tariff",
    "settlement.view_statement",
    "settlement.view_payout",
    "settlement.view_ordersplit",
    "settlement.view_splitrule",
    # The frame log and samples of their own piles (the protocols and charging admins
    # narrow them).
    "protocols.view_framelog",
    "charging.view_metersample",
    "protocols.view_sessionmessage",
    # Exports of what they see (each admin exports only the owner's own rows).
    "stations.export_station",
    "stations.export_pile",
    "stations.export_connector",
    "charging.export_chargingorder",
    "settlement.export_ordersplit",
    "settlement.export_statement",
    # Alarms of their own piles (acknowledge, close) and the remote-control page, where
    # the operator's ControlPolicy says which commands they may send.
    "operations.view_alarm",
    "operations.change_alarm",
    "operations.view_pilecontrol",
    # The model-change log of their own stations, piles, connectors, tariff assignments and
    # split rules (operations.model_changes.visible narrows it).
    "operations.view_modelchange",
]


def role_group(role: str) -> Group:
    group, _ = Group.objects.get_or_create(name=ROLE_NAMES[role])
    return group


def roles_sync() -> None:
    """Create both role groups in the current schema and set their permissions (after
    making the ``export_*`` permissions of the exporting admins)."""
    from evplatform.admin_export import export_permissions_ensure

    export_permissions_ensure()
    admin_group = role_group(OPERATOR_ADMIN)
    tenant_labels = {"accounts", "stations", "charging", "billing", "settlement", "marketing", "ykc",
                     "protocols", "operations"}
    admin_group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=tenant_labels)
    )
    owner_group = role_group(STATION_OWNER)
    wanted = [p.split(".") for p in STATION_OWNER_PERMISSIONS]
    perms = [
        perm
        for perm in Permission.objects.select_related("content_type").filter(
            codename__in=[c for _, c in wanted]
        )
        if [perm.content_type.app_label, perm.codename] in wanted
    ]
    owner_group.permissions.set(perms)


def roles_sync_after_migrate(sender, **kwargs) -> None:
    # Runs after each app's permissions are created, so the last app's run sees them all.
    if connection.schema_name == get_public_schema_name():
        return
    roles_sync()
