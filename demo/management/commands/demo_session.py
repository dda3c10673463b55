from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo.journey import Journey, JourneyError
from demo.owner_settlement import owner_settlement_run
from tenants.selectors import operator_get_by_slug


class Command(BaseCommand):
    help = (
        "A driver's journey through the public API and WebSocket of a running platform "
        "(`make run`): log in, top up ¥100, scan, start, watch, stop, bill; then ledger_verify; "
        "then the station owner's settlement (owner center, statement, WeChat payout, a refund "
        "netted off the next statement) and ledger_verify again."
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
        parser.add_argument(
            "--no-settlement", action="store_true",
            help="skip the station owner's settlement (statement, payout, refund) after the charge",
        )
        parser.add_argument(
            "--marketing", action="store_true",
            help="buy the SVIP plan and claim a coupon first: the bill shows both discounts",
        )
        parser.add_argument(
            "--invoice", action="store_true",
            help="then ask for the order's e-invoice (fake 诺诺) and save its PDF under var/invoices/",
        )

    def handle(self, *args, **o):
        journey = Journey(
            api_url=o["api"].rstrip("/"), pay_url=o["pay"].rstrip("/"), tenant=o["tenant"],
            driver=o["driver"], top_up=Decimal(o["top_up"]), stop_at_kwh=Decimal(o["stop_at"]),
            connector_code=o["connector"], timeout_s=o["timeout"], say=self.stdout.write,
            marketing=o["marketing"],
        )
        try:
            result = journey.run()
            if o["invoice"]:
                journey.invoice(result["order"]["number"], Path(settings.BASE_DIR) / "var" / "invoices")
        except JourneyError as exc:
            raise CommandError(str(exc)) from exc
        call_command("ledger_verify", tenant=o["tenant"], stdout=self.stdout)
        if o["no_settlement"]:
            return
        operator = operator_get_by_slug(o["tenant"])
        try:
            owner_settlement_run(
                operator=operator, order_number=result["order"]["number"], api_url=journey.api_url,
                pay_url=journey.pay_url, say=self.stdout.write, timeout_s=o["timeout"],
            )
        except JourneyError as exc:
            raise CommandError(str(exc)) from exc
        call_command("ledger_verify", tenant=o["tenant"], stdout=self.stdout)
