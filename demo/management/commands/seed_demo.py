from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.seed import DEMO_ADMIN, seed_demo_operator

SUPERUSER = ("root", "root-admin-123")


class Command(BaseCommand):
    help = "Create or refresh the demo operator and the platform super admin (idempotent)."

    def handle(self, *args, **options):
        User = get_user_model()
        if not User.objects.filter(username=SUPERUSER[0]).exists():
            User.objects.create_superuser(SUPERUSER[0], "", SUPERUSER[1])
        info = seed_demo_operator()
        port = settings.SITE_PORT
        base = f"{settings.SITE_SCHEME}://"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  Charging platform is starting.",
                    f"  Super admin     {base}{settings.PUBLIC_HOST}:{port}/admin/   "
                    f"{SUPERUSER[0]} / {SUPERUSER[1]}",
                    f"  Demo operator   {base}{info.host}:{port}/admin/   "
                    f"{DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}   ({info.operator.name})",
                    f"  API docs        {base}{settings.PUBLIC_HOST}:{port}/api/docs/",
                    f"  Health          {base}{settings.PUBLIC_HOST}:{port}/healthz",
                    "",
                ]
            )
        )
