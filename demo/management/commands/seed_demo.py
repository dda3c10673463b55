from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.interconnect import demo_stations_pull_soon
from demo.seed import DEMO_ADMIN, DEMO_OWNER, seed_demo_operator

SUPERUSER = ("root", "root-admin-123")


class Command(BaseCommand):
    help = "Create or refresh the demo operator and the platform super admin (idempotent)."

    def handle(self, *args, **options):
        User = get_user_model()
        if not User.objects.filter(username=SUPERUSER[0]).exists():
            User.objects.create_superuser(SUPERUSER[0], "", SUPERUSER[1])
        info = seed_demo_operator()
        queued = demo_stations_pull_soon(info.operator)
        port = settings.SITE_PORT
        base = f"{settings.SITE_SCHEME}://"
        public = f"{base}{settings.PUBLIC_HOST}:{port}"
        operator = f"{base}{info.host}:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  充电运营平台 / Charging platform",
                    f"  Super admin      {public}/admin/      {SUPERUSER[0]} / {SUPERUSER[1]}",
                    f"  Demo operator    {operator}/admin/   {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}"
                    f"   ({info.operator.name})",
                    f"  Station owner    {operator}/admin/   {DEMO_OWNER[0]} / {DEMO_OWNER[1]}",
                    f"  API docs         {public}/api/docs/",
                    f"  Driver API       http://127.0.0.1:{port}/api/app/v1/  (header X-Tenant: demo)",
                    f"  YKC gateway      tcp://0.0.0.0:{settings.YKC_GATEWAY_PORT}  (point real piles here)",
                    "  Demo journey     .venv/bin/python manage.py demo_session",
                    f"  Simulated piles  {len(info.pile_codes)} ({', '.join(info.pile_codes[:3])}, …)",
                    "  Partner stations "
                    + ("pulled from the fake CEC peer once the worker starts" if queued
                       else "not queued (broker unreachable): manage.py cec_partner pull-stations"),
                    "",
                ]
            )
        )
