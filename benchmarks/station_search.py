"""Benchmark the driver's station list and map against real servers, with wrk.

Run: ``.venv/bin/python benchmarks/station_search.py [--seconds 10] [--servers ...]``.
Uses its own database ``<DB_NAME>_bench_stations`` (made once, then reused) with operator
``bench-stations``: 10,000 stations in 10 cities, 40,000 connectors, prices for today.

Method (what the figures mean):

- Load generator: ``wrk`` (C, epoll; Debian package), 1 thread, 20 connections, each
  request a different point near a city centre (a Lua script cycles through 2,000 URLs).
  wrk is pinned to CPU 1 and the server to CPU 0 with ``taskset``; PostgreSQL and Redis
  run unpinned (they are shared with the machine's other users).
- Server CPU per request: user + system CPU time of the server's processes (master and
  workers, from /proc) over the run, divided by the requests served — what the server
  costs, whatever the client does. PostgreSQL's CPU is not included.
- Each figure is printed with its target, the load average at that moment (the machine
  is shared) and as ratios to baselines measured in the same run on the same server
  process: a bare hello answered before Django (``benchmarks/support/bench_asgi.py``: the
  server's own floor), the floor of a driver-API request (tenant routing, middleware, DRF,
  no query: ``/api/app/v1/bench-floor``) and the previous design of the list and map
  (``benchmarks/support/previous_station_list.py``, mounted only in the benchmark's settings).
- The machine is shared and often busy: absolute figures move with the load; the ratios,
  measured seconds apart on the same server, are what to compare.

Servers (``--servers``, all by default), each a single worker process on CPU 0:

- ``uvicorn-pool``: uvicorn, psycopg 3 pool (``DB_POOL=1``), HTTP through Django's WSGI
  handler in a pool of threads behind a2wsgi (``ASGI_HTTP=wsgi``: the Procfile's ``web``)
- ``uvicorn-persistent``: the same with a persistent connection per thread instead of the
  pool (``DB_POOL=0``, ``DB_CONN_MAX_AGE=600``)
- ``uvicorn-syncchain``: uvicorn, pool, Django's ASGI handler with the middleware and view
  as one sync call per request (``ASGI_HTTP=sync_chain``: ``web`` before)
- ``uvicorn-stock``: the same with Django's stock ASGI handler (``ASGI_HTTP=stock``: a
  thread hop per middleware)
- ``uvicorn-nopool``: uvicorn, stock ASGI handler, a new connection per request (the
  Procfile before the pool)
- ``gunicorn-uvicorn``: gunicorn with one uvicorn worker, pool, the project's HTTP handler
- ``gunicorn-wsgi``: gunicorn gthread (WSGI, 8 threads), persistent connections

Run: ``--servers uvicorn-syncchain --seconds 5`` for a quick look at the Procfile's server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")
BASE_DB = os.environ.get("DB_NAME", "evplatform")
BENCH_DB = f"{BASE_DB}_bench_stations"
os.environ["DB_NAME"] = BENCH_DB

SLUG = "bench-stations"
STATIONS = 10_000
CONNECTORS_PER_STATION = 4
CONNECTIONS = 20
TARGET_P95_MS = 50.0
CITIES = [  # GCJ-02 centres
    ("上海市", 31.2304, 121.4737), ("北京市", 39.9042, 116.4074), ("广州市", 23.1291, 113.2644),
    ("深圳市", 22.5431, 114.0579), ("杭州市", 30.2741, 120.1551), ("成都市", 30.5728, 104.0668),
    ("武汉市", 30.5928, 114.3055), ("西安市", 34.3416, 108.9398), ("南京市", 32.0603, 118.7969),
    ("重庆市", 29.5630, 106.5516),
]
SERVERS = ("uvicorn-pool", "uvicorn-persistent", "uvicorn-syncchain", "uvicorn-stock", "uvicorn-nopool",
           "gunicorn-uvicorn", "gunicorn-wsgi")
PORTS = range(int(os.environ.get("BENCH_PORT_FROM", "18610")), int(os.environ.get("BENCH_PORT_TO", "18640")))

WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
wrk.headers["X-Tenant"] = os.getenv("BENCH_TENANT")
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, "errors": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


def _admin_sql(sql: str, dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, user=os.environ.get("DB_USER", "postgres"),
                            host=os.environ.get("DB_HOST", "127.0.0.1"),
                            port=os.environ.get("DB_PORT", "5432"))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
    conn.close()
    return rows


def provision():
    if not _admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DB}'"):
        _admin_sql(f'CREATE DATABASE "{BENCH_DB}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import tenant_context

    from stations.models import Connector, Pile, Station
    from tenants.models import PileRegistration
    from tenants.selectors import operator_get_by_slug
    from tenants.services import operator_create, platform_ensure, template_schema_ensure

    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()
    platform_ensure()
    operator = operator_get_by_slug(SLUG)
    if operator is None:
        template_schema_ensure()
        operator = operator_create(
            slug=SLUG, name="压测运营商", domain=f"{SLUG}.localhost", admin_username="admin",
            admin_password="bench-pass-123",
        ).operator
    else:
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=0)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    with tenant_context(operator):
        if Connector.objects.count() == STATIONS * CONNECTORS_PER_STATION:
            # Keep "today's prices" today, so the price-now path is measured.
            Station.objects.exclude(price_today=None).update(
                price_today={"date": today, "slots": ["1.20000"] * 48, "periods": []})
            print(f"reusing {STATIONS} stations of {SLUG} in {BENCH_DB}")
        else:
            began = time.perf_counter()
            Connector.objects.all().delete()
            Pile.objects.all().delete()
            Station.objects.all().delete()
            PileRegistration.objects.filter(operator=operator).delete()
            rng = random.Random(7)
            stations = []
            for i in range(STATIONS):
                city, lat, lng = CITIES[i % len(CITIES)]
                stations.append(Station(
                    name=f"{city}压测站{i}", code=f"B{i:07d}", address=f"{city}某路{i}号", city=city,
                    area_code="310101",
                    latitude=Decimal(f"{rng.gauss(lat, 0.08):.6f}"),
                    longitude=Decimal(f"{rng.gauss(lng, 0.08):.6f}"),
                    price_today=({"date": today, "slots": ["1.20000"] * 48, "periods": []}
                                 if rng.random() < 0.9 else None),
                ))
            stations = Station.objects.bulk_create(stations, batch_size=2000)
            piles = Pile.objects.bulk_create([
                Pile(station=s, code=f"9{i:013d}", rated_power_kw=Decimal("120"),
                     connector_count=CONNECTORS_PER_STATION, online=rng.random() < 0.95)
                for i, s in enumerate(stations)
            ], batch_size=2000)
            PileRegistration.objects.bulk_create(
                [PileRegistration(code=p.code, operator=operator) for p in piles], batch_size=2000,
                ignore_conflicts=True)
            statuses = ["idle", "idle", "plugged", "charging", "charging", "fault", "offline"]
            Connector.objects.bulk_create([
                Connector(pile=p, number=n, connector_type=4 if n <= 2 else 2, rated_power_kw=Decimal("60"),
                          qr_code=f"{p.code}{n:02d}", status=rng.choice(statuses))
                for p in piles for n in range(1, CONNECTORS_PER_STATION + 1)
            ], batch_size=5000)
            print(f"provisioned {STATIONS} stations, {len(piles) * CONNECTORS_PER_STATION} connectors "
                  f"in {time.perf_counter() - began:.1f}s")
        # Live statuses in Redis for a third of the connectors, as a running gateway keeps them.
        from stations import live

        schema = connection.schema_name
        pipe = live.client().pipeline(transaction=False)
        now = datetime.now(UTC).isoformat()
        for code, number in Connector.objects.values_list("pile__code", "number")[::3]:
            pipe.hset(live.connector_key(schema, code, number), mapping={"status": "idle", "updated": now})
            pipe.expire(live.connector_key(schema, code, number), 3600)
        pipe.execute()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE stations_station; ANALYZE stations_pile; ANALYZE stations_connector")
    connection.close()


def _paths(kind: str, prefix: str, n: int = 2000) -> list[str]:
    rng = random.Random(11)
    out = []
    for _ in range(n):
        _, clat, clng = rng.choice(CITIES)
        lat, lng = rng.gauss(clat, 0.05), rng.gauss(clng, 0.05)
        if kind == "list":
            out.append(f"{prefix}/stations?lat={lat:.6f}&lng={lng:.6f}&sort=distance")
        elif kind == "map":
            out.append(f"{prefix}/stations/map?bbox={lng - 0.05:.6f},{lat - 0.045:.6f},"
                       f"{lng + 0.05:.6f},{lat + 0.045:.6f}")
        elif kind == "floor":
            out.append(f"{prefix}/bench-floor")
        else:
            out.append("/bench/hello")
    return out


def _port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {PORTS}")


def start_server(kind: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.support.bench_settings",
           "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING", "DB_NAME": BENCH_DB}
    bind = f"127.0.0.1:{port}"
    py = sys.executable
    uvicorn = [py, "-m", "uvicorn", "benchmarks.support.bench_asgi:asgi", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    if kind == "uvicorn-pool":
        env.update(DB_POOL="1", ASGI_HTTP="wsgi")
        cmd = uvicorn
    elif kind == "uvicorn-persistent":
        env.update(DB_POOL="0", DB_CONN_MAX_AGE="600", ASGI_HTTP="wsgi")
        cmd = uvicorn
    elif kind == "uvicorn-syncchain":
        env.update(DB_POOL="1", ASGI_HTTP="sync_chain")
        cmd = uvicorn
    elif kind == "uvicorn-stock":
        env.update(DB_POOL="1", ASGI_HTTP="stock")
        cmd = [py, "-m", "uvicorn", "benchmarks.support.bench_asgi:asgi", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    elif kind == "uvicorn-nopool":
        env.update(DB_POOL="0", DB_CONN_MAX_AGE="0", ASGI_HTTP="stock")
        cmd = [py, "-m", "uvicorn", "benchmarks.support.bench_asgi:asgi", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    elif kind == "gunicorn-uvicorn":
        env.update(DB_POOL="1")
        cmd = [py, "-m", "gunicorn", "benchmarks.support.bench_asgi:asgi", "-k", "uvicorn.workers.UvicornWorker",
               "-w", "1", "-b", bind, "--log-level", "warning"]
    elif kind == "gunicorn-wsgi":
        env.update(DB_POOL="0", DB_CONN_MAX_AGE="600")
        cmd = [py, "-m", "gunicorn", "benchmarks.support.bench_asgi:wsgi", "-k", "gthread", "--threads", "8",
               "-w", "1", "-b", bind, "--log-level", "warning"]
    else:
        raise SystemExit(f"unknown server {kind}")
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL)
    import urllib.request

    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://{bind}/bench/hello", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} exited with {proc.returncode}") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} did not start")


def _tree_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of ``pid`` and its descendants (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry))
        stats[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo += children.get(p, [])
    return total


def _answered(url: str, within_s: float = 180) -> None:
    """Wait until ``url`` answers 200 once (a cold server opens its pool, loads the URLconf)."""
    import urllib.request

    request = urllib.request.Request(url, headers={"X-Tenant": SLUG})
    deadline = time.monotonic() + within_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer 200 within {within_s:.0f} s")
        time.sleep(0.5)


def run_wrk(base: str, paths: list[str], seconds: float, server_pid: int, workdir: Path) -> dict:
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "BENCH_PATHS": str(paths_file), "BENCH_TENANT": SLUG}
    _answered(base + paths[0])
    # Warm up (imports, pools, PostgreSQL's caches), then measure.
    subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", "-d2s", "-s", str(script), base],
                   env=env, capture_output=True, check=True)
    cpu0 = _tree_cpu_seconds(server_pid)
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--timeout", "10s",
         "-s", str(script), base],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    cpu = _tree_cpu_seconds(server_pid) - cpu0
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / result["seconds"]
    result["load"] = os.getloadavg()[0]
    result["cpu_ms"] = cpu / max(result["requests"], 1) * 1000
    return result


def _fmt(name: str, r: dict, target: str, ratio: str) -> str:
    return (f"  {name:<24} p50 {r['p50']:7.1f}  p95 {r['p95']:7.1f}  p99 {r['p99']:7.1f} ms  "
            f"{r['rps']:7.1f} req/s  server CPU {r['cpu_ms']:6.2f} ms/req  "
            f"errors {r['errors'] + r['socket_errors']:<3} load {r['load']:5.1f} | {target} | {ratio}")


HELLO, FLOOR = "hello (bare server)", "API floor (Django, DRF)"


def main():
    parser = argparse.ArgumentParser(description="station list/map under wrk")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--servers", nargs="*", default=list(SERVERS), choices=SERVERS)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    provision()
    load = os.getloadavg()[0]
    print(f"station list and map: {STATIONS} stations, {STATIONS * CONNECTORS_PER_STATION} connectors; "
          f"wrk 1 thread x {CONNECTIONS} connections on CPU 1, server (1 worker) on CPU 0, "
          f"{args.seconds:.0f} s a scenario")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} at start — shared and busy: "
          "compare the ratios (same run, same server), not the absolute milliseconds")
    summary = []
    with tempfile.TemporaryDirectory(prefix="evp-bench-") as tmp:
        workdir = Path(tmp)
        for kind in args.servers:
            port = _port()
            server = start_server(kind, port)
            base = f"http://127.0.0.1:{port}"
            try:
                print(f"[{kind}]")
                results = {}
                for name, paths in (
                    (HELLO, _paths("hello", "")),
                    (FLOOR, _paths("floor", "/api/app/v1")),
                    ("list, previous design", _paths("list", "/api/app/v1/bench-previous")),
                    ("list", _paths("list", "/api/app/v1")),
                    ("map, previous design", _paths("map", "/api/app/v1/bench-previous")),
                    ("map", _paths("map", "/api/app/v1")),
                ):
                    r = results[name] = run_wrk(base, paths, args.seconds, server.pid, workdir)
                    if name == HELLO:
                        print(_fmt(name, r, "target: none (the server's floor)", "ratio 1.00"))
                        continue
                    hello = results[HELLO]
                    ratio = f"vs hello: p95 x{r['p95'] / hello['p95']:.1f}, CPU x{r['cpu_ms'] / hello['cpu_ms']:.1f}"
                    if name == FLOOR:
                        print(_fmt(name, r, "target: none (Django's floor)", ratio))
                        continue
                    floor = results[FLOOR]
                    ratio += f"; vs API floor: p95 x{r['p95'] / floor['p95']:.2f}, CPU x{r['cpu_ms'] / floor['cpu_ms']:.2f}"
                    prev = results.get(f"{name}, previous design")
                    if prev:
                        ratio += (f"; vs previous: p95 x{r['p95'] / prev['p95']:.2f}, "
                                  f"CPU x{r['cpu_ms'] / prev['cpu_ms']:.2f}")
                    met = "MET" if r["p95"] < TARGET_P95_MS else "not met"
                    print(_fmt(name, r, f"target p95 < {TARGET_P95_MS:.0f} ms: {met}", ratio))
                summary.append((kind, results))
            finally:
                server.terminate()
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:  # a busy machine: gunicorn's graceful stop is slow
                    server.kill()
                    server.wait(15)
    print("summary (each figure beside its target; load average when measured):")
    for kind, results in summary:
        h = results[HELLO]
        for name in ("list", "map"):
            r = results[name]
            print(f"  {kind:<18} {name:<4} p95 {r['p95']:7.1f} ms (target < {TARGET_P95_MS:.0f}: x{r['p95'] / TARGET_P95_MS:.2f} "
                  f"of target; bare hello's p95 {h['p95']:.1f} ms, x{r['p95'] / h['p95']:.1f})  "
                  f"{r['rps']:6.1f} req/s  server CPU {r['cpu_ms']:.2f} ms/req (x{r['cpu_ms'] / h['cpu_ms']:.1f} of hello, "
                  f"x{r['cpu_ms'] / results[FLOOR]['cpu_ms']:.2f} of the API floor)  load {r['load']:.1f}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
