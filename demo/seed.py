"""The demo operator that `make run` shows. Idempotent: run it as often as you like."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from tenants.models import MiniProgram, Operator
from tenants.selectors import operator_get_by_slug
from tenants.services import operator_create

DEMO_SLUG = "demo"
DEMO_NAME = "绿源充电（演示）"
DEMO_APPID = "wxdemo0000000001"
DEMO_APP_SECRET = "demo-app-secret"
DEMO_ADMIN = ("demo-admin", "demo-admin-123")


@dataclass
class DemoInfo:
    operator: Operator
    host: str
    created: bool


def demo_host() -> str:
    return f"{DEMO_SLUG}.{settings.TENANT_HOST_SUFFIX}"


def seed_demo_operator() -> DemoInfo:
    operator = operator_get_by_slug(DEMO_SLUG)
    created = operator is None
    if created:
        operator = operator_create(
            slug=DEMO_SLUG,
            name=DEMO_NAME,
            domain=demo_host(),
            admin_username=DEMO_ADMIN[0],
            admin_password=DEMO_ADMIN[1],
            contact_name="演示联系人",
            contact_phone="020-00000000",
        ).operator
    with transaction.atomic():
        MiniProgram.objects.update_or_create(
            operator=operator, defaults={"appid": DEMO_APPID, "app_secret": DEMO_APP_SECRET}
        )
    return DemoInfo(operator=operator, host=demo_host(), created=created)
