from decimal import Decimal

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo.journey import Journey, JourneyError


class Command(BaseCommand):
    help = (
        "A driver's journey through the public API and WebSocket of a running platform "
        "(`make run`): log in, top up ¥100, scan, start, watch, stop, bill; then ledger_verify."
    )

    def add_arguments(self, parser):
        parser.add_argument("--api", default=f"http://127.0.0.1:{settings.SITE_PORT}")
        parser.add_argument("--pay", default=settings.WECHATPAY_API_BASE_URL)
        parser.add_argument("--tenant", default="demo")
        parser.add_argument("--driver", default="alice", help="fake WeChat user name")
        parser.add_argument("--top-up", default="100.00", help="yuan")
        parser.add_argument("--stop-at", default="2.0", help="stop after this many kWh")
        parser.add_argument("--connector", help="QR value to scan (default: the first free connector)")
        parser.add_argument("--timeout", type=float, default=180.0, help="seconds")

    def handle(self, *args, **o):
        journey = Journey(
            api_url=o["api"].rstrip("/"), pay_url=o["pay"].rstrip("/"), tenant=o["tenant"],
            driver=o["driver"], top_up=Decimal(o["top_up"]), stop_at_kwh=Decimal(o["stop_at"]),
            connector_code=o["connector"], timeout_s=o["timeout"], say=self.stdout.write,
        )
        try:
            journey.run()
        except JourneyError as exc:
            raise CommandError(str(exc)) from exc
        call_command("ledger_verify", tenant=o["tenant"], stdout=self.stdout)
