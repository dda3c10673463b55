from django.core.management.base import BaseCommand, CommandError

from tenants.selectors import operator_get_by_slug
from tenants.services import operator_set_status


class StatusCommand(BaseCommand):
    status: str

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        operator = operator_get_by_slug(slug)
        if operator is None:
            raise CommandError(f"no operator with slug {slug!r}")
        operator_set_status(operator=operator, status=self.status)
        self.stdout.write(f"operator {slug} is now {self.status}")
