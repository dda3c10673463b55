from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.services import platform_ensure, template_schema_ensure


class Command(BaseCommand):
    help = (
        "Bring the database up to date: public schema, the platform's public tenant, the "
        "template schema new operators are cloned from, then every operator. Idempotent."
    )

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        platform_ensure()
        template_schema_ensure(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)
        self.stdout.write("database ready")
