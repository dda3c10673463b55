"""``manage.py ocpp_command`` — send one command to a connected OCPP 1.6J pile over the bus."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Send a command to an OCPP pile through its gateway: reset, availability, unlock, "
            "trigger, get-config, set-config, data-transfer, stop (RemoteStopTransaction), "
            "read (TriggerMessage MeterValues).")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("reset", "availability", "unlock", "trigger",
                                               "get-config", "set-config", "data-transfer",
                                               "stop", "read"))
        parser.add_argument("--tenant", required=True, help="operator slug")
        parser.add_argument("--pile", required=True, help="pile code (chargePointId)")
        parser.add_argument("--connector", type=int, default=1)
        parser.add_argument("--type", default="", help="reset: Soft|Hard; availability: "
                                                       "Operative|Inoperative")
        parser.add_argument("--message", default="StatusNotification", help="trigger: message")
        parser.add_argument("--key", action="append", default=[], help="get/set-config key")
        parser.add_argument("--value", default="", help="set-config value; data-transfer data")
        parser.add_argument("--vendor", default="", help="data-transfer vendorId")
        parser.add_argument("--message-id", default="", help="data-transfer messageId")
        parser.add_argument("--timeout", type=float, default=10.0)

    def handle(self, *args, **o):
        from charging import bus, handlers, port
        from protocols.ocpp import commands as c

        schema = handlers.dispatch(None, port.OperatorQuery(o["tenant"]))
        if schema is None:
            raise CommandError(f"no operator {o['tenant']!r}")
        pile, no = o["pile"], o["connector"]
        if o["action"] == "set-config" and len(o["key"]) != 1:
            raise CommandError("set-config takes one --key")
        command = {
            "reset": lambda: c.OcppReset(pile, o["type"] or "Soft"),
            "availability": lambda: c.OcppChangeAvailability(pile, no, o["type"] or "Operative"),
            "unlock": lambda: c.OcppUnlockConnector(pile, no),
            "trigger": lambda: c.OcppTriggerMessage(pile, o["message"], no or None),
            "get-config": lambda: c.OcppGetConfiguration(pile, tuple(o["key"])),
            "set-config": lambda: c.OcppChangeConfiguration(pile, o["key"][0], o["value"]),
            "data-transfer": lambda: c.OcppDataTransfer(pile, o["vendor"], o["message_id"],
                                                        o["value"]),
            "stop": lambda: port.RemoteStop(pile, no),
            "read": lambda: port.ReadRealtime(pile, no),
        }[o["action"]]()
        result = bus.send(schema, command, timeout=o["timeout"])
        self.stdout.write(json.dumps({"ok": result.ok, "error": result.error,
                                      "detail": result.detail}, ensure_ascii=False))
        if not result.ok:
            raise CommandError(result.error)
