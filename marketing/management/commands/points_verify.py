from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from evplatform.commands import operators_named


class Command(BaseCommand):
    help = "Check an operator's points ledger: balances equal the sum of entries, running balances chain. Exit 1 if not."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="operator slug, or 'all'")

    def handle(self, *args, **o):
        from marketing.points import points_verify

        failed = []
        for operator in operators_named(o["tenant"]):
            with tenant_context(operator):
                report = points_verify()
            self.stdout.write(f"{operator.slug}: points: {report.accounts} accounts, {report.entries} entries")
            if report.ok:
                self.stdout.write(f"{operator.slug}: points ok")
            else:
                failed.append(f"{operator.slug}: points drift {report.drift}, "
                              f"broken chain at entries {report.broken_chain}")
        if failed:
            raise CommandError("; ".join(failed))
