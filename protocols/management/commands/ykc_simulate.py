"""``manage.py ykc_simulate`` — simulated YKC piles (protocols/ykc/simulator.py) for demos,
tests and load: one process, many piles."""

from __future__ import annotations

import asyncio
import random
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from protocols.ykc.simulator import SCENARIOS

from ..gateway_command import raise_nofile_limit


class Command(BaseCommand):
    help = "Simulate YKC v1.6 piles against a gateway."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8768)
        parser.add_argument("--pile", action="append", default=[], dest="piles",
                            help="pile code (repeat); or use --count / --piles-from-db")
        parser.add_argument("--count", type=int, default=0,
                            help="simulate N piles coded PREFIX + running number")
        parser.add_argument("--code-prefix", default="3201990")
        parser.add_argument("--piles-from-db", action="store_true",
                            help="simulate the registered piles of --tenant")
        parser.add_argument("--tenant", help="operator slug (with --piles-from-db)")
        parser.add_argument("--scenario", default="normal",
                            choices=SCENARIOS)
        parser.add_argument("--charging-share", type=float, default=None,
                            help="fraction of piles running a local session (load)")
        parser.add_argument("--connectors", type=int, default=None)
        parser.add_argument("--power-kw", type=float, default=60)
        parser.add_argument("--charge-minutes", type=float, default=30)
        parser.add_argument("--time-scale", type=float, default=1.0,
                            help="speed-up factor (60: one simulated minute per second)")
        parser.add_argument("--ramp-seconds", type=float, default=0,
                            help="spread the connects over this many seconds")
        parser.add_argument("--duration", type=float, default=0, help="stop after N seconds")
        parser.add_argument("--control-port", type=int, default=0,
                            help="serve the fault-injection control channel on 127.0.0.1:PORT")

    def handle(self, *args, **o):
        from protocols.ykc.simulator import SimulatedPile, Stats, scenario, serve_control

        # (pile code, connectors, power per connector in kW or None for --power-kw)
        piles = [(code, o["connectors"] or 1, None) for code in o["piles"]]
        if o["count"]:
            width = 14 - len(o["code_prefix"])
            piles += [(f"{o['code_prefix']}{i:0{width}d}", o["connectors"] or 1, None)
                      for i in range(1, o["count"] + 1)]
        if o["piles_from_db"]:
            piles += self.piles_of(o["tenant"], o["connectors"])
        if not piles:
            raise CommandError("no piles: give --pile, --count or --piles-from-db --tenant")
        raise_nofile_limit()
        stats = Stats(keep_latencies=False)

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            tasks = []
            by_code = {}
            control = None
            if o["control_port"]:
                control = await serve_control(by_code, "127.0.0.1", o["control_port"], stats)
            for index, (code, connectors, power_kw) in enumerate(piles):
                pile = SimulatedPile(code, o["host"], o["port"], connectors=connectors,
                                     power_kw=power_kw or o["power_kw"],
                                     time_scale=o["time_scale"],
                                     stats=stats)
                by_code[code] = pile
                name = o["scenario"]
                if o["charging_share"] is not None:
                    name = "load" if random.random() < o["charging_share"] else "idle"
                tasks.append(asyncio.create_task(pile.run()))
                tasks.append(asyncio.create_task(
                    scenario(pile, name, charge_minutes=o["charge_minutes"])))
                if o["ramp_seconds"]:
                    await asyncio.sleep(o["ramp_seconds"] / len(piles))
                elif index % 200 == 199:
                    await asyncio.sleep(0)
            started = time.monotonic()
            while not stop.is_set():
                every = min(5, o["duration"]) if o["duration"] else 5
                with_timeout = asyncio.wait_for(stop.wait(), every)
                try:
                    await with_timeout
                except TimeoutError:
                    pass
                self.stdout.write(f"piles {len(piles)} logins {stats.logins} refused "
                                  f"{stats.login_refused} frames out {stats.frames_out} in "
                                  f"{stats.frames_in} records acked {stats.records_acked}")
                if o["duration"] and time.monotonic() - started >= o["duration"]:
                    break
            if control is not None:
                control.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        import uvloop

        uvloop.run(main())

    def piles_of(self, slug: str | None, connectors: int | None) -> list[tuple]:
        """The operator's enabled YKC piles: (code, connectors, kW per connector)."""
        from charging import handlers, port

        schema = handlers.dispatch(None, port.OperatorQuery(slug or ""))
        if schema is None:
            raise CommandError(f"no operator {slug!r}")
        piles = handlers.dispatch(schema, port.PilesQuery(protocol="ykc", enabled_only=True))
        return [(p.pile_code, connectors or p.connector_count,
                 float(p.rated_power_kw) / p.connector_count) for p in piles]
