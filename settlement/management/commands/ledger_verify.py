"""``manage.py ledger_verify --tenant SLUG``: recompute balances from entries.

Prints drift (cached balance ≠ Σ entries), unbalanced or one-line postings and accounts
below zero that may not be; exits 1 on any problem, 0 when clean.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from evplatform.commands import operators_named
from settlement.selectors import ledger_check


class Command(BaseCommand):
    help = "Check an operator's ledger: balances recomputed from entries, postings balanced."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="operator slug, or 'all'")

    def handle(self, *args, tenant: str, **options):
        operators = operators_named(tenant)
        problems = 0
        for operator in operators:
            with tenant_context(operator):
                report = ledger_check()
            for code, cached, computed in report.drift:
                self.stderr.write(f"{operator.slug}: DRIFT {code}: cached {cached}, entries {computed}")
            for key, total in report.unbalanced:
                self.stderr.write(f"{operator.slug}: UNBALANCED posting {key}: sum {total}")
            for key in report.single_entry:
                self.stderr.write(f"{operator.slug}: ONE-LINE posting {key}")
            for code, balance in report.negative:
                self.stderr.write(f"{operator.slug}: NEGATIVE {code}: {balance}")
            for code, balance, expected in report.payables:
                self.stderr.write(
                    f"{operator.slug}: PAYABLE {code}: balance {balance}, splits − payouts {expected}"
                )
            status = "ok" if report.ok else "PROBLEMS"
            self.stdout.write(
                f"{operator.slug}: {report.accounts} accounts, {report.postings} postings: {status}"
            )
            problems += not report.ok
        if problems:
            sys.exit(1)
