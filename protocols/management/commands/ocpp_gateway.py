"""``manage.py ocpp_gateway`` — the OCPP 1.6J WebSocket gateway process (Procfile ``ocpp``)."""

from __future__ import annotations

from django.conf import settings

from ..gateway_command import GatewayCommand


class Command(GatewayCommand):
    help = "Run the OCPP 1.6J central-system gateway (ws://HOST:PORT/ocpp/{chargePointId})."
    default_port = settings.OCPP_GATEWAY_PORT
    gateway_id_default = "ocpp-hostname-pid"

    def build(self, options):
        from protocols.ocpp.gateway import OcppGateway

        return OcppGateway(host=options["host"], port=options["port"],
                           metrics_host=options["metrics_host"],
                           metrics_port=options["metrics_port"],
                           gateway_id=options["gateway_id"], db_threads=options["db_threads"],
                           max_piles=options["max_piles"])

    def runner(self):
        from protocols.ocpp.gateway import run

        return run

    def banner(self, options, gateway, limit):
        return (f"OCPP 1.6J gateway on ws://{options['host']}:{options['port']}"
                f"/ocpp/{{chargePointId}} (open files limit {limit}, piles held at most "
                f"{gateway.max_piles})")
