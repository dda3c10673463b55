"""``manage.py reconcile --tenant SLUG|all``: run the reconcilers now, as beat would.

For each operator: orders (starts past their deadline, unconfirmed stops re-sent, silent
charges asked, records settled, reservations expired), payments (lost notifications,
refunds, withdrawals) and the offline check; prints what each did. Then lists the tasks a
worker took and has not acknowledged (parked by a worker that died until the broker's
visibility timeout returns them).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from evplatform.commands import operators_named


class Command(BaseCommand):
    help = "Run the order, payment and offline reconcilers of an operator now."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="operator slug, or 'all'")

    def handle(self, *args, tenant: str, **options):
        from billing.payments import services as billing_services
        from charging import services as charging_services
        from evplatform.celery import parked_tasks
        from stations import services as station_services

        operators = operators_named(tenant)
        for operator in operators:
            with tenant_context(operator):
                orders = charging_services.orders_reconcile()
                payments = billing_services.reconcile()
                offline = station_services.piles_mark_offline()
            self.stdout.write(
                f"{operator.slug}: orders {_fmt(orders)}; payments "
                f"payments={payments.payments} refunds={payments.refunds} "
                f"withdrawals={payments.withdrawals}; piles marked offline {len(offline)}"
            )
        parked = parked_tasks()
        self.stdout.write(f"unacknowledged tasks: {len(parked)}")
        for task in parked:
            self.stdout.write(
                f"  {task['task']} [{task['schema'] or 'public'}] {task['id']}: taken "
                f"{task['age_s']} s ago, back in the queue in {task['returns_in_s']} s"
            )


def _fmt(counts: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items())
