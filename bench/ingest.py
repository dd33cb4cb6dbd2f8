"""Ingestion benchmark: `siyu serve` in one process, a keep-alive HTTP load client in another.

Two phases against one server, Segment batches of 100 events over 8 keep-alive connections:
1. ``saturation``: closed loop (each connection sends its next batch when the last is acknowledged) — the maximum
   throughput, and the latencies at that saturation (in a closed loop, mean latency = in-flight / throughput);
2. ``at_goal_rate``: open loop at the goal rate (20,000 events/s offered, each connection on a fixed schedule,
   latency measured from the scheduled send time so stalls are not hidden) — the ack latency a client sees when
   the server carries the goal load.
Then counts what is in DuckDB after a clean shutdown: lost = unique acknowledged events not stored, duplicated =
stored rows beyond the unique acknowledged ones (about 1% of batches are resent on purpose).  Goal: ≥ 20,000
events/s with p99 < 50 ms, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa

from siyu.config import Settings
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context

ROOT = Path(__file__).resolve().parents[1]
BRAND = "bench-ingest"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _siyu() -> str:
    exe = Path(sys.executable).parent / "siyu"
    return str(exe) if exe.exists() else (shutil.which("siyu") or "siyu")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


GOAL_RATE = 20_000.0


def _client(
    base: str, key: str, seconds: float, connections: int, rate: float, tag: str, env: dict[str, str]
) -> dict[str, Any]:
    """Run bench.ingest_client in its own process (rate 0 = closed loop) and return its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest_client", base, key, str(seconds), str(connections), str(rate), tag],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        timeout=seconds + 120,
    )
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def _phase(out: dict[str, Any]) -> dict[str, Any]:
    """Throughput and ack latency of one client run."""
    lat: list[float] = out["latencies"]
    elapsed = out["elapsed_s"]
    return {
        "seconds": round(elapsed, 1),
        "requests": len(lat),
        "events_per_s": round(out["acked_events"] / elapsed),
        "ack_p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "ack_p99_ms": round(1000 * _pct(lat, 0.99), 1),
        "ack_max_ms": round(1000 * max(lat), 1) if lat else None,
        "errors": out["errors"],
        "statuses": out["statuses"],
        "resent_batches": out["resent"],
    }


def run(seconds: float = 18.0, connections: int = 8) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    tmp = Path(tempfile.mkdtemp(prefix="siyu-bench-ingest-"))
    env = {**os.environ, "SIYU_DATA_DIR": str(tmp / "data")}
    settings = Settings(data_dir=tmp / "data")
    ctx = Context.open(settings)
    create_brand(ctx, BRAND, "Bench")
    _, key = write_keys.create_key(ctx, BRAND, "bench")
    ctx.close()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [_siyu(), "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("siyu serve did not start")
        cpu0, load0 = _cpu_seconds(server.pid), _load()
        saturated = _client(base, key, seconds, connections, 0, "s", env)
        cpu1, load1 = _cpu_seconds(server.pid), _load()
        paced = _client(base, key, seconds, connections, GOAL_RATE, "r", env)
    finally:
        server.send_signal(signal.SIGINT)  # graceful: uvicorn stops, ctx.close() flushes the writer
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
    acked_batches = sorted(set(saturated["acked"]) | set(paced["acked"]))
    unique_acked = 100 * len(acked_batches)
    con = duckdb.connect(settings.warehouse_file, read_only=True)
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    distinct = con.execute("SELECT count(DISTINCT message_id) FROM events").fetchone()[0]  # type: ignore[index]
    acked_tbl = pa.table({"b": pa.array(acked_batches, pa.string())})
    con.register("acked", acked_tbl)
    stored_acked = con.execute(
        "SELECT count(*) FROM events e JOIN acked a ON a.b = substr(e.message_id, 1, length(e.message_id) - 4)"
    ).fetchone()[0]  # type: ignore[index]
    observations = con.execute("SELECT count(*) FROM identity_observations").fetchone()[0]  # type: ignore[index]
    identities = con.execute("SELECT count(*) FROM identities").fetchone()[0]  # type: ignore[index]
    con.close()
    shutil.rmtree(tmp, ignore_errors=True)
    sat, at_goal = _phase(saturated), _phase(paced)
    return {
        "connections": connections,
        "batch_size": 100,
        "goal": {"events_per_s": int(GOAL_RATE), "ack_p99_ms": 50},
        "max_events_per_s": sat["events_per_s"],
        "ack_p99_ms_at_goal_rate": at_goal["ack_p99_ms"],
        "goal_met": sat["events_per_s"] >= GOAL_RATE
        and at_goal["events_per_s"] >= 0.98 * GOAL_RATE
        and at_goal["ack_p99_ms"] < 50,
        "saturation": sat,
        "at_goal_rate": at_goal,
        "unique_acked_events": unique_acked,
        "stored_events": stored,
        "lost": unique_acked - stored_acked,
        "duplicated": stored - distinct + max(0, stored_acked - unique_acked),
        "stored_not_acked": stored - stored_acked,
        "identity_observations": observations,
        "identities_resolved": identities,
        "cpu_cores": os.cpu_count(),
        "server_cpu_us_per_event_saturated": round(1e6 * (cpu1 - cpu0) / max(1, saturated["acked_events"]), 1)
        if cpu0 is not None and cpu1 is not None
        else None,
        "load_avg_1m_before_after": [load0, load1],
    }


if __name__ == "__main__":
    print(orjson.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 18.0), option=orjson.OPT_INDENT_2).decode())
