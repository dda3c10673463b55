"""``manage.py ocpp_simulate`` — simulated OCPP 1.6J charge points
(protocols/ocpp/simulator.py) for demos, tests and load: one process, many piles."""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from protocols.ocpp.simulator import SCENARIOS

from ..gateway_command import raise_nofile_limit


class Command(BaseCommand):
    help = "Simulate OCPP 1.6J charge points against the OCPP gateway."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=None,
                            help="gateway base URL (default ws://127.0.0.1:OCPP_PORT/ocpp)")
        parser.add_argument("--pile", action="append", default=[], dest="piles",
                            help="charge point id = pile code (repeat)")
        parser.add_argument("--piles-from-db", action="store_true",
                            help="simulate the enabled OCPP piles of --tenant")
        parser.add_argument("--tenant", help="operator slug (with --piles-from-db)")
        parser.add_argument("--password", default=None, help="HTTP Basic password (profile 1)")
        parser.add_argument("--scenario", default="normal", choices=SCENARIOS)
        parser.add_argument("--connectors", type=int, default=None)
        parser.add_argument("--power-kw", type=float, default=7)
        parser.add_argument("--charge-minutes", type=float, default=30)
        parser.add_argument("--time-scale", type=float, default=1.0,
                            help="speed-up factor (60: one simulated minute per second)")
        parser.add_argument("--duration", type=float, default=0, help="stop after N seconds")

    def handle(self, *args, **o):
        from django.conf import settings

        from protocols.ocpp.simulator import SimulatedOcppPile, Stats, scenario

        url = o["url"] or f"ws://127.0.0.1:{settings.OCPP_GATEWAY_PORT}/ocpp"
        piles = [(code, o["connectors"] or 1, o["power_kw"]) for code in o["piles"]]
        if o["piles_from_db"]:
            piles += self.piles_of(o["tenant"], o["connectors"])
        if not piles:
            raise CommandError("no piles: give --pile or --piles-from-db --tenant")
        raise_nofile_limit()
        stats = Stats()

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            sims, tasks = [], []
            for code, connectors, kw in piles:
                pile = SimulatedOcppPile(code, url, connectors=connectors, power_kw=kw,
                                         time_scale=o["time_scale"], password=o["password"],
                                         stats=stats)
                sims.append(pile)
                tasks.append(asyncio.create_task(pile.run()))
                tasks.append(asyncio.create_task(scenario(
                    pile, o["scenario"], charge_minutes=o["charge_minutes"])))
            if o["duration"]:
                loop.call_later(o["duration"], stop.set)
            await stop.wait()
            for pile in sims:
                pile.stop()
            await asyncio.sleep(0.3)
            for task in tasks:
                task.cancel()

        self.stdout.write(f"{len(piles)} simulated OCPP piles → {url} ({o['scenario']})")
        asyncio.run(main())
        self.stdout.write(f"boots {stats.boots}, connects {stats.connects}, "
                          f"refused {stats.refused}, calls {stats.sent}")

    def piles_of(self, slug: str | None, connectors: int | None) -> list[tuple]:
        """The operator's enabled OCPP piles: (code, connectors, kW per connector)."""
        from charging import handlers, port

        schema = handlers.dispatch(None, port.OperatorQuery(slug or ""))
        if schema is None:
            raise CommandError(f"no operator {slug!r}")
        piles = handlers.dispatch(schema, port.PilesQuery(protocol="ocpp", enabled_only=True))
        return [(p.pile_code, connectors or p.connector_count,
                 float(p.rated_power_kw) / p.connector_count) for p in piles]
