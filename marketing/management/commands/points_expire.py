from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from tenants.selectors import operator_get_by_slug


class Command(BaseCommand):
    help = "Expire an operator's points that are past their expiry (oldest first). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)

    def handle(self, *args, **o):
        from marketing.points import points_expire

        with tenant_context(operator_get_by_slug(o["tenant"])):
            self.stdout.write(f"expired {points_expire()} points")
