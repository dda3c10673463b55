from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import operator_create


class Command(BaseCommand):
    help = "Create an operator (tenant): schema cloned from the template, host, operator admin."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain", required=True, help="host name of its admin console")
        parser.add_argument("--admin-user", required=True)
        parser.add_argument("--admin-password", help="generated and printed when omitted")
        parser.add_argument("--admin-email", default="")
        parser.add_argument("--time-zone", default="Asia/Shanghai")

    def handle(self, *args, **o):
        try:
            result = operator_create(
                slug=o["slug"],
                name=o["name"],
                domain=o["domain"],
                admin_username=o["admin_user"],
                admin_password=o["admin_password"],
                admin_email=o["admin_email"],
                time_zone=o["time_zone"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        op = result.operator
        self.stdout.write(
            f"created operator {op.slug} ({op.name}), schema {op.schema_name}, "
            f"host {o['domain']} in {result.seconds:.2f}s"
        )
        if result.admin_password:
            self.stdout.write(f"operator admin: {o['admin_user']} / {result.admin_password}")
