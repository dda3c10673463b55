"""Benchmark the driver's station search and map against the real server.

Run: ``.venv/bin/python benchmarks/station_search.py [seconds-per-scenario]`` (DB_NAME as for
``make setup``; default database ``evplatform``). It provisions (or reuses) operator
``bench-stations`` with 10,000 stations in 10 cities and 40,000 connectors (bulk_create),
starts uvicorn on a free loopback port (a subprocess, 2 workers, DEBUG off), and runs
20 concurrent clients (threads, httpx) against

- ``GET /api/app/v1/stations?lat&lng`` (sorted by distance, 10 km, 20 a page), and
- ``GET /api/app/v1/stations/map?bbox=`` (about 10 × 10 km),

printing p50/p95/p99 latency and requests per second for each.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

SLUG = "bench-stations"
STATIONS = 10_000
CONNECTORS_PER_STATION = 4
CLIENTS = 20
CITIES = [  # GCJ-02 centres
    ("上海市", 31.2304, 121.4737), ("北京市", 39.9042, 116.4074), ("广州市", 23.1291, 113.2644),
    ("深圳市", 22.5431, 114.0579), ("杭州市", 30.2741, 120.1551), ("成都市", 30.5728, 104.0668),
    ("武汉市", 30.5928, 114.3055), ("西安市", 34.3416, 108.9398), ("南京市", 32.0603, 118.7969),
    ("重庆市", 29.5630, 106.5516),
]


def provision():
    from stations.models import Connector, Pile, Station
    from tenants.models import PileRegistration
    from tenants.selectors import operator_get_by_slug
    from tenants.services import operator_create, platform_ensure, template_schema_ensure

    connection.set_schema_to_public()
    platform_ensure()
    operator = operator_get_by_slug(SLUG)
    if operator is None:
        template_schema_ensure()
        operator = operator_create(
            slug=SLUG, name="压测运营商", domain=f"{SLUG}.localhost", admin_username="admin",
            admin_password="bench-pass-123",
        ).operator
    with tenant_context(operator):
        if Connector.objects.count() == STATIONS * CONNECTORS_PER_STATION:
            print(f"reusing {STATIONS} stations of {SLUG}")
        else:
            began = time.perf_counter()
            Connector.objects.all().delete()
            Pile.objects.all().delete()
            Station.objects.all().delete()
            PileRegistration.objects.filter(operator=operator).delete()
            rng = random.Random(7)
            today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
            stations = []
            for i in range(STATIONS):
                city, lat, lng = CITIES[i % len(CITIES)]
                slots = [f"{rng.uniform(0.6, 2.0):.5f}"] * 48 if rng.random() < 0.9 else None
                stations.append(Station(
                    name=f"{city}压测站{i}", code=f"B{i:07d}", address=f"{city}某路{i}号", city=city,
                    area_code="310101",
                    latitude=Decimal(f"{rng.gauss(lat, 0.08):.6f}"),
                    longitude=Decimal(f"{rng.gauss(lng, 0.08):.6f}"),
                    price_today={"date": today, "slots": slots, "periods": []} if slots else None,
                ))
            stations = Station.objects.bulk_create(stations, batch_size=2000)
            piles = Pile.objects.bulk_create([
                Pile(station=s, code=f"9{i:013d}", rated_power_kw=Decimal("120"), connector_count=CONNECTORS_PER_STATION,
                     online=rng.random() < 0.95)
                for i, s in enumerate(stations)
            ], batch_size=2000)
            PileRegistration.objects.bulk_create(
                [PileRegistration(code=p.code, operator=operator) for p in piles], batch_size=2000, ignore_conflicts=True
            )
            statuses = ["idle", "idle", "plugged", "charging", "charging", "fault", "offline"]
            Connector.objects.bulk_create([
                Connector(pile=p, number=n, connector_type=4 if n <= 2 else 2, rated_power_kw=Decimal("60"),
                          qr_code=f"{p.code}{n:02d}", status=rng.choice(statuses))
                for p in piles for n in range(1, CONNECTORS_PER_STATION + 1)
            ], batch_size=5000)
            print(f"provisioned {STATIONS} stations, {len(piles) * CONNECTORS_PER_STATION} connectors "
                  f"in {time.perf_counter() - began:.1f}s")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE stations_station; ANALYZE stations_pile; ANALYZE stations_connector")
    connection.close()
    return operator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, interface: str) -> subprocess.Popen:
    """uvicorn with 2 workers. ``asgi`` is the Procfile's app; Django under ASGI runs each
    request in a fresh thread, so persistent DB connections would pile up (one per thread)
    until PostgreSQL refuses more: it connects per request. ``wsgi`` (uvicorn's WSGI
    interface, a fixed thread pool) keeps connections, showing the cost of the view."""
    env = {**os.environ, "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING"}
    if interface == "asgi":
        app, extra = "evplatform.asgi:application", []
        env["DB_CONN_MAX_AGE"] = "0"
    else:
        app, extra = "evplatform.wsgi:application", ["--interface", "wsgi"]
        env["DB_CONN_MAX_AGE"] = "600"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, *extra, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env,
    )
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def run(name: str, base: str, make_url, seconds: float) -> None:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(seed: int):
        nonlocal errors
        rng = random.Random(seed)
        with httpx.Client(base_url=base, headers={"X-Tenant": SLUG}, timeout=10) as http:
            for _ in range(3):  # warm up this connection
                http.get(make_url(rng))
            mine, bad = [], 0
            while time.perf_counter() < stop_at:
                url = make_url(rng)
                t0 = time.perf_counter()
                r = http.get(url)
                mine.append(time.perf_counter() - t0)
                bad += r.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += bad

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:<36} n={len(latencies):>6}  p50={q[49] * 1000:6.1f} ms  p95={q[94] * 1000:6.1f} ms  "
          f"p99={q[98] * 1000:6.1f} ms  {len(latencies) / wall:7.1f} req/s  errors={errors}")


def near(rng: random.Random) -> tuple[float, float]:
    _, lat, lng = rng.choice(CITIES)
    return rng.gauss(lat, 0.05), rng.gauss(lng, 0.05)


def list_url(rng):
    lat, lng = near(rng)
    return f"/api/app/v1/stations?lat={lat:.6f}&lng={lng:.6f}&sort=distance"


def map_url(rng):
    lat, lng = near(rng)
    return f"/api/app/v1/stations/map?bbox={lng - 0.05:.6f},{lat - 0.045:.6f},{lng + 0.05:.6f},{lat + 0.045:.6f}"


def main():
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15
    provision()
    print(f"{CLIENTS} concurrent clients (threads on this machine), {seconds:.0f} s a scenario, "
          f"uvicorn 2 workers, {os.cpu_count()} CPUs shared by clients, server and PostgreSQL")
    for interface in ("asgi", "wsgi"):
        port = free_port()
        server = start_server(port, interface)
        try:
            base = f"http://127.0.0.1:{port}"
            run(f"[{interface}] list (distance, 10 km)", base, list_url, seconds)
            run(f"[{interface}] map (10 × 10 km bbox)", base, map_url, seconds)
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
