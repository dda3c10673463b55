"""Load benchmark of the YKC gateway: N simulated piles on loopback at the protocol's cadence.

    DB_NAME=evplatform .venv/bin/python benchmarks/ykc_gateway_load.py [--piles 18000]

Creates (once, in bulk) an operator ``ykc-bench`` with N registered piles on a station with
the demo time-of-use tariff (so every login verifies a real billing model), starts the
gateway as a subprocess (``manage.py ykc_gateway``) and then, in one run:

1. **Throughput**: ``--tp-conns`` logged-in connections send heartbeats 0x03 as fast as the
   gateway answers (``--tp-window`` in flight each), and as many connections send the same
   frames to a bare asyncio echo server (uvloop, another process), for ``--tp-seconds``
   each in four alternating turns (so the machine's other load falls on both alike) —
   replies/s of each and the ratio (goal ≥ 0.5: the gateway's protocol work costs at most
   as much as the bytes).
2. **Ramp** of the N piles (login, billing model check, connector reports), simulated
   over ``--clients`` spawned processes (``benchmarks/support/clients.py``; pile i in
   client i % K, each freezing what its ramp built out of its collector), then
   ``--duration`` seconds measured while every connector heartbeats every 10 s and the
   ``--charging`` share of piles sends real-time data every 15 s: heartbeat round trip
   p99 as the piles see it (target 50 ms).
3. **Reconnect storm**: every pile's link drops at once; the time until all are logged in
   again (target 60 s).

``--baseline`` first runs the same piles (ramp, settle, measurement) against a bare YKC
responder (``benchmarks/support/bare_ykc.py``: logins, heartbeats and billing-model checks
answered, nothing else): the round trip's floor on this machine, printed beside the
gateway's p99 as a ratio.

``--gateway-arg`` passes an option on to the gateway, e.g. ``--gateway-arg=--event-loop=uvloop``
to compare event loops (the storm of 18,000 piles: see README).

Each figure is printed beside its target, as a ratio, with the machine's load average at
the time (the machine is shared: a figure means little without it). Also: connections
held, frames/s, the gateway's own receive → reply histogram, its event-loop lag and
garbage-collection pauses (``ykc_gc_pause_seconds``), this process's own loop lag and
collections while measuring (the client's part of each round trip: it freezes what its
ramp built out of its collector), the gateway's CPU and RSS, and refused
connections (the gateway holds at most its open-files limit less a reserve). Exits 1 when
the ramp or the storm leaves piles out. Needs PostgreSQL and Redis (``make setup`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from protocols.gc_pauses import GENERATIONS, PauseTimer  # noqa: E402 (after the path)
from protocols.management.gateway_command import raise_nofile_limit  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


TARGET_PILES = 18_000
TARGET_P99_S = 0.050
TARGET_STORM_S = 60.0
TARGET_RATIO = 0.5


def load() -> str:
    """The 1-minute load average and the number of cores, as printed beside each figure."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def ensure_estate(count: int, prefix: str) -> str:
    """The bench operator and ``count`` piles (half with two connectors) on a station with
    the demo time-of-use tariff; its schema."""
    import django

    django.setup()
    from decimal import Decimal

    from django_tenants.utils import get_public_schema_name, schema_context

    from stations.models import Connector, Pile, Station
    from tenants.models import PileRegistration
    from tenants.selectors import operator_get_by_slug
    from tenants.services import operator_create

    operator = operator_get_by_slug("ykc-bench")
    if operator is None:
        operator = operator_create(slug="ykc-bench", name="网关压测", domain="ykc-bench.localhost",
                                   admin_username="admin").operator
    codes = [f"{prefix}{i:0{14 - len(prefix)}d}" for i in range(count)]
    with schema_context(operator.schema_name):
        station, _ = Station.objects.get_or_create(
            code="YKC-BENCH", defaults={"name": "压测站", "address": "-", "area_code": "310000",
                                        "latitude": Decimal("31.2"),
                                        "longitude": Decimal("121.4")})
        if getattr(station, "tariff_assignment", None) is None:
            from demo.tariffs import tariff_create_guangdong_demo

            tariff_create_guangdong_demo(stations=[station])
        have = set(Pile.objects.filter(code__in=codes).values_list("code", flat=True))
        missing = [c for c in codes if c not in have]
        for start in range(0, len(missing), 2000):
            chunk = missing[start:start + 2000]
            piles = Pile.objects.bulk_create([
                Pile(station=station, code=c, rated_power_kw=60,
                     connector_count=1 + int(c) % 2) for c in chunk])
            Connector.objects.bulk_create([
                Connector(pile=p, number=n, rated_power_kw=60, qr_code=f"{p.code}{n:02d}")
                for p in piles for n in range(1, p.connector_count + 1)])
        Pile.objects.filter(code__in=codes).update(online=False)
        compact_estate()
    with schema_context(get_public_schema_name()):
        have = set(PileRegistration.objects.filter(code__in=codes)
                   .values_list("code", flat=True))
        PileRegistration.objects.bulk_create(
            [PileRegistration(code=c, operator=operator) for c in codes if c not in have],
            batch_size=2000)
    from django.db import connection

    connection.close()
    return operator.schema_name


def compact_estate() -> None:
    """Each run starts from the same state (inside the bench operator's schema): the frame
    log of the runs before emptied (two rows per heartbeat: ~5 GB after ten runs of 18,000
    piles) and the tables every run rewrites (piles, connectors, billing models: online,
    offline and status marks) compacted. Without it the heartbeat p99 of the same code went
    from 28–37 ms to 60–64 ms over a day's runs."""
    from django.db import connection

    from protocols.models import FrameLog
    from protocols.ykc.models import PileBillingModel
    from stations.models import Connector, Pile

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {FrameLog._meta.db_table}")
        tables = ", ".join(m._meta.db_table for m in (Pile, Connector, PileBillingModel))
        cursor.execute(f"VACUUM (FULL, ANALYZE) {tables}")


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = int(fields[21]) * PAGE
    return cpu, rss


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def histogram_quantile(before: dict, after: dict, reply: str | None, q: float,
                       metric: str = "ykc_reply_latency_seconds",
                       label: str = "type") -> float | None:
    """Upper bucket bound holding quantile ``q`` of the observations between two scrapes
    (those whose ``label`` is ``reply``, or all when it is None)."""
    labels = f'{label}="{reply}",' if reply else ""
    prefix = f'{metric}_bucket{{{labels}le="'
    buckets = []
    for name, value in after.items():
        if name.startswith(prefix):
            bound = name[len(prefix):-2]
            buckets.append((float("inf") if bound == "+Inf" else float(bound),
                            value - before.get(name, 0)))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    for bound, cumulative in buckets:
        if cumulative >= rank:
            return bound
    return None


def gc_print(who: str, before: dict, after: dict) -> None:
    """The gateway's collections between two scrapes (``ykc_gc_pause_seconds``): count by
    generation and the bucket bound of the longest."""
    parts = []
    for generation in GENERATIONS:
        name = f'ykc_gc_pause_seconds_count{{generation="{generation}"}}'
        count = after.get(name, 0) - before.get(name, 0)
        if count:
            worst = histogram_quantile(before, after, generation, 1.0,
                                       "ykc_gc_pause_seconds", "generation")
            parts.append(f"gen {generation}: {count:.0f} (longest ≤ {worst * 1000:g} ms)"
                         if worst is not None else f"gen {generation}: {count:.0f}")
    print(f"{who + ' GC pauses':<27}{', '.join(parts) or 'none'}")


class GcPauses:
    """This process's collections while measuring: seconds each (a
    :class:`protocols.gc_pauses.PauseTimer` histogram)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def observe(self, seconds: float, generation: str) -> None:
        self.pauses.append(seconds)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


ECHO_SERVER = """
import asyncio, sys, uvloop

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

uvloop.run(main())
"""


class Blaster(asyncio.Protocol):
    """One connection keeping ``window`` heartbeat frames in flight: every frame-length of
    bytes back is one reply, answered with the next frame."""

    def __init__(self, frame: bytes, window: int, counter: list, ready: asyncio.Future,
                 login: bytes | None) -> None:
        self.frame, self.window, self.counter, self.ready = frame, window, counter, ready
        self.login = login
        self.buffer = 0
        self.transport = None
        self.running = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.login is not None:
            transport.write(self.login)
        else:
            self.ready.set_result(None)

    def start(self) -> None:
        self.running = True
        self.buffer = 0  # what came while stopped (the drain) is not counted
        self.transport.write(self.frame * self.window)

    def data_received(self, data: bytes) -> None:
        if not self.running:
            if not self.ready.done():  # the login reply (0x02) and time sync (0x56)
                self.ready.set_result(None)
            return
        self.buffer += len(data)
        replies, self.buffer = divmod(self.buffer, len(self.frame))
        if replies:
            self.counter[0] += replies
            self.transport.write(self.frame * replies)

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed"))


async def _blasters(port: int, codes: list[str], window: int, counter: list,
                    login: bool) -> list[Blaster]:
    """One connection per code to the server on ``port`` (logged in first when ``login``),
    ready to send."""
    from protocols.ykc import encode_frame
    from protocols.ykc import messages as m

    loop = asyncio.get_running_loop()
    blasters = []
    for code in codes:
        ready = loop.create_future()
        frame = encode_frame(m.Heartbeat(code, 1, False), 1)
        hello = encode_frame(m.Login(code, 0, 1, 0x10, "SIM1.6.0", 0, "0" * 20, 4), 0) \
            if login else None
        _, blaster = await loop.create_connection(
            lambda f=frame, r=ready, h=hello: Blaster(f, window, counter, r, h),
            "127.0.0.1", port)
        blasters.append(blaster)
        await asyncio.wait_for(ready, 60)
    return blasters


async def throughput(gateway_port: int, echo_port: int, codes: list[str], window: int,
                     seconds: float, rounds: int = 4) -> tuple[float, float]:
    """Heartbeat replies per second from the gateway and from the echo server, each over
    ``len(codes)`` connections (the gateway's logged in first), ``window`` frames in flight
    each: ``seconds`` of each in all, taken in ``rounds`` alternating turns (gateway first,
    then echo first, …) so that the machine's other load falls on both alike."""
    counters = {"gateway": [0], "echo": [0]}
    groups = {"gateway": await _blasters(gateway_port, codes, window, counters["gateway"], True),
              "echo": await _blasters(echo_port, codes, window, counters["echo"], False)}
    await asyncio.sleep(1.0)  # the login's own frames are through
    replies = dict.fromkeys(groups, 0)
    spent = dict.fromkeys(groups, 0.0)
    for turn in range(rounds):
        for name in ("gateway", "echo") if turn % 2 == 0 else ("echo", "gateway"):
            for blaster in groups[name]:
                blaster.start()
            await asyncio.sleep(0.3)  # warm up
            start, counted = time.monotonic(), counters[name][0]
            await asyncio.sleep(seconds / rounds)
            replies[name] += counters[name][0] - counted
            spent[name] += time.monotonic() - start
            for blaster in groups[name]:
                blaster.running = False  # what is in flight drains
            await asyncio.sleep(0.2)
    for blaster in groups["gateway"] + groups["echo"]:
        blaster.transport.close()
    return replies["gateway"] / spent["gateway"], replies["echo"] / spent["echo"]


async def _client(index: int, codes: list[str], charging: list[bool], args, commands,
                  results) -> None:
    """One client process (:func:`client_main`): its piles, driven phase by phase."""
    from protocols.ykc.simulator import SimulatedPile, Stats, scenario

    loop = asyncio.get_running_loop()
    stats = Stats(keep_latencies=False)
    pauses = GcPauses()
    timer = PauseTimer(pauses)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    lags: list[float] = []
    measuring = False

    async def watch(period: float = 0.05) -> None:
        while True:
            start = loop.time()
            await asyncio.sleep(period)
            if measuring:
                lags.append(loop.time() - start - period)

    watcher = asyncio.create_task(watch())
    piles: list = []
    tasks: list[asyncio.Task] = []
    online = 0
    results.put(("started", index))
    while True:
        command, *rest = await loop.run_in_executor(None, commands.get)
        if command == "connect":  # to the gateway, or to the port given
            port = rest[0] if rest else args.port
            started = time.monotonic()
            logins0, refused0 = stats.logins, stats.login_refused
            for code, charging_ in zip(codes, charging, strict=True):
                pile = SimulatedPile(code, "127.0.0.1", port,
                                     connectors=1 + int(code) % 2, stats=stats)
                piles.append(pile)
                tasks.append(asyncio.create_task(pile.run()))
                tasks.append(asyncio.create_task(scenario(pile, "load" if charging_
                                                          else "idle")))
                await asyncio.sleep(args.ramp / len(codes))
            while sum(p.logged_in.is_set() for p in piles) < len(piles) and \
                    time.monotonic() - started < args.ramp + 300:
                await asyncio.sleep(1)
            online = sum(p.logged_in.is_set() for p in piles)
            # What the ramp built lives until the end: out of this process's full
            # collections, which otherwise stop its loop (and every pile's clock).
            gc.collect()
            gc.freeze()
            results.put(("ready", index, online, stats.logins - logins0,
                         stats.login_refused - refused0))
        elif command == "measure":
            stats.latencies.clear()
            stats.keep_latencies = measuring = True
            lags.clear()
            pauses.pauses.clear()
            timer.install()
            counted = (stats.frames_out, stats.frames_in)
        elif command == "measured":
            stats.keep_latencies = measuring = False
            timer.remove()
            results.put(("measured", index, list(stats.latencies), list(lags),
                         list(pauses.pauses), stats.frames_out - counted[0],
                         stats.frames_in - counted[1]))
        elif command == "storm":
            logins0 = stats.logins
            start = time.monotonic()
            for pile in piles:
                pile.drop_connection()
            await asyncio.sleep(0.5)
            stormed = 0
            while time.monotonic() - start < TARGET_STORM_S * 5:
                # Logged in *again*: uvloop runs a due timer before the callbacks of the
                # aborts, so a pile counts once it is logged in and has logged in since.
                stormed = min(sum(p.logged_in.is_set() for p in piles),
                              stats.logins - logins0)
                if stormed >= online:
                    break
                await asyncio.sleep(0.2)
            results.put(("stormed", index, stormed, time.monotonic() - start,
                         stats.logins - logins0))
        elif command in ("disconnect", "exit"):
            for pile in piles:
                pile.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            piles.clear()
            tasks.clear()
            gc.unfreeze()  # what the ramp built goes with its piles
            gc.collect()
            gc.freeze()
            if command == "exit":
                watcher.cancel()
                return
            results.put(("disconnected", index))


def client_main(index: int, codes: list[str], charging: list[bool], options: dict,
                commands, results) -> None:
    """A client process (``--clients``): piles ``codes`` (``charging``: each runs the
    charging scenario) driven by the commands ``connect``, ``measure``, ``measured``,
    ``storm``, ``disconnect`` (after the baseline), ``exit``; any error goes back as
    ``("error", index, traceback)``."""
    from benchmarks.support.clients import client_run

    client_run(_client, index, codes, charging, argparse.Namespace(**options), commands,
               results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piles", type=int, default=TARGET_PILES)
    parser.add_argument("--charging", type=float, default=0.3)
    parser.add_argument("--ramp", type=float, default=120.0,
                        help="seconds to connect all piles")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds after the ramp before measuring")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--port", type=int, default=18768)
    parser.add_argument("--metrics-port", type=int, default=19768)
    parser.add_argument("--echo-port", type=int, default=19767)
    parser.add_argument("--prefix", default="3299")
    parser.add_argument("--heartbeat-log-seconds", type=int, default=None,
                        help="YKC_FRAME_LOG_HEARTBEAT_SECONDS for the gateway (0: log every "
                             "heartbeat)")
    parser.add_argument("--tp-conns", type=int, default=50,
                        help="connections of the throughput phase (0: skip it)")
    parser.add_argument("--tp-window", type=int, default=8, help="frames in flight each")
    parser.add_argument("--tp-seconds", type=float, default=10.0)
    parser.add_argument("--no-storm", action="store_true", help="skip the reconnect storm")
    parser.add_argument("--baseline", action="store_true",
                        help="first the same piles against a bare YKC responder "
                             "(benchmarks/support/bare_ykc.py): the round trip's floor")
    parser.add_argument("--bare-port", type=int, default=19769)
    parser.add_argument("--gateway-arg", action="append", default=[],
                        help="an extra option of manage.py ykc_gateway (repeatable), "
                             "e.g. --gateway-arg=--no-uvloop")
    parser.add_argument("--clients", type=int, default=4,
                        help="client processes simulating the piles between them (pile i "
                             "in client i %% K)")
    args = parser.parse_args()
    limit = raise_nofile_limit()
    print(f"estate: {args.piles} piles …", flush=True)
    started = time.monotonic()
    ensure_estate(args.piles, args.prefix)
    print(f"  ready in {time.monotonic() - started:.1f} s; open files limit {limit}", flush=True)

    env = dict(os.environ)
    if args.heartbeat_log_seconds is not None:
        env["YKC_FRAME_LOG_HEARTBEAT_SECONDS"] = str(args.heartbeat_log_seconds)
    env.setdefault("LOG_LEVEL", "WARNING")
    gateway = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "ykc_gateway", "--host", "127.0.0.1",
         "--port", str(args.port), "--metrics-host", "127.0.0.1",
         "--metrics-port", str(args.metrics_port), "--gateway-id", "bench",
         *args.gateway_arg], env=env)
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(args.echo_port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        echo.stdout.readline()
        for _ in range(600):  # Django starts slowly on a busy machine
            try:
                scrape(args.metrics_port)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("the gateway did not start")
        import uvloop

        ok = uvloop.run(run(args, gateway.pid))
    finally:
        for process in (gateway, echo):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    sys.exit(0 if ok else 1)


def figure(name: str, value: str, target: str, ratio: float, note: str = "") -> None:
    """One line: the figure, its target, the ratio, the load at the time."""
    print(f"{name:<27}{value}   (target {target}: ratio {ratio:.2f}; {load()}){note}",
          flush=True)


async def run(args, gateway_pid: int) -> bool:
    """The throughput phase (in this process), then ramp, measurement and storm with the
    piles spread over ``--clients`` processes; whether every pile logged in, twice."""
    codes = [f"{args.prefix}{i:0{14 - len(args.prefix)}d}" for i in range(args.piles)]
    if args.tp_conns:
        print(f"throughput: {args.tp_conns} connections × {args.tp_window} heartbeats in "
              f"flight, {args.tp_seconds:.0f} s each in four alternating turns …", flush=True)
        tp_codes = codes[:args.tp_conns]
        gw_rate, echo_rate = await throughput(args.port, args.echo_port, tp_codes,
                                              args.tp_window, args.tp_seconds)
        print(f"  gateway heartbeats/s       {gw_rate:.0f}")
        print(f"  bare asyncio echo frames/s {echo_rate:.0f} ({load()})")
        ratio = gw_rate / echo_rate if echo_rate else 0.0
        figure("gateway / echo throughput", f"{ratio:.2f}", f"≥ {TARGET_RATIO}",
               ratio / TARGET_RATIO)
        await asyncio.sleep(2)  # the throughput connections are gone before the ramp

    from benchmarks.support.clients import ClientProcesses

    count = max(1, min(args.clients, args.piles))
    charging = [random.random() < args.charging for _ in codes]
    clients = ClientProcesses(client_main, [
        (codes[i::count], charging[i::count], vars(args)) for i in range(count)],
        "ykc-bench-client")
    try:
        return _run(args, gateway_pid, clients)
    finally:
        clients.close()


def _baseline(args, clients) -> float | None:
    """Ramp and measure the same piles against the bare responder; its heartbeat round
    trip p99 (s), printed with the clients' own loop lag. The piles leave it after."""
    bare = subprocess.Popen([sys.executable, "-m", "benchmarks.support.bare_ykc",
                             str(args.bare_port)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        bare.stdout.readline()
        print(f"baseline: {args.piles} piles against a bare YKC responder over "
              f"{args.ramp:.0f} s …", flush=True)
        clients.send("connect", args.bare_port)
        ready = clients.gather("ready", timeout=args.ramp + 600)
        print(f"  {sum(r[2] for r in ready)} piles logged in ({load()})", flush=True)
        time.sleep(args.settle)
        clients.send("measure")
        time.sleep(args.duration)
        clients.send("measured")
        measured = clients.gather("measured")
        latencies = [x for m in measured for x in m[2]]
        lags = [x for m in measured for x in m[3]]
        p99 = percentile(latencies, 0.99) if latencies else None
        if p99 is not None:
            lag = f"; the clients' loop lag p99 {percentile(lags, 0.99) * 1000:.1f} ms" \
                if lags else ""
            print(f"bare heartbeat round trip  p99 {p99 * 1000:.1f} ms ({load()}); p50 "
                  f"{percentile(latencies, 0.5) * 1000:.1f} ms, max "
                  f"{max(latencies) * 1000:.1f} ms, n={len(latencies)}{lag}", flush=True)
        clients.send("disconnect")
        clients.gather("disconnected")
        return p99
    finally:
        bare.terminate()
        bare.wait(30)


def _run(args, gateway_pid: int, clients) -> bool:
    """Ramp, measure and storm with the piles in ``clients`` (blocking: this process's
    loop has nothing else to do); first against the bare responder with ``--baseline``."""
    bare_p99 = _baseline(args, clients) if args.baseline else None
    print(f"ramp: {args.piles} piles over {args.ramp:.0f} s in {clients.count} client "
          "processes …", flush=True)
    ramp_start = time.monotonic()
    clients.send("connect")
    ready = clients.gather("ready", timeout=args.ramp + 600)
    online = sum(r[2] for r in ready)
    print(f"  {online} piles logged in {time.monotonic() - ramp_start:.0f} s after the first "
          f"connect ({sum(r[3] for r in ready)} logins, {sum(r[4] for r in ready)} refused; "
          f"{load()})", flush=True)
    time.sleep(args.settle)

    before = scrape(args.metrics_port)
    cpu0, _ = proc_stats(gateway_pid)
    t0 = time.monotonic()
    clients.send("measure")
    rss_peak = 0
    while time.monotonic() - t0 < args.duration:
        time.sleep(1)
        rss_peak = max(rss_peak, proc_stats(gateway_pid)[1])
    clients.send("measured")
    elapsed = time.monotonic() - t0
    cpu1, rss = proc_stats(gateway_pid)
    after = scrape(args.metrics_port)
    measured = clients.gather("measured")
    latencies = [x for m in measured for x in m[2]]
    lags = [x for m in measured for x in m[3]]
    client_gc = [x for m in measured for x in m[4]]

    held = after.get("ykc_piles_connected", 0)
    frames_in = (after.get('ykc_frames_in_total{type="0x03"}', 0)
                 - before.get('ykc_frames_in_total{type="0x03"}', 0))
    total_in = sum(v - before.get(k, 0) for k, v in after.items()
                   if k.startswith("ykc_frames_in_total"))
    total_out = sum(v - before.get(k, 0) for k, v in after.items()
                    if k.startswith("ykc_frames_out_total"))
    errors = {k: v - before.get(k, 0) for k, v in after.items()
              if k.startswith("ykc_errors_total") and v - before.get(k, 0)}
    print()
    print(f"piles simulated            {args.piles} ({args.charging:.0%} charging, "
          f"{clients.count} client processes)")
    figure("connections held", f"{held:.0f}", f"{TARGET_PILES}", held / TARGET_PILES,
           f"; the gateway holds at most {after.get('ykc_connections_max', 0):.0f}")
    print(f"gateway frames in/s        {total_in / elapsed:.0f} "
          f"(heartbeats {frames_in / elapsed:.0f}/s)")
    print(f"gateway frames out/s       {total_out / elapsed:.0f}")
    print(f"client frames sent/recv/s  {sum(m[5] for m in measured) / elapsed:.0f} / "
          f"{sum(m[6] for m in measured) / elapsed:.0f}")
    if latencies:
        p99 = percentile(latencies, 0.99)
        figure("heartbeat round trip p99", f"{p99 * 1000:.1f} ms",
               f"< {TARGET_P99_S * 1000:.0f} ms", p99 / TARGET_P99_S,
               f"; p50 {percentile(latencies, 0.5) * 1000:.1f} ms, max "
               f"{max(latencies) * 1000:.1f} ms, n={len(latencies)}")
        if bare_p99:
            print(f"  against the bare responder: p99 {bare_p99 * 1000:.1f} ms, gateway / bare "
                  f"{p99 / bare_p99:.2f}")
    p50 = histogram_quantile(before, after, "0x04", 0.5)
    p99 = histogram_quantile(before, after, "0x04", 0.99)
    if p50 is not None:
        print(f"gateway 0x03→0x04 latency  p50 ≤ {p50 * 1000:g} ms, p99 ≤ {p99 * 1000:g} ms "
              "(histogram bucket bounds)")
    lag99 = histogram_quantile(before, after, None, 0.99, "ykc_event_loop_lag_seconds")
    if lag99 is not None:
        print(f"gateway event-loop lag     p99 ≤ {lag99 * 1000:g} ms (histogram bucket bound)")
    gc_print("gateway", before, after)
    print(f"clients' GC pauses         {len(client_gc)}"
          + (f", longest {max(client_gc) * 1000:.1f} ms" if client_gc else ""))
    if lags:
        print(f"clients' event-loop lag    p50 {percentile(lags, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(lags, 0.99) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms")
    print(f"gateway CPU                {(cpu1 - cpu0) / elapsed * 100:.0f} % of one core")
    print(f"gateway RSS                {rss / 2**20:.0f} MiB (peak {rss_peak / 2**20:.0f} MiB)")
    print(f"gateway errors             {errors or 'none'}")
    refused = after.get('ykc_connections_refused_total{reason="pile_limit"}', 0)
    print(f"connections refused        {refused:.0f} (at the open-files cap)", flush=True)

    stormed = online
    if not args.no_storm and online:
        print(f"\nreconnect storm: {online} links drop at once …", flush=True)
        clients.send("storm")
        storms = clients.gather("stormed", timeout=TARGET_STORM_S * 5 + 120)
        stormed = sum(s[2] for s in storms)
        took = max(s[3] for s in storms)
        figure("reconnect storm", f"{stormed} logged in again in {took:.1f} s",
               f"{TARGET_STORM_S:.0f} s", took / TARGET_STORM_S,
               f"; {sum(s[4] for s in storms)} logins")
        measured, after = after, scrape(args.metrics_port)
        errors = {k: v - before.get(k, 0) for k, v in after.items()
                  if k.startswith("ykc_errors_total") and v - before.get(k, 0)}
        print(f"gateway errors since       {errors or 'none'}")
        lag99, lag_max = (histogram_quantile(measured, after, None, q,
                                             "ykc_event_loop_lag_seconds") for q in (0.99, 1.0))
        if lag99 is not None:
            print(f"storm's event-loop lag     p99 ≤ {lag99 * 1000:g} ms, max ≤ "
                  f"{lag_max * 1000:g} ms (histogram bucket bounds)")
        gc_print("storm's", measured, after)
        stormed_refused = after.get('ykc_connections_refused_total{reason="pile_limit"}',
                                    0) - refused
        print(f"connections refused since  {stormed_refused:.0f} (at the open-files cap: "
              "the dropped links' descriptors count until their close is read)")
    return online == args.piles and stormed >= online


if __name__ == "__main__":
    main()
