"""The web process's connection pool (``DB_POOL=1``: psycopg 3, Django's native pool) and
django-tenants: a pooled connection keeps the ``search_path`` its last user set, so every
borrower must set its own. Two operators' requests interleaved on the same pooled
connections must never see each other's rows.

Rows are written through the pooled connections themselves (committed, so every pooled
session sees them) and deleted afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection, connections

pytest.importorskip("psycopg_pool", reason="the pool needs psycopg 3 (requirements.txt)")

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "pooled_test"
MARK = "池测"  # station names of this test start with it


def _wrapper(max_size: int):
    """A DatabaseWrapper on the test database through a pool of ``max_size`` shared by
    every wrapper of ALIAS (Django keeps one pool per alias and process)."""
    settings_dict = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"pool": {"min_size": 1, "max_size": max_size, "timeout": 10}},
    }
    return type(connections["default"])(settings_dict, alias=ALIAS)


@pytest.fixture
def pooled(operators, db):
    """``make(max_size)`` → a pooled wrapper. The pooled sessions are not the test's
    (rolled-back) one: the rows are committed through them, then deleted."""
    made = []

    def make(max_size: int = 1):
        w = _wrapper(max_size)
        made.append(w)
        return w

    writer = make()
    rows = {"tenant-a": ["A1", "A2"], "tenant-b": ["B1"]}
    for slug, codes in rows.items():
        writer.set_tenant(operators[slug])
        with writer.cursor() as cursor:
            for code in codes:
                cursor.execute(
                    "INSERT INTO stations_station (name, code, address, province, city, district,"
                    " area_code, latitude, longitude, station_type, status, opening_hours, phone,"
                    " parking_fee_note, facilities, photos, time_zone, power_sharing, created_at,"
                    " updated_at)"
                    " VALUES (%s, %s, '', '', '上海市', '', '310101', 31.2, 121.4, 1, 50,"
                    " '00:00-24:00', '', '', '[]', '[]', 'Asia/Shanghai', 'equal', now(), now())",
                    [f"{MARK}{code}", f"POOL{code}"],
                )
        writer.close()
    yield make
    for slug in rows:
        writer.set_tenant(operators[slug])
        with writer.cursor() as cursor:
            cursor.execute("DELETE FROM stations_station WHERE code LIKE 'POOL%%'")
        writer.close()
    for w in made:
        w.close()
    writer.close_pool()


def _visit(wrapper, operator) -> tuple[int, list[str]]:
    """One request's worth of work: pick the operator, read, give the connection back."""
    wrapper.set_tenant(operator)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
            cursor.execute("SELECT code FROM stations_station WHERE code LIKE 'POOL%%' ORDER BY code")
            return pid, [r[0] for r in cursor.fetchall()]
    finally:
        wrapper.close()  # back to the pool, search_path and all


def test_alternating_operators_on_one_pooled_connection_see_only_their_rows(pooled, operators):
    a, b = pooled(1), pooled(1)  # a pool of one connection: both borrow the same session
    seen = [
        _visit(w, operators[slug])
        for w, slug in [(a, "tenant-a"), (b, "tenant-b"), (a, "tenant-a"), (b, "tenant-b"),
                        (b, "tenant-a"), (a, "tenant-b")]
    ]
    assert len({pid for pid, _ in seen}) == 1, "the same physical connection every time"
    assert [codes for _, codes in seen] == [
        ["POOLA1", "POOLA2"], ["POOLB1"], ["POOLA1", "POOLA2"], ["POOLB1"],
        ["POOLA1", "POOLA2"], ["POOLB1"],
    ]


def test_switching_operator_without_giving_the_connection_back(pooled, operators):
    w = pooled(1)
    w.set_tenant(operators["tenant-a"])
    with w.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM stations_station WHERE code LIKE 'POOL%%'")
        assert cursor.fetchone()[0] == 2
    w.set_tenant(operators["tenant-b"])
    with w.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM stations_station WHERE code LIKE 'POOL%%'")
        assert cursor.fetchone()[0] == 1
    w.close()


def test_concurrent_interleaved_requests_of_two_operators(pooled, operators):
    """Eight threads (each its own wrapper, as ASGI's thread per request) share a pool of
    two connections, alternating operators; each read sees exactly its operator's rows."""
    expected = {"tenant-a": ["POOLA1", "POOLA2"], "tenant-b": ["POOLB1"]}
    wrong, pids = [], set()
    lock = threading.Lock()

    def worker(i: int):
        w = _wrapper(2)  # made in this thread: a wrapper belongs to its thread
        try:
            for j in range(40):
                slug = "tenant-a" if (i + j) % 2 else "tenant-b"
                pid, codes = _visit(w, operators[slug])
                with lock:
                    pids.add(pid)
                    if codes != expected[slug]:
                        wrong.append((slug, codes))
        finally:
            w.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert len(pids) <= 2, "all requests went through the pool's two connections"


@pytest.mark.timeout(120)
def test_the_web_server_with_a_pool_of_one_serves_two_operators_apart(pooled, operators):
    """The real thing: uvicorn running the ASGI app with DB_POOL=1 and a pool of ONE
    connection, so every request of both operators runs on the same PostgreSQL session;
    concurrent station searches of each operator return only its own stations."""
    port = int(os.environ.get("EVP_TEST_POOL_PORT", "0")) or _free_port()
    env = {
        **os.environ,
        "DB_NAME": connection.settings_dict["NAME"],
        "DB_TEST_NAME": connection.settings_dict["NAME"],
        "DB_POOL": "1", "DB_POOL_MIN": "1", "DB_POOL_MAX": "1",
        "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "evplatform.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
        expected = {"tenant-a": [f"{MARK}A1", f"{MARK}A2"], "tenant-b": [f"{MARK}B1"]}
        wrong = []

        def client(slug: str):
            with httpx.Client(base_url=base, headers={"X-Tenant": slug}, timeout=30) as http:
                for _ in range(15):
                    body = http.get("/api/app/v1/stations", params={"q": MARK}).json()
                    names = sorted(r["name"] for r in body["results"])
                    if names != expected[slug] or body["count"] != len(expected[slug]):
                        wrong.append((slug, body))

        threads = [threading.Thread(target=client, args=(slug,))
                   for slug in ("tenant-a", "tenant-b") * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []
    finally:
        server.terminate()
        server.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_pool_is_off_unless_asked(db):
    """Only the web process asks for it (DB_POOL=1): workers and gateways keep their own
    persistent connections."""
    assert "pool" not in connections["default"].settings_dict["OPTIONS"]
