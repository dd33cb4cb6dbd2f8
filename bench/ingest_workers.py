"""Ingestion with 1 vs 2 ingest processes next to the warehouse process, state on SQLite vs PostgreSQL (issue 10).

Setups, each on a fresh data directory, the same load client as ``bench/ingest.py`` (batches of 100 over 8
keep-alive connections from a separate process; ~1% resent to prove dedup):
  (a) ``serve``      — one ``siyu serve`` takes the acks and loads DuckDB (today's deployment);
  (b) ``ingest_x1``  — ``siyu serve`` (warehouse + loader) + ``siyu serve-ingest --workers 1`` taking all /v1;
  (c) ``ingest_x2``  — ``siyu serve`` + ``siyu serve-ingest --workers 2`` (two processes sharing the port).
For each: the saturation throughput (closed loop) and the ack latency at 20,000 events/s offered (open loop),
then lost / duplicated counted in DuckDB after a clean stop.  The machine's load average is recorded with each
run: on a shared machine the figures are noisy.

Usage: ``python -m bench.ingest_workers [SECONDS] [setup ...] [--states=sqlite,postgres] [--merge]`` (``--merge``
replaces just these runs in ``bench/results/ingest_workers.json``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa

from bench.ingest import GOAL_RATE, ROOT, _client, _cpu_seconds, _free_port, _load, _phase, _siyu
from siyu.config import Settings
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context

BRAND = "bench-ingest"
SETUPS = {"serve": 0, "ingest_x1": 1, "ingest_x2": 2}


def _wait_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + 240  # a loaded machine starts Python processes slowly
    while time.time() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {log.read_text()[-2000:]}")
    raise RuntimeError(f"{base} did not start")


def _wait_workers(base: str, workers: int, timeout: float = 300.0) -> None:
    """Until ``workers`` distinct worker pids answer /healthz (spawned workers start one by one)."""
    pids: set[int] = set()
    deadline = time.time() + timeout
    while len(pids) < workers and time.time() < deadline:
        with suppress(httpx.HTTPError):
            pids.add(int(httpx.get(base + "/healthz", timeout=5).json()["pid"]))
        time.sleep(0.05)
    if len(pids) < workers:
        raise RuntimeError(f"only {len(pids)} of {workers} ingest workers answered")
    time.sleep(2.0)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # graceful: flush the writer (ingest: end-of-stream marker)
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_tree(pids: list[int]) -> float | None:
    total = 0.0
    for pid in pids:
        for p in [pid, *_children(pid)]:
            cpu = _cpu_seconds(p)
            if cpu is None:
                return None
            total += cpu
    return total


def run_one(setup: str, state: str, pg_url: str | None, seconds: float, connections: int = 8) -> dict[str, Any]:
    """One setup on a fresh data directory; returns its figures."""
    workers = SETUPS[setup]
    tmp = Path(tempfile.mkdtemp(prefix="siyu-bench-ingest-workers-"))
    state_url = pg_url or ""
    if pg_url:
        from tests.support.prod import fresh_postgres

        fresh_postgres(pg_url)
    env = {
        **os.environ,
        "SIYU_DATA_DIR": str(tmp / "data"),
        "SIYU_DATABASE_URL": state_url,
        "SIYU_SCHEDULER": "off",
        "SIYU_HUEY_CONSUMER": "off",
    }
    env.pop("SIYU_INGEST_PROCESSES", None)
    settings = Settings(data_dir=tmp / "data", database_url=state_url)
    ctx = Context.open(settings)
    create_brand(ctx, BRAND, "Bench")
    _, key = write_keys.create_key(ctx, BRAND, "bench")
    ctx.close()
    wport = _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    errs = open(tmp / "stderr.log", "wb")  # noqa: SIM115 - the servers write to it until they stop
    try:
        warehouse = subprocess.Popen(
            [_siyu(), "serve", "--port", str(wport)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errs
        )
        procs.append(warehouse)
        _wait_up(f"http://127.0.0.1:{wport}", warehouse, tmp / "stderr.log")
        base = f"http://127.0.0.1:{wport}"
        if workers:
            iport = _free_port()
            ingest = subprocess.Popen(
                [_siyu(), "serve-ingest", "--port", str(iport), "--workers", str(workers)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=errs,
            )
            procs.append(ingest)
            base = f"http://127.0.0.1:{iport}"
            _wait_up(base, ingest, tmp / "stderr.log")
            _wait_workers(base, workers)
        pids = [p.pid for p in procs]
        cpu0, load0 = _cpu_tree(pids), _load()
        split0 = [_cpu_tree([p]) for p in pids]
        saturated = _client(base, key, seconds, connections, 0, "s", env)
        cpu1, load1 = _cpu_tree(pids), _load()
        split1 = [_cpu_tree([p]) for p in pids]
        paced = _client(base, key, seconds, connections, GOAL_RATE, "r", env)
        load2 = _load()
    finally:
        for p in reversed(procs):  # ingest processes first, then the warehouse loads what they left
            _stop(p)
        errs.close()
    acked_batches = sorted(set(saturated["acked"]) | set(paced["acked"]))
    unique_acked = 100 * len(acked_batches)
    con = duckdb.connect(settings.warehouse_file, read_only=True)
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    distinct = con.execute("SELECT count(DISTINCT message_id) FROM events").fetchone()[0]  # type: ignore[index]
    con.register("acked", pa.table({"b": pa.array(acked_batches, pa.string())}))
    stored_acked = con.execute(
        "SELECT count(*) FROM events e JOIN acked a ON a.b = substr(e.message_id, 1, length(e.message_id) - 4)"
    ).fetchone()[0]  # type: ignore[index]
    con.close()
    left = list((tmp / "data" / "ingest-log").glob("*.arrows"))
    errors_logged = (tmp / "stderr.log").read_text(errors="replace")[-1000:]
    shutil.rmtree(tmp, ignore_errors=True)
    sat, at_goal = _phase(saturated), _phase(paced)
    return {
        "setup": setup,
        "state": state,
        "ingest_processes": workers,
        "max_events_per_s": sat["events_per_s"],
        "ack_p50_ms_at_goal_rate": at_goal["ack_p50_ms"],
        "ack_p99_ms_at_goal_rate": at_goal["ack_p99_ms"],
        "p99_under_50ms_at_goal_rate": at_goal["ack_p99_ms"] < 50 and at_goal["events_per_s"] >= 0.98 * GOAL_RATE,
        "saturation": sat,
        "at_goal_rate": at_goal,
        "unique_acked_events": unique_acked,
        "stored_events": stored,
        "lost": unique_acked - stored_acked,
        "duplicated": stored - distinct + max(0, stored_acked - unique_acked),
        "segments_left": len(left),
        "server_stderr_tail": errors_logged,
        "server_cpu_us_per_event_saturated": round(1e6 * (cpu1 - cpu0) / max(1, saturated["acked_events"]), 1)
        if cpu0 is not None and cpu1 is not None
        else None,
        "cpu_us_per_event_saturated_by_process": {
            name: round(1e6 * (b - a) / max(1, saturated["acked_events"]), 1)
            for name, a, b in zip(["warehouse", "ingest"], split0, split1, strict=False)
            if a is not None and b is not None
        },
        "load_avg_1m": [load0, load1, load2],
    }


def run(seconds: float = 12.0, setups: list[str] | None = None, states: list[str] | None = None) -> dict[str, Any]:
    """Every setup on every state backend; the summary compares p99 at 20k events/s and saturation."""
    setups = setups or list(SETUPS)
    states = states or ["sqlite", "postgres"]
    runs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        pg_url = None
        if "postgres" in states:
            from tests.support.postgres import postgres_server

            pg_url = stack.enter_context(postgres_server())
        for state in states:
            for setup in setups:
                runs.append(run_one(setup, state, pg_url if state == "postgres" else None, seconds))
                print(orjson.dumps(runs[-1]).decode(), file=sys.stderr, flush=True)
    return _report(runs, seconds)


def _report(runs: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    summary = {
        f"{r['state']}/{r['setup']}": {
            "max_events_per_s": r["max_events_per_s"],
            "ack_p50_ms_at_20k": r["ack_p50_ms_at_goal_rate"],
            "ack_p99_ms_at_20k": r["ack_p99_ms_at_goal_rate"],
            "p99_under_50ms": r["p99_under_50ms_at_goal_rate"],
            "lost": r["lost"],
            "duplicated": r["duplicated"],
            "load_avg_1m": r["load_avg_1m"],
        }
        for r in runs
    }
    return {
        "seconds_per_phase": seconds,
        "connections": 8,
        "batch_size": 100,
        "goal": {"events_per_s": int(GOAL_RATE), "ack_p99_ms": 50},
        "cpu_cores": os.cpu_count(),
        "summary": summary,
        "runs": runs,
    }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    secs = float(args[0]) if args else 12.0
    chosen = args[1:] or None
    result = run(secs, chosen, opts["states"].split(",") if "states" in opts else None)
    if "--merge" in sys.argv:  # replace these runs in bench/results/ingest_workers.json, keep the others
        out = ROOT / "bench" / "results" / "ingest_workers.json"
        new = {(r["state"], r["setup"]) for r in result["runs"]}
        kept = [r for r in orjson.loads(out.read_bytes())["runs"] if (r["state"], r["setup"]) not in new]
        order = {name: i for i, name in enumerate(SETUPS)}
        merged = sorted(kept + result["runs"], key=lambda r: (r["state"] != "sqlite", order[r["setup"]]))
        result = _report(merged, secs)
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
