"""``manage.py consistency_check --tenant SLUG|all``: orders, the piles' records, ledger
postings, holds and wallets agree (charging.consistency). Prints each problem; exits 1 on
any, 0 when clean."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from evplatform.commands import operators_named


class Command(BaseCommand):
    help = "Cross-check an operator's orders, records, postings, holds and wallets."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="operator slug, or 'all'")
        parser.add_argument("--grace", type=int, default=120,
                            help="seconds a fresh record may wait for its settlement")

    def handle(self, *args, tenant: str, grace: int, **options):
        from charging.consistency import consistency_check

        operators = operators_named(tenant)
        failed = 0
        for operator in operators:
            with tenant_context(operator):
                report = consistency_check(grace_s=grace)
            for kind, ref, detail in report.problems:
                self.stderr.write(f"{operator.slug}: {kind.upper()} {ref}: {detail}")
            self.stdout.write(
                f"{operator.slug}: {report.orders} orders, {report.records} records, "
                f"{report.settled} settled, {report.abnormal} abnormal, {report.review} to "
                f"review: {'ok' if report.ok else 'PROBLEMS ' + str(report.counts())}"
            )
            failed += not report.ok
        if failed:
            sys.exit(1)
