"""Benchmark: journey steps/s through Huey on SQLite (the embedded default) vs Huey on Redis (SIYU_REDIS_URL).

Same state DB kind (SQLite, so only the queue differs), same journey (A/B split → task → exit: 3 steps per
customer), N customers entered at once; a feeder queues the journey tick every 0.1 s (the scheduler's job, faster)
and a 2-thread consumer in this process runs the ticks. Reported per queue: steps/s from the first to the last
step, and the raw queue rate (``JOBS`` no-op jobs queued then run by the consumer: jobs/s end to end), with the
Redis / SQLite ratios. ``SIYU_BENCH_QUEUE_CUSTOMERS`` (default 20,000). Redis: a private ``redis-server`` with the
documented persistence (AOF, fsync every second).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context

JOBS = 5000
DEFINITION: dict[str, Any] = {
    "trigger": {"kind": "manual"},
    "start": "ab",
    "nodes": [
        {"id": "ab", "kind": "experiment", "arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]},
        {"id": "task", "kind": "action", "action": {"type": "task", "task_kind": "call", "title": "回访"}},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [
        {"from": "ab", "to": "task", "branch": "a"},
        {"from": "ab", "to": "task", "branch": "b"},
        {"from": "task", "to": "end"},
    ],
}
_DONE = {"n": 0}
_LOCK = threading.Lock()


def noop(_ctx: Context) -> None:
    """A job that does nothing (measures the queue itself)."""
    with _LOCK:
        _DONE["n"] += 1


def _count(ctx: Context, sql: str) -> int:
    import sqlalchemy as sa

    with ctx.engine.connect() as con:
        return int(con.execute(sa.text(sql)).scalar_one())


def _one(queue: str, data: Path, huey_url: str, n: int) -> dict[str, Any]:
    from siyu.services.journeys import definitions as jdef
    from siyu.services.journeys.entries import enter_customers
    from siyu.workers import enqueue_call, start_consumer
    from siyu.workers.queue import get_huey

    settings = Settings(data_dir=data, huey_url=huey_url)
    ctx = Context.open(settings)
    get_huey(settings).flush()
    brands.create_brand(ctx, "bq", "Bench queue")
    op = brands.create_user(ctx, "bq", "bq.op", "pw-123456", Role.OPERATOR)
    from bench import journeys_queue as me  # the module the jobs import (this one may run as __main__)

    # 1. the queue alone: JOBS no-op jobs queued, then drained by the consumer
    me._DONE["n"] = 0
    t0 = time.perf_counter()
    for _ in range(JOBS):
        enqueue_call(ctx, "bench.journeys_queue:noop")
    enqueue_s = time.perf_counter() - t0
    consumer = start_consumer(ctx, workers=2)
    try:
        while me._DONE["n"] < JOBS and time.perf_counter() - t0 < 600:
            time.sleep(0.01)
        jobs_s = time.perf_counter() - t0
        # 2. a journey driven by queued ticks
        j = jdef.create_journey(ctx, op, f"bench-{queue}", DEFINITION)
        jdef.publish(ctx, op, j.id)
        assert enter_customers(ctx, "bq", j.id, [(f"c{i:06d}", "go") for i in range(n)]) == n
        stop = threading.Event()

        def feed() -> None:
            while not stop.is_set():
                enqueue_call(ctx, "siyu.services.journeys.scheduled:tick", budget_seconds=1.0)
                time.sleep(0.1)

        feeder = threading.Thread(target=feed, daemon=True)
        t1 = time.perf_counter()
        feeder.start()
        done = "SELECT count(*) FROM journey_entries WHERE status = 'exited'"
        while _count(ctx, done) < n and time.perf_counter() - t1 < 1800:
            time.sleep(0.2)
        wall = time.perf_counter() - t1
        stop.set()
        feeder.join()
    finally:
        consumer.stop(graceful=True)
    steps = _count(ctx, "SELECT count(*) FROM journey_steps")
    twice = "SELECT count(*) FROM (SELECT 1 FROM journey_steps GROUP BY entry_id, node_id HAVING count(*) > 1) t"
    dup = _count(ctx, twice)
    ctx.close()
    return {
        "queue": queue,
        "customers": n,
        "steps": steps,
        "duplicate_steps": dup,
        "wall_s": round(wall, 1),
        "steps_per_s": round(steps / wall),
        "noop_jobs": JOBS,
        "enqueue_per_s": round(JOBS / enqueue_s),
        "jobs_per_s": round(JOBS / jobs_s),
    }


def run() -> dict[str, Any]:
    """Both queues, side by side, with the Redis / SQLite ratios."""
    from tests.support.redis import redis_server

    n = int(os.environ.get("SIYU_BENCH_QUEUE_CUSTOMERS", "20000"))
    with tempfile.TemporaryDirectory(prefix="siyu-bench-q-") as tmp:
        sqlite = _one("sqlite", Path(tmp) / "sqlite", "", n)
        with redis_server() as server:
            redis = _one("redis", Path(tmp) / "redis", server.url, n)
    return {
        "sqlite": sqlite,
        "redis": redis,
        "ratio_steps_per_s_redis_over_sqlite": round(redis["steps_per_s"] / max(sqlite["steps_per_s"], 1), 2),
        "ratio_jobs_per_s_redis_over_sqlite": round(redis["jobs_per_s"] / max(sqlite["jobs_per_s"], 1), 2),
        "ratio_enqueue_per_s_redis_over_sqlite": round(redis["enqueue_per_s"] / max(sqlite["enqueue_per_s"], 1), 2),
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
