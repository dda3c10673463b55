"""Fault matrix: N concurrent charging sessions through simulated piles on an isolated copy
of the platform, one fault injected per round, and what the platform recovered by itself.

    .venv/bin/python benchmarks/fault_matrix.py --sessions 100        # or: make faults

The stack is the Procfile's processes (web, worker, beat, YKC gateway, simulated piles)
started by this script on a database, Redis DB, key prefix and ports of their own (default
``evp_faults``, Redis DB 3, ports 18110-18113; the database is dropped and made again).
Each fault kills or disturbs exactly the processes this script started (never by name):

- ``gateway``: kill -9 of the YKC gateway mid-charge, stops requested while it is down,
  restarted after 5 s;
- ``worker``: stops requested, then kill -9 of the Celery worker holding the stop tasks,
  restarted after 5 s;
- ``web``: kill -9 of the web process, restarted (the driver API is down meanwhile);
- ``links``: every pile's link dropped mid-charge (the piles reconnect by themselves);
- ``power``: every pile loses power for 15 s mid-charge (records kept in flash), stops
  requested while they are dark;
- ``redis``: FLUSHDB of the stack's Redis database mid-charge (routes, live state, the
  broker's queue: everything), stops requested right after;
- ``repeat``: every pile sends its latest record again after settlement.

Per round it prints: sessions, records stored / made, settled, doubled (charge postings
beyond one per order), lost (sessions that charged with no stored record), stuck (orders
not finished, settled, failed or abnormal), piles still charging, the consistency check
(charging.consistency: ledger, postings, holds, records), and the recovery time from the
fault to the last order settled with no pile charging. Drivers are the script itself,
calling the same services the driver API calls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = str(ROOT / ".venv" / "bin" / "python")
FAULTS = ("gateway", "worker", "web", "links", "power", "redis", "repeat")
TERMINAL = ("settled", "failed", "abnormal", "finished")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, in order")
    p.add_argument("--db", default="evp_faults")
    p.add_argument("--redis-db", type=int, default=3)
    p.add_argument("--port-base", type=int, default=18110)
    # Above a few, 100 piles' real-time frames (every 15 s / scale while charging) outrun
    # what two cores can write: the harness would measure its own overload.
    p.add_argument("--time-scale", type=float, default=2)
    p.add_argument("--charge-seconds", type=float, default=8, help="real seconds before the fault")
    p.add_argument("--recovery-timeout", type=float, default=150)
    p.add_argument("--logs", default="", help="directory for the processes' logs")
    return p.parse_args()


ARGS = parse()
PORTS = {"web": ARGS.port_base, "ykc": ARGS.port_base + 1, "metrics": ARGS.port_base + 2,
         "control": ARGS.port_base + 3}
ENV = {
    "DB_NAME": ARGS.db,
    "REDIS_URL": f"redis://127.0.0.1:6379/{ARGS.redis_db}",
    "REDIS_KEY_PREFIX": "evpfaults",
    "DJANGO_SETTINGS_MODULE": "evplatform.settings",
    "DB_CONN_MAX_AGE": "0",
    "EVP_PORT": str(PORTS["web"]),
    "YKC_PORT": str(PORTS["ykc"]),
    "YKC_METRICS_PORT": str(PORTS["metrics"]),
    "ORDERS_RECONCILE_SECONDS": "20",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

LOGS = Path(ARGS.logs or tempfile.mkdtemp(prefix="fault_matrix_"))
LOGS.mkdir(parents=True, exist_ok=True)


# --- the stack ------------------------------------------------------------------------------


def _procfile() -> dict[str, list[str]]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            name, command = line.split(":", 1)
            expanded = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}",
                              lambda m: os.environ.get(m[1], m[2] or ""), command)
            words = shlex.split(expanded)
            while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value prefixes
                words = ["env", *words] if words[0] != "env" else words
                break
            commands[name.strip()] = words
    return commands


class Stack:
    """The Procfile's processes, each started (and killed) by this script by pid."""

    def __init__(self, beat_file: str) -> None:
        procfile = _procfile()
        self.commands = {
            "web": procfile["web"],
            "worker": procfile["worker"],
            "beat": [a if a != "var/celerybeat-schedule" else beat_file for a in procfile["beat"]],
            "ykc": procfile["ykc"],
            "sim": [PY, "manage.py", "ykc_simulate", "--piles-from-db", "--tenant", "faults",
                    "--scenario", "demo", "--time-scale", str(ARGS.time_scale),
                    "--port", str(PORTS["ykc"]), "--control-port", str(PORTS["control"])],
        }
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        self.procs[name] = subprocess.Popen(
            self.commands[name], cwd=ROOT, env=os.environ.copy(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


def control(line: str) -> dict:
    with socket.create_connection(("127.0.0.1", PORTS["control"]), timeout=10) as conn:
        f = conn.makefile("rw")
        f.write(line + "\n")
        f.flush()
        return json.loads(f.readline())


def wait(predicate, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def database_reset() -> None:
    import psycopg2
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn = psycopg2.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"],
                            password=db["PASSWORD"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{ARGS.db}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{ARGS.db}"')
    conn.close()


def seed(n: int):
    """An operator ``faults`` with one station, ``n`` 7 kW single-connector piles, a flat
    tariff (1.00 + 0.50 yuan/kWh) and ``n`` drivers with 200 yuan each."""
    from django.core.management import call_command

    from accounts.models import Member
    from billing.tariffs import pricing
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )
    from charging.models import ChargingPolicy
    from settlement import services as ledger
    from stations.models import Connector, Pile, Station
    from tenants.models import PileRegistration
    from tenants.services import operator_create

    call_command("platform_setup", verbosity=0)
    operator = operator_create(slug="faults", name="故障矩阵", domain="faults.localhost",
                               admin_username="admin", admin_password="faults-admin-123").operator
    codes = [f"3209{i:010d}" for i in range(1, n + 1)]
    PileRegistration.objects.bulk_create(PileRegistration(code=c, operator=operator) for c in codes)
    with tenant_context(operator):
        station = Station.objects.create(
            name="故障站", code="FAULTS", address="测试路 1 号", area_code="440106",
            latitude=Decimal("23.1"), longitude=Decimal("113.3"), status=Station.Status.OPERATING,
        )
        for code in codes:
            pile = Pile.objects.create(station=station, code=code, rated_power_kw=Decimal("7.0"),
                                       connector_count=1)
            Connector.objects.create(pile=pile, number=1, rated_power_kw=Decimal("7.0"),
                                     qr_code=f"{code}01")
        tariff = tariff_create(name="统一价", draft=pricing.flat_tariff(Decimal("1.0"), Decimal("0.5")))
        from datetime import UTC, datetime

        tariff_version_publish(tariff=tariff, effective_from=datetime(2020, 1, 1, tzinfo=UTC))
        station_tariff_assign(stations=[station], tariff=tariff)
        ChargingPolicy.current()
        for i in range(n):
            member = Member.objects.create(openid=f"faults-driver-{i}", nickname=f"司机{i}")
            ledger.wallet_top_up(member=member, amount=Decimal("200.00"), key=f"faults-top-up-{i}")
    connection.set_schema_to_public()
    return operator


# --- one round ------------------------------------------------------------------------------


def start_sessions(operator, n: int) -> list[int]:
    from accounts.models import Member
    from charging import services
    from stations.models import Connector

    ids = []
    with tenant_context(operator):
        members = list(Member.objects.filter(openid__startswith="faults-driver-").order_by("pk"))
        connectors = list(Connector.objects.select_related("pile__station").order_by("pile__code"))
        for member, connector in zip(members[:n], connectors[:n], strict=True):
            try:
                ids.append(services.order_start(member=member, connector=connector).pk)
            except services.OrderRefused as exc:
                print(f"  start refused on {connector.pile.code}: {exc.code}", flush=True)
    return ids


def stop_sessions(operator, ids: list[int]) -> None:
    from charging import services

    with tenant_context(operator):
        for order_id in ids:
            try:
                services.order_stop(order_id=order_id, actor="member")
            except services.OrderRefused:
                pass


def states(operator, ids: list[int]) -> dict[str, int]:
    from collections import Counter

    from charging.models import ChargingOrder

    with tenant_context(operator):
        return dict(Counter(ChargingOrder.objects.filter(pk__in=ids).values_list("state", flat=True)))


def recovered(operator, ids: list[int]) -> bool:
    s = states(operator, ids)
    if sum(v for k, v in s.items() if k not in ("settled", "failed")) > 0:
        return False
    stats = control("stats")
    return stats["charging"] == 0 and stats["unacked"] == 0


def measure(operator, ids: list[int], made_before: int, fault_at: float, done_at: float | None):
    from charging.consistency import consistency_check
    from charging.models import ChargingOrder, TransactionRecord

    stats = control("stats")
    with tenant_context(operator):
        orders = ChargingOrder.objects.filter(pk__in=ids)
        trades = list(orders.values_list("trade_no", flat=True))
        stored = TransactionRecord.objects.filter(trade_no__in=trades).count()
        charged = orders.exclude(started_at__isnull=True).values_list("trade_no", flat=True)
        lost = len(set(charged) - set(
            TransactionRecord.objects.filter(trade_no__in=trades).values_list("trade_no", flat=True)))
        report = consistency_check(grace_s=0)
        counts = report.counts()
        row = {
            "sessions": len(ids),
            "stored": stored,
            "made": stats["records_made"] - made_before,
            "settled": orders.filter(state="settled").count(),
            "doubled": counts.get("charge_doubled", 0),
            "lost": lost,
            "stuck": orders.exclude(state__in=TERMINAL).count(),
            "charging": stats["charging"],
            "check": "ok" if report.ok else ",".join(f"{k}={v}" for k, v in counts.items()),
            "abnormal": orders.filter(state="abnormal").count(),
            "recovery": f"{done_at - fault_at:.0f}" if done_at else f">{ARGS.recovery_timeout:.0f}",
        }
    connection.set_schema_to_public()
    return row


def run_round(stack: Stack, operator, fault: str) -> dict:
    n = ARGS.sessions
    made_before = control("stats")["records_made"]
    ids = start_sessions(operator, n)
    wait(lambda: states(operator, ids).get("charging", 0) + states(operator, ids).get("failed", 0)
         >= len(ids), 90)
    time.sleep(ARGS.charge_seconds)
    fault_at = time.monotonic()
    if fault == "gateway":
        stack.kill9("ykc")
        stop_sessions(operator, ids)
        time.sleep(5)
        stack.start("ykc")
    elif fault == "worker":
        stop_sessions(operator, ids)
        time.sleep(0.3)
        stack.kill9("worker")
        time.sleep(5)
        stack.start("worker")
    elif fault == "web":
        stack.kill9("web")
        stop_sessions(operator, ids)
        time.sleep(2)
        stack.start("web")
    elif fault == "links":
        control("drop *")
        stop_sessions(operator, ids)
    elif fault == "power":
        control("power_off * 15")
        time.sleep(1)
        stop_sessions(operator, ids)
    elif fault == "redis":
        import redis

        redis.Redis.from_url(ENV["REDIS_URL"]).flushdb()
        stop_sessions(operator, ids)
    elif fault == "repeat":
        stop_sessions(operator, ids)
        wait(lambda: recovered(operator, ids), ARGS.recovery_timeout)
        fault_at = time.monotonic()
        control("repeat *")
        time.sleep(2)
    else:  # "none": the baseline, measured the same way
        stop_sessions(operator, ids)
    done = wait(lambda: recovered(operator, ids), ARGS.recovery_timeout, every=1)
    done_at = time.monotonic() if done else None
    # Leave nothing charging for the next round (abnormal orders' piles get their stop
    # re-sent by the reconciler; wait for it, bounded).
    wait(lambda: control("stats")["charging"] == 0, 60)
    return measure(operator, ids, made_before, fault_at, done_at)


def main() -> None:
    from charging.consistency import consistency_check

    def terminate(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")  # the stack is stopped in finally

    signal.signal(signal.SIGTERM, terminate)

    print(f"fault matrix: {ARGS.sessions} sessions, faults {ARGS.faults}, logs in {LOGS}",
          flush=True)
    database_reset()
    import redis

    redis.Redis.from_url(ENV["REDIS_URL"]).flushdb()
    t0 = time.monotonic()
    operator = seed(ARGS.sessions)
    print(f"seeded in {time.monotonic() - t0:.0f} s", flush=True)
    stack = Stack(str(LOGS / "celerybeat-schedule"))
    for name in ("web", "worker", "beat", "ykc", "sim"):
        stack.start(name)
    rows = []
    try:
        from stations.models import Connector

        def plugged():
            with tenant_context(operator):
                return Connector.objects.filter(status="plugged").count() >= ARGS.sessions

        if not wait(plugged, 120):
            raise SystemExit("the simulated piles did not come up")
        connection.set_schema_to_public()
        # A baseline round without a fault, measured the same way.
        for fault in ["none", *ARGS.faults.split(",")]:
            started = time.monotonic()
            row = run_round(stack, operator, fault)
            row["fault"] = fault
            row["round_s"] = f"{time.monotonic() - started:.0f}"
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stack.stop_all()
    with tenant_context(operator):
        final = consistency_check(grace_s=0)
    print()
    header = ("fault", "sessions", "stored", "made", "settled", "doubled", "lost", "stuck",
              "charging", "abnormal", "check", "recovery")
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[h]).rjust(w) for h, w in zip(header, widths, strict=True)))
    print(f"\nrecovery in seconds from the fault to every order settled and no pile charging; "
          f"final consistency check: {'ok' if final.ok else final.counts()}")


if __name__ == "__main__":
    main()
