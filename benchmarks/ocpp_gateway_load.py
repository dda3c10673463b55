"""Load benchmark of the OCPP 1.6J gateway: N simulated charge points on loopback.

    DB_NAME=evplatform .venv/bin/python benchmarks/ocpp_gateway_load.py [--piles 10000]

Creates (once, in bulk) an operator ``ocpp-bench`` with N registered OCPP piles, starts the
gateway as a subprocess (``manage.py ocpp_gateway``), connects the piles (WebSocket
handshake = login, BootNotification, a StatusNotification per connector), then measures
for ``--duration`` seconds while every pile sends Heartbeat every ``--heartbeat`` s (60)
and the ``--charging`` share of piles sends MeterValues every ``--meter`` s (15) inside a
transaction. The clients are light raw-WebSocket piles (JSON text, no schema validation)
spread over ``--clients`` processes (spawned; each freezes what its ramp built out of its
collector's reach, ``--client-gc``), so the client side does not hide the gateway's limit:
one process simulating 10,000 piles measured a bare server's p99 at 78 ms, its own loop
the floor of every round trip. Each client's own event-loop lag and GC while measuring
are printed beside the round trips. Prints connections held, messages/s,
the reply round trip p50/p99 measured by the piles (all calls, then Heartbeat and
MeterValues apart) and the gateway's receive → reply histogram, the gateway's CPU and RSS,
the domain events still queued behind answered calls (``ocpp_jobs_backlog``: whether the
database keeps up), the gateway's event-loop lag (``ocpp_event_loop_lag_seconds``: how
late a 50 ms timer wakes, so how long a message waits before it is read), and each figure
beside its target as a ratio (target: 10,000 piles with p99 < 50 ms), with the machine's
load average at the time.

``--time-scale K`` compresses the cadence: heartbeat and MeterValues intervals are divided
by K, so N piles send what N × K piles send at protocol cadence (the message rate, hence
the gateway's and the database's work per second, of N × K piles; not their sockets and
memory, which the connections held and the RSS show for N). A machine that cannot hold
10,000 piles' sockets beside the other processes (a shared box) can still show the rate:
``--piles 2000 --time-scale 5`` is the traffic of 10,000 piles over 2,000 connections.

Before the gateway's measurement the same piles (same cadence, same client processes) run for
``--baseline-seconds`` against the bare server: the round trips there are the floor of
loopback, client and JSON at that rate, and each gateway round trip figure is printed with
its ratio to the bare one (same run, same load).

Before the piles connect, a throughput phase compares the gateway with a baseline in the
same run: ``--tp-conns`` booted connections keep ``--tp-window`` Heartbeat calls in flight
for ``--tp-seconds`` against the gateway, then the same calls against a bare ``websockets``
server (another process) that answers each with a CallResult and does nothing else; the
ratio of the replies/s says what the gateway's own work costs. Needs PostgreSQL and Redis
(``make setup``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")

from benchmarks.support.clients import ClientProcesses, client_run  # noqa: E402
from benchmarks.ykc_gateway_load import (  # noqa: E402
    percentile,
    proc_stats,
    scrape,
)
from protocols.management.gateway_command import raise_nofile_limit  # noqa: E402

TARGET_PILES = 10_000
TARGET_P99_S = 0.050
LAG_PROBE_S = 0.05  # each client's own event-loop lag probe (as the gateway's)

BARE_SERVER = """
import asyncio, json, sys, uvloop
from datetime import UTC, datetime
from websockets.asyncio.server import serve

from websockets.exceptions import ConnectionClosed

async def answer(ws):
    try:
        async for text in ws:
            msg = json.loads(text)
            if msg[2] == "StartTransaction":
                reply = {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}
            elif msg[2] in ("Heartbeat", "BootNotification"):
                reply = {"currentTime": datetime.now(UTC).isoformat()}
            else:
                reply = {}
            await ws.send(json.dumps([3, msg[1], reply]))
    except ConnectionClosed:
        pass

async def main():
    async with serve(answer, "127.0.0.1", int(sys.argv[1]), subprotocols=["ocpp1.6"],
                     ping_interval=None, backlog=1024):
        print("ready", flush=True)
        await asyncio.Future()

uvloop.run(main())
"""


def load() -> str:
    """The 1-minute load average and the number of cores, as printed beside each figure."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


async def throughput(url: str, codes: list[str], window: int, seconds: float,
                     boot: bool) -> float:
    """Heartbeat replies per second over ``len(codes)`` connections to ``url``, ``window``
    calls in flight each (BootNotification first when ``boot``)."""
    from websockets.asyncio.client import connect

    count = [0]
    running = asyncio.Event()
    stop = asyncio.Event()

    async def one(code: str) -> None:
        async with connect(f"{url}/{code}", subprotocols=["ocpp1.6"], open_timeout=120,
                           ping_interval=None) as ws:
            if boot:
                await ws.send(json.dumps([2, "boot", "BootNotification", {
                    "chargePointVendor": "Bench", "chargePointModel": "B1"}]))
                await ws.recv()
            ready.append(code)
            await running.wait()
            ids = itertools.count()
            for _ in range(window):
                await ws.send(json.dumps([2, f"t{next(ids)}", "Heartbeat", {}]))
            while not stop.is_set():
                await ws.recv()
                count[0] += 1
                await ws.send(json.dumps([2, f"t{next(ids)}", "Heartbeat", {}]))

    ready: list[str] = []
    tasks = [asyncio.create_task(one(code)) for code in codes]
    while len(ready) < len(codes):
        if any(t.done() for t in tasks):
            for t in tasks:
                if t.done():
                    t.result()
        await asyncio.sleep(0.1)
    running.set()
    await asyncio.sleep(1.0)  # warm up
    start, counted = time.monotonic(), count[0]
    await asyncio.sleep(seconds)
    rate = (count[0] - counted) / (time.monotonic() - start)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return rate


def ensure_estate(count: int, prefix: str) -> str:
    """The bench operator and ``count`` OCPP piles (one connector each); its schema."""
    import django

    django.setup()
    from decimal import Decimal

    from django_tenants.utils import get_public_schema_name, schema_context

    from stations.models import Connector, Pile, Station
    from tenants.models import PileRegistration
    from tenants.selectors import operator_get_by_slug
    from tenants.services import operator_create

    operator = operator_get_by_slug("ocpp-bench")
    if operator is None:
        operator = operator_create(slug="ocpp-bench", name="OCPP 压测",
                                   domain="ocpp-bench.localhost",
                                   admin_username="admin").operator
    codes = [f"{prefix}{i:0{14 - len(prefix)}d}" for i in range(count)]
    with schema_context(operator.schema_name):
        station, _ = Station.objects.get_or_create(
            code="OCPP-BENCH", defaults={"name": "压测站", "address": "-",
                                         "area_code": "310000", "latitude": Decimal("31.2"),
                                         "longitude": Decimal("121.4")})
        have = set(Pile.objects.filter(code__in=codes).values_list("code", flat=True))
        missing = [c for c in codes if c not in have]
        for start in range(0, len(missing), 2000):
            piles = Pile.objects.bulk_create([
                Pile(station=station, code=c, rated_power_kw=22, connector_count=1,
                     protocol=Pile.Protocol.OCPP, heartbeat_interval_s=60)
                for c in missing[start:start + 2000]])
            Connector.objects.bulk_create([
                Connector(pile=p, number=1, rated_power_kw=22, qr_code=f"{p.code}01")
                for p in piles])
        Pile.objects.filter(code__in=codes).update(online=False)
    with schema_context(get_public_schema_name()):
        have = set(PileRegistration.objects.filter(code__in=codes)
                   .values_list("code", flat=True))
        PileRegistration.objects.bulk_create(
            [PileRegistration(code=c, operator=operator) for c in codes if c not in have],
            batch_size=2000)
    from django.db import connection

    connection.close()
    return operator.schema_name


class Recorder:
    """One client process's measurement: ``latencies`` (action → round trips, s) collected
    while ``measure`` is set, and the process's own event-loop lag and GC pauses (s) then:
    what the client adds to each round trip it measures."""

    def __init__(self) -> None:
        self.measure = False
        self.latencies: dict[str, list[float]] = {}
        self.lags: list[float] = []
        self.gc: collections.Counter = collections.Counter()  # "n0", "s0" … by generation
        self._gc_started = 0.0

    def start(self) -> None:
        self.latencies, self.lags, self.gc = {}, [], collections.Counter()
        self.measure = True

    def gc_timed(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self.measure:
            self.gc[f"n{info['generation']}"] += 1
            self.gc[f"s{info['generation']}"] += time.perf_counter() - self._gc_started

    async def probe_lag(self) -> None:
        """How late a ``LAG_PROBE_S`` timer wakes in this client (s), while measuring."""
        while True:
            due = time.monotonic() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            if self.measure:
                self.lags.append(max(time.monotonic() - due, 0.0))


class Pile:
    """A light charge point: raw JSON over one WebSocket, replies matched by unique id."""

    ids = itertools.count(1)

    def __init__(self, code: str, url: str, charging: bool, args, recorder: Recorder,
                 failures: collections.Counter | None = None) -> None:
        self.code, self.url, self.charging, self.args = code, url, charging, args
        self.recorder = recorder  # round trips (s) by action, while it measures
        # "stage: reason" → piles whose run ended so (connect, BootNotification, …)
        self.failures = failures if failures is not None else collections.Counter()
        self.stage = "connect"
        self.failed = False
        self.pending: dict[str, tuple[float, asyncio.Future]] = {}
        self.ready = asyncio.Event()
        self.meter_wh = 0

    async def call(self, action: str, payload: dict) -> dict:
        uid = str(next(self.ids))
        future = asyncio.get_running_loop().create_future()
        self.pending[uid] = (time.perf_counter(), future, action)
        await self.ws.send(json.dumps([2, uid, action, payload]))
        return await future

    async def _reader(self) -> None:
        """Match replies to calls; when the connection ends, the calls waiting fail with
        its error (counted as the pile's failure)."""
        error: BaseException = ConnectionError("connection closed")
        try:
            async for text in self.ws:
                msg = json.loads(text)
                if msg[0] in (3, 4) and msg[1] in self.pending:
                    sent, future, action = self.pending.pop(msg[1])
                    if self.recorder.measure:
                        self.recorder.latencies.setdefault(action, []).append(
                            time.perf_counter() - sent)
                    if not future.done():
                        future.set_result(msg[2] if msg[0] == 3 else {"error": msg[2]})
                elif msg[0] == 2:  # answer any call from the gateway
                    await self.ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))
        except Exception as closed:
            error = closed
            raise
        finally:
            for _sent, future, _action in self.pending.values():
                if not future.done():
                    future.set_exception(error)
            self.pending.clear()

    async def run(self) -> None:
        """Connect, boot and send at cadence until cancelled; a run that ends otherwise
        is counted in ``failures`` by the stage it reached and why (printed by
        :func:`population`), not lost silently."""
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failed = True
            self.failures_reason = f"{self.stage}: {_reason(error)}"
            self.failures[self.failures_reason] += 1

    async def _run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(f"{self.url}/{self.code}", subprotocols=["ocpp1.6"],
                           open_timeout=120, ping_interval=None) as ws:
            self.ws = ws
            reader = asyncio.create_task(self._reader())
            # Its end is the connection's: counted by the call that waited on it.
            reader.add_done_callback(lambda task: task.cancelled() or task.exception())
            self.stage = "BootNotification"
            reply = await self.call("BootNotification", {"chargePointVendor": "Bench",
                                                         "chargePointModel": "B1"})
            if "error" in reply or reply.get("status", "Accepted") != "Accepted":
                # (the bare server's reply has no status)
                raise RuntimeError(f"BootNotification {reply.get('status') or reply}")
            self.stage = "StatusNotification"
            await self.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                                   "status": "Available"})
            tx = None
            if self.charging:
                self.stage = "StartTransaction"
                reply = await self.call("StartTransaction", {
                    "connectorId": 1, "idTag": "BENCHTAG", "meterStart": 0,
                    "timestamp": _now()})
                tx = reply.get("transactionId")
            self.ready.set()
            self.stage = "running"
            scale = self.args.time_scale
            loops = [self._every(self.args.heartbeat / scale, "Heartbeat", lambda: {})]
            if tx is not None:
                loops.append(self._every(self.args.meter / scale, "MeterValues", lambda: {
                    "connectorId": 1, "transactionId": tx, "meterValue": [{
                        "timestamp": _now(), "sampledValue": [
                            {"value": str(self._accrue()), "unit": "Wh"},
                            {"value": "22000", "measurand": "Power.Active.Import",
                             "unit": "W"}]}]}))
            await asyncio.gather(reader, *loops)

    def _accrue(self) -> int:
        self.meter_wh += int(22000 * self.args.meter / 3600)
        return self.meter_wh

    async def _every(self, period: float, action: str, payload) -> None:
        await asyncio.sleep(random.uniform(0, period))
        while True:
            await self.call(action, payload())
            await asyncio.sleep(period)


def _reason(error: BaseException) -> str:
    """A failed pile's reason as counted: the error's type and its first line (an HTTP
    refusal by status)."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status is not None:
        return f"{type(error).__name__} HTTP {status}"
    text = str(error).splitlines()[0][:80] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def population(clients: ClientProcesses, url: str, args, gateway: bool) -> None:
    """Connect and boot the piles over ``--ramp`` seconds in all clients at once, wait
    ``--settle``; prints how many booted and, of the others, why each failed (by stage
    and reason) or that it was still booting; for the gateway, its loop lag and GC of the
    ramp."""
    started = time.monotonic()
    before = scrape(args.metrics_port) if gateway else {}
    lag_max = [0.0]

    def watch() -> None:
        if gateway:
            with contextlib.suppress(OSError):
                lag_max[0] = max(lag_max[0], scrape(args.metrics_port).get(
                    "ocpp_event_loop_lag_max_seconds", 0))

    clients.send("connect", url)
    answers = clients.gather("ready", timeout=args.ramp + 600, every=watch)
    ready = sum(a[2] for a in answers)
    print(f"  {ready} piles booted {time.monotonic() - started:.0f} s after the first connect "
          f"({clients.count} client processes; {load()})", flush=True)
    if ready < args.piles:
        failures = sum((collections.Counter(a[3]) for a in answers), collections.Counter())
        waiting = sum((collections.Counter(a[4]) for a in answers), collections.Counter())
        print(f"  not booted: {args.piles - ready} — failed {sum(failures.values())}, still "
              f"under way {sum(waiting.values())}", flush=True)
        for stage, n in waiting.most_common():
            print(f"    still waiting for {stage}: {n}")
        for reason, n in failures.most_common(10):
            print(f"    failed at {reason}: {n}", flush=True)
    if gateway:
        after = scrape(args.metrics_port)
        print(f"  ramp: gateway event-loop lag p99 ≤ {(_hist(before, after, None) or 0) * 1000:g}"
              f" ms, max {lag_max[0] * 1000:.0f} ms", flush=True)
        _print_gc(before, after, "  ")
    time.sleep(args.settle)


def measured(clients: ClientProcesses) -> tuple[dict[str, list[float]], collections.Counter, list]:
    """Stop measuring and the piles: round trips by action over all clients, the piles
    dropped while running (by reason), and each client's (lags, GC counter)."""
    answers = clients.gather("stopped")
    latencies: dict[str, list[float]] = {}
    dropped: collections.Counter = collections.Counter()
    own = []
    for _, _, values, drops, lags, gcs in answers:
        for action, xs in values.items():
            latencies.setdefault(action, []).extend(xs)
        dropped.update(drops)
        own.append((lags, gcs))
    return latencies, dropped, own


def _print_clients(own: list, indent: str = "  ") -> None:
    """The clients' own event-loop lag and GC while measuring: their part of each round
    trip (a late loop reads a reply late)."""
    lags = [x for values, _ in own for x in values]
    gcs = sum((collections.Counter(g) for _, g in own), collections.Counter())
    if lags:
        print(f"{indent}clients' own event-loop lag p50 {percentile(lags, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(lags, 0.99) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms; GC "
              + ", ".join(f"gen {g}: {gcs[f'n{g}']:.0f} ({gcs[f's{g}'] * 1000:.0f} ms)"
                          for g in range(3)) + f" over {len(own)} processes")


def run(args, gateway_pid: int) -> None:
    url = f"ws://127.0.0.1:{args.port}/ocpp"
    if args.tp_conns:
        import uvloop

        codes = [f"{args.prefix}{i:0{14 - len(args.prefix)}d}" for i in range(args.tp_conns)]
        print(f"throughput: {args.tp_conns} connections × {args.tp_window} Heartbeat calls in "
              f"flight, {args.tp_seconds:.0f} s each …", flush=True)
        gw_rate = uvloop.run(throughput(url, codes, args.tp_window, args.tp_seconds, True))
        gw_load = load()
        bare_rate = uvloop.run(throughput(f"ws://127.0.0.1:{args.bare_port}/ocpp", codes,
                                          args.tp_window, args.tp_seconds, False))
        print(f"  gateway replies/s          {gw_rate:.0f} ({gw_load})")
        print(f"  bare websockets replies/s  {bare_rate:.0f} ({load()})")
        ratio = gw_rate / bare_rate if bare_rate else 0.0
        print(f"gateway / bare throughput  {ratio:.2f}   (goal ≥ 0.5: ratio {ratio / 0.5:.2f}; "
              f"{load()})", flush=True)
        time.sleep(2)
    piles_rng = random.Random(12)
    charging = [piles_rng.random() < args.charging for _ in range(args.piles)]
    codes = [f"{args.prefix}{i:0{14 - len(args.prefix)}d}" for i in range(args.piles)]
    # Pile i in client i % K: one process's loop, JSON and GC would otherwise be the floor
    # of every round trip it measures (at 10,000 piles one process measured a bare
    # server's p99 at 78 ms). Phases: connect, measure, stop, exit.
    count = max(1, min(args.clients, len(codes)))
    clients = ClientProcesses(client_main, [
        (codes[i::count], charging[i::count], vars(args)) for i in range(count)],
        "ocpp-bench-client")
    try:
        _run(args, gateway_pid, url, clients)
    finally:
        clients.close()


def _run(args, gateway_pid: int, url: str, clients: ClientProcesses) -> None:
    bare: dict[str, list[float]] = {}
    bare_own: list = []
    if args.baseline_seconds > 0:
        print(f"baseline: the same {args.piles} piles against the bare server for "
              f"{args.baseline_seconds:.0f} s …", flush=True)
        population(clients, f"ws://127.0.0.1:{args.bare_port}/ocpp", args, False)
        clients.send("measure")
        time.sleep(args.baseline_seconds)
        clients.send("stop")
        bare, _, bare_own = measured(clients)
    bare_load = load()
    rate = args.piles * args.time_scale
    print(f"ramp: {args.piles} piles over {args.ramp:.0f} s (cadence ×{args.time_scale:g}: the "
          f"message rate of {rate:.0f} piles) …", flush=True)
    population(clients, url, args, True)
    before = scrape(args.metrics_port)
    cpu0, _ = proc_stats(gateway_pid)
    backlog0 = before.get("ocpp_jobs_backlog", 0)
    clients.send("measure")
    t0 = time.monotonic()
    rss_peak = backlog_peak = lag_max = 0
    while time.monotonic() - t0 < args.duration:
        time.sleep(1)
        rss_peak = max(rss_peak, proc_stats(gateway_pid)[1])
        with contextlib.suppress(OSError):
            now = scrape(args.metrics_port)
            backlog_peak = max(backlog_peak, now.get("ocpp_jobs_backlog", 0))
            lag_max = max(lag_max, now.get("ocpp_event_loop_lag_max_seconds", 0))
    clients.send("stop")  # measuring ends here, the piles close after
    elapsed = time.monotonic() - t0
    gw_load = load()
    cpu1, rss = proc_stats(gateway_pid)
    after = scrape(args.metrics_port)
    latencies, dropped, own = measured(clients)
    held = after.get("ocpp_connections", 0)
    total_in = sum(v - before.get(k, 0) for k, v in after.items()
                   if k.startswith("ocpp_messages_in_total"))
    errors = {k: v - before.get(k, 0) for k, v in after.items()
              if k.startswith("ocpp_errors_total") and v - before.get(k, 0)}
    print()
    print(f"piles simulated            {args.piles} ({args.charging:.0%} in a transaction), "
          f"cadence ×{args.time_scale:g} (heartbeat {args.heartbeat / args.time_scale:g} s, "
          f"MeterValues {args.meter / args.time_scale:g} s), {clients.count} client processes "
          f"(client GC: {args.client_gc})")
    print(f"connections held           {held:.0f}   (target {TARGET_PILES}: "
          f"ratio {held / TARGET_PILES:.2f}; {gw_load})")
    equivalent = held * args.time_scale
    print(f"message rate of            {equivalent:.0f} piles at protocol cadence   (target "
          f"{TARGET_PILES}: ratio {equivalent / TARGET_PILES:.2f})")
    print(f"gateway messages in/s      {total_in / elapsed:.0f}")
    print(f"piles dropped while running {sum(dropped.values())}"
          + "".join(f"; {reason}: {n}" for reason, n in dropped.most_common(5)))
    all_gw = [x for values in latencies.values() for x in values]
    all_bare = [x for values in bare.values() for x in values]
    for name, gw_values, bare_values in [("all calls", all_gw, all_bare)] + [
            (action, latencies.get(action, []), bare.get(action, []))
            for action in ("Heartbeat", "MeterValues")]:
        if not gw_values:
            continue
        p50, p99 = percentile(gw_values, 0.5), percentile(gw_values, 0.99)
        line = (f"round trip {name:<15} p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
                f"(target < {TARGET_P99_S * 1000:.0f} ms: ratio {p99 / TARGET_P99_S:.2f}), "
                f"max {max(gw_values) * 1000:.1f} ms (n={len(gw_values)}; {gw_load})")
        print(line)
        if bare_values:
            b50, b99 = percentile(bare_values, 0.5), percentile(bare_values, 0.99)
            print(f"  bare server              p50 {b50 * 1000:.1f} ms, p99 {b99 * 1000:.1f} ms "
                  f"(n={len(bare_values)}; {bare_load}): gateway / bare p50 "
                  f"{p50 / b50:.2f}, p99 {p99 / b99:.2f}")
    if bare_own:
        print("the clients against the bare server:")
        _print_clients(bare_own)
    print("the clients against the gateway:")
    _print_clients(own)
    lag50 = _hist(before, after, None, 0.5)
    lag99 = _hist(before, after, None)
    if lag99 is not None:
        print(f"gateway event-loop lag     p50 ≤ {lag50 * 1000:g} ms, p99 ≤ {lag99 * 1000:g} ms "
              f"(bucket bounds), max {lag_max * 1000:.0f} ms (a 50 ms timer, woken late by "
              f"this much: how long a message waits before it is read)")
    _print_gc(before, after)
    for action in ("Heartbeat", "MeterValues", "StatusNotification"):
        q99 = _hist(before, after, action)
        if q99 is not None:
            print(f"gateway {action:<18} p99 ≤ {q99 * 1000:g} ms (receive → reply, "
                  f"histogram bucket bound)")
    print(f"domain jobs backlog        {backlog0:.0f} at start, peak {backlog_peak:.0f}, "
          f"{after.get('ocpp_jobs_backlog', 0):.0f} at end (events of answered calls "
          f"not yet dispatched)")
    print(f"gateway CPU                {(cpu1 - cpu0) / elapsed * 100:.0f} % of one core")
    print(f"gateway RSS                {rss / 2**20:.0f} MiB (peak {rss_peak / 2**20:.0f} MiB)")
    print(f"gateway errors             {errors or 'none'}")

def _print_gc(before: dict, after: dict, indent: str = "") -> None:
    """The gateway's garbage collections between two scrapes, by generation."""
    for generation in ("0", "1", "2"):
        name = f'ocpp_gc_pause_seconds_count{{generation="{generation}"}}'
        count = after.get(name, 0) - before.get(name, 0)
        if count:
            total = after.get(name.replace("_count", "_sum"), 0) - \
                before.get(name.replace("_count", "_sum"), 0)
            worst = _hist(before, after, None, 1.0, f"ocpp_gc_pause_seconds_bucket"
                                                    f'{{generation="{generation}",le="')
            print(f"{indent}gateway GC generation {generation}   {count:.0f} collections, "
                  f"{total * 1000:.0f} ms in all, longest ≤ {worst * 1000:g} ms (bucket bound)")


def client_main(index: int, codes: list[str], charging: list[bool], options: dict,
                commands, results) -> None:
    """One client process (``ClientProcesses``): its piles, driven by the commands on its
    queue; any error is sent back as ``("error", index, traceback)``."""
    client_run(_client, index, codes, charging, argparse.Namespace(**options), commands,
               results)


async def _client(index: int, codes: list[str], charging: list[bool], args, commands,
                  results) -> None:
    import gc

    loop = asyncio.get_running_loop()
    recorder = Recorder()
    gc.callbacks.append(recorder.gc_timed)
    probe = asyncio.create_task(recorder.probe_lag())
    piles: list[Pile] = []
    tasks: list[asyncio.Task] = []
    results.put(("started", index))
    while True:
        command, *rest = await loop.run_in_executor(None, commands.get)
        if command == "connect":
            failures: collections.Counter = collections.Counter()
            piles = [Pile(code, rest[0], tx, args, recorder, failures)
                     for code, tx in zip(codes, charging, strict=True)]
            started = time.monotonic()
            for pile in piles:
                tasks.append(asyncio.create_task(pile.run()))
                await asyncio.sleep(args.ramp / len(piles))
            while sum(p.ready.is_set() or p.failed for p in piles) < len(piles) and \
                    time.monotonic() - started < args.ramp + 300:
                await asyncio.sleep(0.5)
            if args.client_gc == "freeze":
                # As the gateway does: what the ramp built lives until the stop, so the
                # collector's older generations need not walk it again and again.
                gc.collect()
                gc.freeze()
            waiting = collections.Counter(p.stage for p in piles
                                          if not p.failed and not p.ready.is_set())
            results.put(("ready", index, sum(p.ready.is_set() for p in piles),
                         dict(failures), dict(waiting)))
        elif command == "measure":
            recorder.start()
        elif command == "stop":
            recorder.measure = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            dropped = collections.Counter(p.failures_reason for p in piles
                                          if p.failed and p.ready.is_set())
            results.put(("stopped", index, recorder.latencies, dict(dropped), recorder.lags,
                         dict(recorder.gc)))
            piles, tasks = [], []
            recorder.latencies, recorder.lags = {}, []
            gc.unfreeze()
            gc.collect()
        elif command == "exit":
            probe.cancel()
            return

def _hist(before: dict, after: dict, action: str | None, q: float = 0.99,
          prefix: str | None = None) -> float | None:
    """Quantile ``q`` (bucket bound) of the gateway's receive → reply histogram for
    ``action``, or (None) of its event-loop lag histogram, or of the histogram whose
    bucket samples start with ``prefix``."""
    prefix = prefix or (f'ocpp_reply_latency_seconds_bucket{{action="{action}",le="' if action
                        else 'ocpp_event_loop_lag_seconds_bucket{le="')
    buckets = sorted((float("inf") if n[len(prefix):-2] == "+Inf" else float(n[len(prefix):-2]),
                      v - before.get(n, 0)) for n, v in after.items() if n.startswith(prefix))
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    return next((bound for bound, cumulative in buckets if cumulative >= rank), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piles", type=int, default=TARGET_PILES)
    parser.add_argument("--charging", type=float, default=0.3)
    parser.add_argument("--heartbeat", type=float, default=60.0)
    parser.add_argument("--meter", type=float, default=15.0)
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divide both intervals by this: N piles send the traffic of "
                             "N × scale piles")
    parser.add_argument("--baseline-seconds", type=float, default=30.0,
                        help="the same piles against the bare server, measured (0: skip)")
    parser.add_argument("--ramp", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=18769)
    parser.add_argument("--metrics-port", type=int, default=19769)
    parser.add_argument("--prefix", default="3298")
    parser.add_argument("--bare-port", type=int, default=19770)
    parser.add_argument("--tp-conns", type=int, default=50,
                        help="connections of the throughput phase (0: skip it)")
    parser.add_argument("--tp-window", type=int, default=8, help="calls in flight each")
    parser.add_argument("--tp-seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4,
                        help="client processes simulating the piles between them")
    parser.add_argument("--client-gc", choices=("freeze", "default"), default="freeze",
                        help="freeze: each client freezes what its ramp built (gc.freeze), "
                             "as the gateway does; default: the collector left as it is")
    args = parser.parse_args()
    limit = raise_nofile_limit()
    print(f"estate: {args.piles} OCPP piles …", flush=True)
    started = time.monotonic()
    ensure_estate(args.piles, args.prefix)
    print(f"  ready in {time.monotonic() - started:.1f} s; open files limit {limit}", flush=True)
    env = dict(os.environ)
    env.setdefault("LOG_LEVEL", "WARNING")
    gateway = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "ocpp_gateway", "--host", "127.0.0.1",
         "--port", str(args.port), "--metrics-host", "127.0.0.1",
         "--metrics-port", str(args.metrics_port), "--gateway-id", "ocpp-bench"], env=env)
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(args.bare_port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        bare.stdout.readline()
        for _ in range(600):  # Django starts slowly on a busy machine
            try:
                scrape(args.metrics_port)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("the gateway did not start")
        run(args, gateway.pid)
    finally:
        for process in (gateway, bare):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
