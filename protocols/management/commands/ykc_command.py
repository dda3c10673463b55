"""``manage.py ykc_command`` — send one command to a connected YKC pile over the bus."""

from __future__ import annotations

import json
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Send a command to a pile through its gateway: time-sync (0x56), reboot (0x92), "
            "work-params (0x52), billing-model (0x58), start (0x34), stop (0x36), "
            "read (0x12), balance (0x42).")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("time-sync", "reboot", "work-params",
                                               "billing-model", "start", "stop", "read",
                                               "balance"))
        parser.add_argument("--tenant", required=True, help="operator slug")
        parser.add_argument("--pile", required=True, help="pile code")
        parser.add_argument("--connector", type=int, default=1)
        parser.add_argument("--when", type=int, default=2, help="reboot: 1 now, 2 when idle")
        parser.add_argument("--disable", action="store_true", help="work-params: forbid charging")
        parser.add_argument("--max-power", type=int, default=100, help="work-params: 30–100 %%")
        parser.add_argument("--trade-no", default="", help="start: 32-digit transaction number")
        parser.add_argument("--balance", default="0", help="start/balance: yuan")
        parser.add_argument("--timeout", type=float, default=10.0)

    def handle(self, *args, **o):
        from charging import bus, handlers, port
        from protocols.ykc.commands import (
            YkcPushBillingModel,
            YkcReboot,
            YkcTimeSync,
            YkcWorkParams,
        )

        schema = handlers.dispatch(None, port.OperatorQuery(o["tenant"]))
        if schema is None:
            raise CommandError(f"no operator {o['tenant']!r}")
        pile, no = o["pile"], o["connector"]
        command = {
            "time-sync": lambda: YkcTimeSync(pile),
            "reboot": lambda: YkcReboot(pile, o["when"]),
            "work-params": lambda: YkcWorkParams(pile, not o["disable"], o["max_power"]),
            "billing-model": lambda: YkcPushBillingModel(pile),
            "start": lambda: port.RemoteStart(pile, no, o["trade_no"], Decimal(o["balance"])),
            "stop": lambda: port.RemoteStop(pile, no),
            "read": lambda: port.ReadRealtime(pile, no),
            "balance": lambda: port.BalanceUpdate(pile, no, Decimal(o["balance"])),
        }[o["action"]]()
        result = bus.send(schema, command, timeout=o["timeout"])
        self.stdout.write(json.dumps({"ok": result.ok, "error": result.error,
                                      "detail": result.detail}, ensure_ascii=False))
        if not result.ok:
            raise CommandError(result.error)
