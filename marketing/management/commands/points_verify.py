from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from tenants.selectors import operator_get_by_slug


class Command(BaseCommand):
    help = "Check an operator's points ledger: balances equal the sum of entries, running balances chain. Exit 1 if not."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)

    def handle(self, *args, **o):
        from marketing.points import points_verify

        with tenant_context(operator_get_by_slug(o["tenant"])):
            report = points_verify()
        self.stdout.write(f"points: {report.accounts} accounts, {report.entries} entries")
        if not report.ok:
            raise CommandError(f"points drift {report.drift}, broken chain at entries {report.broken_chain}")
        self.stdout.write("points ok")
