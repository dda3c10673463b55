"""What the gateway commands share (``manage.py ykc_gateway``, ``manage.py ocpp_gateway``):
their options, the open-files limit, the signals that stop them and the event loop.

A gateway command names its protocol and builds its gateway object; the base parses the
common options (``--host``, ``--port``, ``--metrics-host``, ``--metrics-port``,
``--gateway-id``, ``--db-threads``, ``--max-piles``, ``--event-loop``), raises
RLIMIT_NOFILE to its hard limit (one descriptor per pile), runs the gateway until SIGINT
or SIGTERM and then stops it (connections closed, buffers flushed).

The event loop is uvloop unless ``--event-loop asyncio`` (``--no-uvloop``) asks for
asyncio's own: the benchmarks compare the two with it (``--gateway-arg``).
"""

from __future__ import annotations

import asyncio
import resource
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


def raise_nofile_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit (one descriptor per pile); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class GatewayCommand(BaseCommand):
    """Base of a gateway process command. Subclasses set ``default_port`` and
    ``gateway_id_default`` (for the help) and implement :meth:`build` (the gateway from
    the parsed options), :meth:`runner` (its ``run(gateway, stop)`` coroutine function)
    and :meth:`banner` (the line printed at start)."""

    default_port: int = 0
    gateway_id_default = "hostname-pid"

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=self.default_port)
        parser.add_argument("--metrics-host", default=settings.YKC_METRICS_HOST,
                            help="metrics address (default YKC_METRICS_HOST, 127.0.0.1)")
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="serve Prometheus metrics at http://HOST:PORT/metrics")
        parser.add_argument("--gateway-id", default=None,
                            help=f"name on the command bus (default {self.gateway_id_default})")
        parser.add_argument("--db-threads", type=int, default=None)
        parser.add_argument("--max-piles", type=int, default=None,
                            help="pile connections held at most (default: the open-files "
                                 "limit less the gateway's own reserve); more are refused")
        parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="uvloop",
                            help="the event loop (default uvloop)")
        parser.add_argument("--no-uvloop", dest="event_loop", action="store_const",
                            const="asyncio", help="the same as --event-loop asyncio")

    def build(self, options: dict[str, Any]):
        raise NotImplementedError

    def runner(self) -> Callable[..., Awaitable[None]]:
        raise NotImplementedError

    def banner(self, options: dict[str, Any], gateway, limit: int) -> str:
        raise NotImplementedError

    def handle(self, *args, **options):
        limit = raise_nofile_limit()
        gateway = self.build(options)
        run = self.runner()

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run(gateway, stop)

        self.stdout.write(self.banner(options, gateway, limit))
        if options["event_loop"] == "asyncio":
            asyncio.run(main())
        else:
            import uvloop

            uvloop.run(main())
