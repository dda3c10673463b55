"""``manage.py ykc_gateway`` — the YKC v1.6 TCP gateway process (Procfile ``ykc``)."""

from __future__ import annotations

import asyncio
import resource
import signal

from django.conf import settings
from django.core.management.base import BaseCommand


def raise_nofile_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit (one descriptor per pile); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Command(BaseCommand):
    help = "Run the YKC v1.6 pile gateway (asyncio TCP server)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=settings.YKC_GATEWAY_PORT)
        parser.add_argument("--metrics-host", default=settings.YKC_METRICS_HOST,
                            help="metrics address (default YKC_METRICS_HOST, 127.0.0.1)")
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="serve Prometheus metrics at http://HOST:PORT/metrics")
        parser.add_argument("--gateway-id", default=None,
                            help="name on the command bus (default hostname-pid)")
        parser.add_argument("--db-threads", type=int, default=None)
        parser.add_argument("--no-uvloop", action="store_true")

    def handle(self, *args, **options):
        from protocols.ykc.gateway import YkcGateway, run

        limit = raise_nofile_limit()
        gateway = YkcGateway(host=options["host"], port=options["port"],
                             metrics_host=options["metrics_host"],
                             metrics_port=options["metrics_port"],
                             gateway_id=options["gateway_id"], db_threads=options["db_threads"])

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run(gateway, stop)

        self.stdout.write(f"YKC gateway on {options['host']}:{options['port']} "
                          f"(open files limit {limit})")
        if options["no_uvloop"]:
            asyncio.run(main())
        else:
            import uvloop

            uvloop.run(main())
