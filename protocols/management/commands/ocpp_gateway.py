"""``manage.py ocpp_gateway`` — the OCPP 1.6J WebSocket gateway process (Procfile ``ocpp``)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from .ykc_gateway import raise_nofile_limit


class Command(BaseCommand):
    help = "Run the OCPP 1.6J central-system gateway (ws://HOST:PORT/ocpp/{chargePointId})."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=settings.OCPP_GATEWAY_PORT)
        parser.add_argument("--metrics-host", default=settings.YKC_METRICS_HOST,
                            help="metrics address (default YKC_METRICS_HOST, 127.0.0.1)")
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="serve Prometheus metrics at http://HOST:PORT/metrics")
        parser.add_argument("--gateway-id", default=None,
                            help="name on the command bus (default ocpp-hostname-pid)")
        parser.add_argument("--db-threads", type=int, default=None)
        parser.add_argument("--no-uvloop", action="store_true")

    def handle(self, *args, **options):
        from protocols.ocpp.gateway import OcppGateway, run

        limit = raise_nofile_limit()
        gateway = OcppGateway(host=options["host"], port=options["port"],
                              metrics_host=options["metrics_host"],
                              metrics_port=options["metrics_port"],
                              gateway_id=options["gateway_id"], db_threads=options["db_threads"])

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run(gateway, stop)

        self.stdout.write(f"OCPP 1.6J gateway on ws://{options['host']}:{options['port']}"
                          f"/ocpp/{{chargePointId}} (open files limit {limit})")
        if options["no_uvloop"]:
            asyncio.run(main())
        else:
            import uvloop

            uvloop.run(main())
