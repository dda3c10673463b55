"""Load benchmark of the YKC gateway: N simulated piles on loopback at the protocol's cadence.

    DB_NAME=evplatform .venv/bin/python benchmarks/ykc_gateway_load.py [--piles 10000]

Creates (once, in bulk) an operator ``ykc-bench`` with N registered piles, starts the
gateway as a subprocess (``manage.py ykc_gateway``), ramps the piles up (login, billing
model check, connector reports), then measures for ``--duration`` seconds while every
connector heartbeats every 10 s and the ``--charging`` share of piles sends real-time data
every 15 s. Reports connections held, frames/s, reply latency p50/p99 (heartbeat round
trip measured by the piles, and the gateway's own receive → reply histogram), and the
gateway's CPU and RSS. Needs PostgreSQL and Redis (``make setup`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def ensure_estate(count: int, prefix: str) -> str:
    """The bench operator and ``count`` piles (half with two connectors); its schema."""
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
    with schema_context(get_public_schema_name()):
        have = set(PileRegistration.objects.filter(code__in=codes)
                   .values_list("code", flat=True))
        PileRegistration.objects.bulk_create(
            [PileRegistration(code=c, operator=operator) for c in codes if c not in have],
            batch_size=2000)
    from django.db import connection

    connection.close()
    return operator.schema_name


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = int(fields[21]) * PAGE
    return cpu, rss


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def histogram_quantile(before: dict, after: dict, reply: str | None, q: float,
                       metric: str = "ykc_reply_latency_seconds") -> float | None:
    """Upper bucket bound holding quantile ``q`` of the observations between two scrapes."""
    labels = f'type="{reply}",' if reply else ""
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(args, stats) -> None:
    from protocols.ykc.simulator import SimulatedPile, scenario

    prefix = args.prefix
    tasks = []
    piles = []
    for i in range(args.piles):
        code = f"{prefix}{i:0{14 - len(prefix)}d}"
        pile = SimulatedPile(code, "127.0.0.1", args.port, connectors=1 + i % 2, stats=stats)
        piles.append(pile)
        tasks.append(asyncio.create_task(pile.run()))
        name = "load" if random.random() < args.charging else "idle"
        tasks.append(asyncio.create_task(scenario(pile, name)))
        await asyncio.sleep(args.ramp / args.piles)
    return tasks, piles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piles", type=int, default=10_000)
    parser.add_argument("--charging", type=float, default=0.3)
    parser.add_argument("--ramp", type=float, default=120.0,
                        help="seconds to connect all piles")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds after the ramp before measuring")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--port", type=int, default=18768)
    parser.add_argument("--metrics-port", type=int, default=19768)
    parser.add_argument("--prefix", default="3299")
    parser.add_argument("--heartbeat-log-every", type=int, default=None,
                        help="YKC_FRAME_LOG_HEARTBEAT_EVERY for the gateway")
    args = parser.parse_args()
    limit = raise_nofile()
    print(f"estate: {args.piles} piles …", flush=True)
    started = time.monotonic()
    ensure_estate(args.piles, args.prefix)
    print(f"  ready in {time.monotonic() - started:.1f} s; open files limit {limit}", flush=True)

    env = dict(os.environ)
    if args.heartbeat_log_every is not None:
        env["YKC_FRAME_LOG_HEARTBEAT_EVERY"] = str(args.heartbeat_log_every)
    env.setdefault("LOG_LEVEL", "WARNING")
    gateway = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "ykc_gateway", "--host", "127.0.0.1",
         "--port", str(args.port), "--metrics-host", "127.0.0.1",
         "--metrics-port", str(args.metrics_port), "--gateway-id", "bench"], env=env)
    try:
        for _ in range(100):
            try:
                scrape(args.metrics_port)
                break
            except OSError:
                time.sleep(0.2)
        import uvloop

        uvloop.run(run(args, gateway.pid))
    finally:
        gateway.terminate()
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()


async def run(args, gateway_pid: int) -> None:
    from protocols.ykc.simulator import Stats

    stats = Stats(keep_latencies=False)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    lags: list[float] = []
    measuring = False

    async def watch(period: float = 0.05) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(period)
            if measuring:
                lags.append(loop.time() - start - period)

    watcher = asyncio.create_task(watch())
    print(f"ramp: {args.piles} piles over {args.ramp:.0f} s …", flush=True)
    ramp_start = time.monotonic()
    tasks, piles = await drive(args, stats)
    while sum(p.logged_in.is_set() for p in piles) < args.piles:
        if time.monotonic() - ramp_start > args.ramp + 300:
            break
        await asyncio.sleep(1)
    online = sum(p.logged_in.is_set() for p in piles)
    print(f"  {online} piles logged in {time.monotonic() - ramp_start:.0f} s after the first "
          f"connect ({stats.logins} logins, {stats.login_refused} refused)", flush=True)
    await asyncio.sleep(args.settle)

    before = scrape(args.metrics_port)
    cpu0, _ = proc_stats(gateway_pid)
    out0, in0 = stats.frames_out, stats.frames_in
    t0 = time.monotonic()
    stats.latencies.clear()
    stats.keep_latencies = True
    measuring = True
    rss_peak = 0
    while time.monotonic() - t0 < args.duration:
        await asyncio.sleep(1)
        rss_peak = max(rss_peak, proc_stats(gateway_pid)[1])
    stats.keep_latencies = False
    measuring = False
    watcher.cancel()
    elapsed = time.monotonic() - t0
    cpu1, rss = proc_stats(gateway_pid)
    after = scrape(args.metrics_port)
    latencies = stats.latencies

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
    print(f"piles simulated            {args.piles} ({args.charging:.0%} charging)")
    print(f"connections held           {held:.0f}")
    print(f"gateway frames in/s        {total_in / elapsed:.0f} "
          f"(heartbeats {frames_in / elapsed:.0f}/s)")
    print(f"gateway frames out/s       {total_out / elapsed:.0f}")
    print(f"client frames sent/recv/s  {(stats.frames_out - out0) / elapsed:.0f} / "
          f"{(stats.frames_in - in0) / elapsed:.0f}")
    if latencies:
        print(f"heartbeat round trip       p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms, mean "
              f"{statistics.fmean(latencies) * 1000:.1f} ms (n={len(latencies)})")
    p50 = histogram_quantile(before, after, "0x04", 0.5)
    p99 = histogram_quantile(before, after, "0x04", 0.99)
    if p50 is not None:
        print(f"gateway 0x03→0x04 latency  p50 ≤ {p50 * 1000:g} ms, p99 ≤ {p99 * 1000:g} ms "
              "(histogram bucket bounds)")
    lag99 = histogram_quantile(before, after, None, 0.99, "ykc_event_loop_lag_seconds")
    if lag99 is not None:
        print(f"gateway event-loop lag     p99 ≤ {lag99 * 1000:g} ms (histogram bucket bound)")
    if lags:
        print(f"client event-loop lag      p50 {percentile(lags, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(lags, 0.99) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms")
    print(f"gateway CPU                {(cpu1 - cpu0) / elapsed * 100:.0f} % of one core")
    print(f"gateway RSS                {rss / 2**20:.0f} MiB (peak {rss_peak / 2**20:.0f} MiB)")
    print(f"gateway errors             {errors or 'none'}")
    for pile in piles:
        pile.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    main()
