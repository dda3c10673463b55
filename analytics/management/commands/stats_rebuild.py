"""``manage.py stats_rebuild --tenant SLUG --from 2026-01-01 --to 2026-01-31``: recompute the
aggregates of each local day in the range (inclusive), idempotently."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context

from evplatform.commands import operators_named


class Command(BaseCommand):
    help = "Recompute the statistics of an operator for a range of days."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="operator slug or schema name, or 'all'")
        parser.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
        parser.add_argument("--to", dest="end", required=True, type=date.fromisoformat)

    def handle(self, *args, tenant, start, end, **options):
        from ...services import stats_day_rebuild

        operators = operators_named(tenant)
        if end < start:
            raise CommandError(_("--to is before --from."))
        for operator in operators:
            with tenant_context(operator):
                day = start
                while day <= end:
                    result = stats_day_rebuild(day=day)
                    self.stdout.write(f"{operator.slug} {day}: {result['connector_days']} connector days")
                    day += timedelta(days=1)
