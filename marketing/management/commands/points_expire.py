from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from evplatform.commands import operators_named


class Command(BaseCommand):
    help = "Expire the operator's (or every operator's) points that are past their expiry (oldest first). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="operator slug, or 'all'")

    def handle(self, *args, **o):
        from marketing.points import points_expire

        for operator in operators_named(o["tenant"]):
            with tenant_context(operator):
                self.stdout.write(f"{operator.slug}: expired {points_expire()} points")
