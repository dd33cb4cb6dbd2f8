"""Ingestion across processes, over real HTTP: one warehouse process (`siyu serve`) and two ingest-only processes
(`siyu serve-ingest`) on one data directory, state on SQLite (WAL) or PostgreSQL.

Events sent to either ingest process land once and are queryable in the warehouse process; the same messageIds
sent to both are stored once; revoking a key takes effect in the ingest processes within the key cache's TTL; the
per-key rate limit holds across processes; kill -9 of an ingest process mid-stream loses nothing acknowledged and
its segment is loaded, then deleted.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import write_keys
from siyu.services.brands import create_brand, create_user
from siyu.services.context import Context
from siyu.services.ingest import log as ingest_log
from tests.support.postgres import free_port
from tests.support.prod import fresh_postgres, start_siyu

ROOT = Path(__file__).resolve().parents[1]
SIYU = str(Path(sys.executable).parent / "siyu")
ADMIN = ("ip.admin", "pw-123456")


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _start(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return start_siyu(args, env, port, log, 180)  # generous: a loaded CI machine starts Python processes slowly


@dataclass
class Cluster:
    """A warehouse process and two ingest processes on one data directory."""

    data: Path
    warehouse: str
    ingest: list[str]
    procs: dict[str, subprocess.Popen[bytes]]
    keys: dict[str, str] = field(default_factory=dict)  # label → secret
    key_ids: dict[str, str] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        r = httpx.get(self.warehouse + "/api/ingest/status", auth=ADMIN, timeout=10)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_events(self, n: int, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            got = int(self.status()["events"])
            if got >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.2)


def _env(data: Path, state_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SIYU_DATA_DIR": str(data),
        "SIYU_DATABASE_URL": state_url,
        "SIYU_SCHEDULER": "off",
        "SIYU_HUEY_CONSUMER": "off",
        "SIYU_INGEST_PROCESSES": "2",  # the proxy sends /v1 to the two ingest processes
        "SIYU_RATE_LIMIT_PER_SECOND": "20",
        "SIYU_RATE_LIMIT_BURST": "20",
    }


@contextmanager
def _cluster(tmp_path: Path, state_url: str) -> Iterator[Cluster]:
    data = tmp_path / "data"
    ctx = Context.open(Settings(data_dir=data, database_url=state_url))
    create_brand(ctx, "acme", "Acme")
    create_user(ctx, "acme", ADMIN[0], ADMIN[1], Role.ADMIN)
    keys: dict[str, str] = {}
    key_ids: dict[str, str] = {}
    for label in ("main", "revoke", "rate"):
        k, secret = write_keys.create_key(ctx, "acme", label)
        keys[label], key_ids[label] = secret, k.id
    ctx.close()
    env = _env(data, state_url)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports = [free_port() for _ in range(3)]
    try:
        procs["warehouse"] = _start(["serve"], env, ports[0], tmp_path / "warehouse.log")
        for i in (1, 2):
            procs[f"ingest{i}"] = _start(["serve-ingest"], env, ports[i], tmp_path / f"ingest{i}.log")
        base = [f"http://127.0.0.1:{p}" for p in ports]
        yield Cluster(data, base[0], base[1:], procs, keys, key_ids)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _batch(tag: str, n: int) -> dict[str, Any]:
    return {
        "batch": [
            {"type": "identify", "messageId": f"{tag}-{i}", "userId": f"{tag}-user{i}", "anonymousId": f"{tag}-a{i}"}
            if i % 10 == 0
            else {"type": "track", "messageId": f"{tag}-{i}", "userId": f"{tag}-user{i}", "event": "Viewed"}
            for i in range(n)
        ]
    }


def _post(base: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(base + "/v1/batch", json=body, headers=_basic(key), timeout=30)


STATES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _state_url(request: pytest.FixtureRequest, tmp_path: Path, state: str) -> str:
    """SQLite (WAL) in the data dir, or a fresh schema on the session's PostgreSQL server."""
    if state == "sqlite":
        (tmp_path / "data").mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{tmp_path / 'data' / 'state.sqlite'}"
    return fresh_postgres(request.getfixturevalue("pg_url"))


def _segments_of(status: dict[str, Any], pid: int) -> list[dict[str, Any]]:
    return [s for s in status["segments"] if s["writer_pid"] == pid]


@pytest.mark.parametrize("state", STATES)
def test_two_ingest_processes_feed_one_warehouse(tmp_path: Path, state: str, request: pytest.FixtureRequest) -> None:
    state_url = _state_url(request, tmp_path, state)
    with _cluster(tmp_path, state_url) as c:
        key = c.keys["main"]
        health = httpx.get(c.ingest[0] + "/healthz").json()
        assert (health["role"], health["ingest_processes"], health["rate_limit_per_second"]) == ("ingest", 2, 10)
        # events sent to both ingest processes (and a retry of the same batch to all three processes)
        for i, base in enumerate(c.ingest, start=1):
            for b in range(10):
                r = _post(base, key, _batch(f"i{i}b{b}", 50))
                assert r.status_code == 200, r.text
        for base in [*c.ingest, c.warehouse]:
            assert _post(base, key, _batch("dup", 50)).status_code == 200
        assert c.wait_events(1050) == 1050
        time.sleep(1.0)  # nothing more arrives later: the duplicates were stored once
        status = c.status()
        assert status["events"] == 1050
        assert status["writer"]["foreign_batches"] == 22
        # queryable: OneID resolved the identify events loaded from another process's segment
        deadline = time.monotonic() + 30
        found = 0
        while time.monotonic() < deadline and not found:
            r = httpx.get(c.warehouse + "/api/customers", params={"q": "i2b3-user0"}, auth=ADMIN, timeout=10)
            found = r.json()["total"]
            time.sleep(0.3)
        assert found == 1
        # an ingest process's open segment stays (its writer is alive); stopped gracefully, it is deleted
        pid1, pid2 = (httpx.get(b + "/healthz").json()["pid"] for b in c.ingest)
        assert [(s["writer_alive"], s["loaded_batches"]) for s in _segments_of(status, pid1)] == [(True, 11)]
        c.procs["ingest2"].send_signal(signal.SIGINT)
        c.procs["ingest2"].wait(60)
        deadline = time.monotonic() + 20
        while _segments_of(c.status(), pid2) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _segments_of(c.status(), pid2) == []
        assert c.status()["events"] == 1050


def test_revocation_and_rate_limit_hold_in_every_ingest_process(tmp_path: Path) -> None:
    with _cluster(tmp_path, f"sqlite:///{tmp_path / 'data' / 'state.sqlite'}") as c:
        one = {"type": "track", "userId": "u", "event": "E"}
        revoke = c.keys["revoke"]
        for base in c.ingest:  # both processes cache the key as valid
            assert httpx.post(base + "/v1/track", json=one, headers=_basic(revoke)).status_code == 200
        r = httpx.delete(c.warehouse + f"/api/write-keys/{c.key_ids['revoke']}", auth=ADMIN)
        assert r.status_code == 200, r.text
        t0 = time.monotonic()
        refused: dict[str, float] = {}
        while len(refused) < 2 and time.monotonic() - t0 < 10:
            for base in c.ingest:
                if base not in refused:
                    r = httpx.post(base + "/v1/track", json=one, headers=_basic(revoke))
                    if r.status_code == 401:
                        assert "revoked" in r.json()["error"]
                        refused[base] = time.monotonic() - t0
            time.sleep(0.05)
        assert len(refused) == 2
        assert max(refused.values()) <= write_keys.CACHE_SECONDS + 1.0  # the documented delay (+ request time)

        # rate limit 20 requests/s (burst 20) per key, across two processes: each allows 10/s (burst 10)
        rate = c.keys["rate"]
        ok = {base: 0 for base in c.ingest}
        limited: list[httpx.Response] = []
        clients = {base: httpx.Client(base_url=base, headers=_basic(rate)) for base in c.ingest}
        t0 = time.monotonic()
        for i in range(80):
            base = c.ingest[i % 2]
            r = clients[base].post("/v1/track", json=one)
            if r.status_code == 200:
                ok[base] += 1
            else:
                limited.append(r)
        elapsed = time.monotonic() - t0
        for cl in clients.values():
            cl.close()
        assert sum(ok.values()) <= 20 + 20 * elapsed + 1  # never N x the advertised rate
        assert all(n <= 10 + 10 * elapsed + 1 for n in ok.values())
        assert limited and {r.status_code for r in limited} == {429}
        assert "10/s in each of 2 ingest processes" in limited[0].json()["error"]
        assert int(limited[0].headers["Retry-After"]) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("state", STATES)
def test_kill_9_of_an_ingest_process_mid_stream_loses_nothing_acknowledged(
    tmp_path: Path, state: str, request: pytest.FixtureRequest
) -> None:
    state_url = _state_url(request, tmp_path, state)
    with _cluster(tmp_path, state_url) as c:
        key = c.keys["main"]
        victim = c.procs["ingest1"]
        acked: list[int] = []
        stop = threading.Event()

        def stream() -> None:
            with httpx.Client(base_url=c.ingest[0], headers=_basic(key), timeout=10) as http:
                seq = 0
                while not stop.is_set():
                    try:
                        r = http.post("/v1/batch", json=_batch(f"k{seq}", 100))
                    except httpx.HTTPError:
                        return  # the process is gone
                    if r.status_code == 200:
                        acked.append(seq)
                    seq += 1

        t = threading.Thread(target=stream)
        t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)  # mid-stream: requests in flight
        victim.wait(30)
        stop.set()
        t.join(30)
        assert len(acked) >= 30
        acked_events = 100 * len(acked)
        got = c.wait_events(acked_events)
        time.sleep(1.0)
        got = c.status()["events"]
        assert acked_events <= got <= acked_events + 100  # at most the one batch fsync'd but not answered
        # the dead writer's segment is loaded and then deleted
        deadline = time.monotonic() + 20
        while _segments_of(c.status(), victim.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _segments_of(c.status(), victim.pid) == []
        # the other ingest process carries on
        assert _post(c.ingest[1], key, _batch("after", 10)).status_code == 200
        assert c.wait_events(got + 10) == got + 10
        assert not list((c.data / ingest_log.LOG_DIR_NAME / "failed").glob("*"))
