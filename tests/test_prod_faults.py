"""Faults in production mode (PostgreSQL state, Huey on Redis, `siyu serve` and `siyu worker` processes).

- PostgreSQL restarted under load: API writes answer 503 naming the database (fast, no 500, no hang) while it is
  down; the API and its consumer (running the journey from Redis) resume by themselves; nothing acknowledged is
  lost, no journey step runs twice.
- Redis restarted under load: jobs waiting in Redis survive the restart (AOF); the worker reconnects by itself;
  every webhook is delivered exactly once.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
import sqlalchemy as sa

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brand_webhooks, brands
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers
from siyu.stores.state.db import make_engine
from siyu.workers import enqueue_call, schedule
from siyu.workers.queue import get_huey
from tests.support.postgres import free_port
from tests.support.prod import (
    Receiver,
    fresh_postgres,
    prod_env,
    restart_postgres,
    start_api,
    start_worker,
    wait_until,
)
from tests.support.redis import RedisServer
from tests.test_prod_redis import JOURNEY

CUSTOMERS = 300


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as con:
        return int(con.execute(sa.text(sql)).scalar_one())


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


@pytest.mark.slow  # an API process under load, a PostgreSQL restart: ~85 s
def test_postgres_restart_under_load(tmp_path: Path, pg_url: str, redis: RedisServer) -> None:
    db_url = fresh_postgres(pg_url)
    data = tmp_path / "data"
    settings = Settings(data_dir=data, database_url=db_url, huey_url=redis.url)
    ctx = Context.open(settings)
    get_huey(settings).flush()
    brands.create_brand(ctx, "pf", "PG faults")
    op = brands.create_user(ctx, "pf", "pf.op", "pw-123456", Role.OPERATOR)
    j = jdef.create_journey(ctx, op, "under load", JOURNEY)
    jdef.publish(ctx, op, j.id)
    assert enter_customers(ctx, "pf", j.id, [(f"c{i:04d}", "go") for i in range(CUSTOMERS)]) == CUSTOMERS
    ctx.close()
    engine = make_engine(db_url)
    env = prod_env(data, db_url, redis.url)
    port = free_port()
    # the API process owns the DuckDB warehouse, so its embedded consumer is the worker (taking jobs from Redis)
    api = start_api(env, port, tmp_path / "api.log", consumer=True)
    base = f"http://127.0.0.1:{port}"
    token = httpx.post(base + "/api/auth/login", json={"username": "pf.op", "password": "pw-123456"}).json()["token"]
    results: list[tuple[float, float, int, str, str]] = []  # (sent, took, status, name, body)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            while not stop.is_set():
                name = f"j-{uuid.uuid4().hex[:12]}"
                t0 = time.monotonic()
                try:
                    r = http.post(base + "/api/journeys", json={"name": name, "definition": JOURNEY})
                    results.append((t0, time.monotonic() - t0, r.status_code, name, r.text))
                except httpx.HTTPError as exc:
                    results.append((t0, time.monotonic() - t0, 0, name, repr(exc)))
                time.sleep(0.08)  # ~10 creates/s per thread: fewer than the 500 journeys a brand may hold

    # the journey's ticks are queued on Redis as the scheduler does (from here: only the queue is needed)
    queue_only = cast(Context, SimpleNamespace(settings=settings))
    sched = schedule.Scheduler(
        queue_only,
        (schedule.Schedule("journeys.tick", 0.005, "siyu.services.journeys.scheduled:tick"),),
        tick_seconds=0.1,
    ).start()
    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        time.sleep(3)
        down_at = time.monotonic()
        restart_postgres(db_url, down_seconds=4)
        up_at = time.monotonic()
        time.sleep(8)
        stop.set()
        for t in threads:
            t.join(60)
        done = "SELECT count(*) FROM journey_entries WHERE status = 'exited'"
        assert wait_until(lambda: _scalar(engine, done) == CUSTOMERS, 120), "the journey did not finish"
        assert api.poll() is None, "the API process died"
    finally:
        stop.set()
        sched.stop()
        _stop(api)
    statuses = {s for _, _, s, _, _ in results}
    assert statuses <= {200, 503}, {(s, b[:300]) for _, _, s, _, b in results if s not in (200, 503)}
    while_down = [r for r in results if down_at + 0.5 < r[0] < up_at - 0.5]
    assert while_down and all(r[2] == 503 for r in while_down), [r[2] for r in while_down]
    for r in results:
        assert r[1] < 10, f"a request took {r[1]:.1f} s (it should fail fast)"
        if r[2] == 503:
            assert "database" in r[4] and "Traceback" not in r[4], r[4]
    after = [r for r in results if r[0] > up_at + 3]
    assert after and all(r[2] == 200 for r in after), "the API did not resume by itself"
    # every acknowledged create is stored, once
    acked = {name for _, _, s, name, _ in results if s == 200}
    with engine.connect() as con:
        names = [str(n) for (n,) in con.execute(sa.text("SELECT name FROM journeys WHERE brand_id = 'pf'"))]
    assert acked <= set(names) and len(names) == len(set(names))
    # the worker's journey: every step once
    twice = "SELECT count(*) FROM (SELECT 1 FROM journey_steps GROUP BY entry_id, node_id HAVING count(*) > 1) t"
    assert _scalar(engine, twice) == 0
    assert _scalar(engine, "SELECT count(*) FROM journey_tasks") == CUSTOMERS
    engine.dispose()


@pytest.mark.slow  # a worker process and two Redis restarts: ~60 s
def test_redis_restart_keeps_queued_jobs_and_workers_reconnect(tmp_path: Path, pg_url: str, redis: RedisServer) -> None:
    db_url = fresh_postgres(pg_url)
    data = tmp_path / "data"
    settings = Settings(data_dir=data, database_url=db_url, huey_url=redis.url)
    ctx = Context.open(settings)
    huey = get_huey(settings)
    huey.flush()
    brands.create_brand(ctx, "rf", "Redis faults")
    receiver = Receiver()
    brand_webhooks.set_webhook(ctx, "rf", "anomalies", receiver.url)
    ctx.close()
    ctx = Context.open(settings, read_only_warehouse=True)
    try:
        # 1. jobs waiting in Redis (no consumer yet) survive a restart: AOF
        for i in range(100):
            brand_webhooks.enqueue(ctx, "rf", "anomalies", {"seq": i})
        assert huey.pending_count() == 100
        redis.restart()
        assert huey.pending_count() == 100, "queued jobs were lost in the Redis restart"
        # 2. a worker drains them; Redis restarts again under load; the worker reconnects by itself
        worker = start_worker(prod_env(data, db_url, redis.url), tmp_path / "worker.log")
        try:
            for i in range(100, 200):
                brand_webhooks.enqueue(ctx, "rf", "anomalies", {"seq": i})
                time.sleep(0.01)
            redis.restart(down_seconds=2)
            restarted = len(receiver.seqs)
            for i in range(200, 300):
                brand_webhooks.enqueue(ctx, "rf", "anomalies", {"seq": i})
                time.sleep(0.01)
            assert wait_until(lambda: len(receiver.seqs) >= 290, 60), len(receiver.seqs)
            # a push that failed while Redis was down left its outbox row queued: the outbox schedule sends it
            enqueue_call(ctx, "siyu.services.messaging.outbox:process_due")
            assert wait_until(lambda: len(receiver.seqs) == 300, 60), len(receiver.seqs)
            assert worker.poll() is None, "the worker died"
        finally:
            _stop(worker)
        assert len(receiver.seqs) > restarted  # the same worker process delivered after the restart
        assert set(receiver.seqs) == set(range(300)) and max(receiver.seqs.values()) == 1
        assert max(receiver.deliveries.values()) == 1
    finally:
        receiver.close()
        ctx.close()
