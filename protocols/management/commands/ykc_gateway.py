"""``manage.py ykc_gateway`` — the YKC v1.6 TCP gateway process (Procfile ``ykc``)."""

from __future__ import annotations

from django.conf import settings

from ..gateway_command import GatewayCommand, raise_nofile_limit

__all__ = ["Command", "raise_nofile_limit"]


class Command(GatewayCommand):
    help = "Run the YKC v1.6 pile gateway (asyncio TCP server)."
    default_port = settings.YKC_GATEWAY_PORT

    def build(self, options):
        from protocols.ykc.gateway import YkcGateway

        return YkcGateway(host=options["host"], port=options["port"],
                          metrics_host=options["metrics_host"],
                          metrics_port=options["metrics_port"],
                          gateway_id=options["gateway_id"], db_threads=options["db_threads"],
                          max_piles=options["max_piles"])

    def runner(self):
        from protocols.ykc.gateway import run

        return run

    def banner(self, options, gateway, limit):
        return (f"YKC gateway on {options['host']}:{options['port']} "
                f"(open files limit {limit}, piles held at most {gateway.max_piles})")
