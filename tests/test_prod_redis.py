"""Production mode end to end: state on PostgreSQL, Huey on Redis, two real `siyu worker` processes.

Webhook deliveries (the messaging outbox), journey steps and scheduled jobs (the Scheduler queueing the journey
tick on Redis) all run through Redis-Huey in the worker processes: every delivery once, every journey step once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brand_webhooks, brands
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers
from siyu.workers import schedule
from siyu.workers.queue import get_huey
from tests.support.prod import Receiver, fresh_postgres, prod_env, start_worker, wait_until
from tests.support.redis import RedisServer

CUSTOMERS = 300
HOOKS = 100
JOURNEY = {
    "trigger": {"kind": "manual"},
    "start": "task",
    "nodes": [
        {"id": "task", "kind": "action", "action": {"type": "task", "task_kind": "call", "title": "回访"}},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [{"from": "task", "to": "end"}],
}


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as con:
        return int(con.execute(sa.text(sql)).scalar_one())


@pytest.mark.slow  # two worker processes on PostgreSQL: ~60 s on 2 shared cores
def test_webhooks_journeys_and_schedules_run_once_on_postgres_and_redis(
    tmp_path: Path, pg_url: str, redis: RedisServer
) -> None:
    db_url = fresh_postgres(pg_url)
    data = tmp_path / "data"
    settings = Settings(data_dir=data, database_url=db_url, huey_url=redis.url)
    ctx = Context.open(settings)
    get_huey(settings).flush()
    brands.create_brand(ctx, "pr", "Prod brand")
    op = brands.create_user(ctx, "pr", "pr.op", "pw-123456", Role.OPERATOR)
    receiver = Receiver()
    brand_webhooks.set_webhook(ctx, "pr", "anomalies", receiver.url)
    j = jdef.create_journey(ctx, op, "prod journey", JOURNEY)
    jdef.publish(ctx, op, j.id)
    assert enter_customers(ctx, "pr", j.id, [(f"c{i:04d}", "go") for i in range(CUSTOMERS)]) == CUSTOMERS
    ctx.close()
    ctx = Context.open(settings, read_only_warehouse=True)  # the workers read the warehouse too
    env = prod_env(data, db_url, redis.url)
    workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
    # the scheduled-jobs path: a Scheduler (as in the API process) queues the journey tick on Redis every 0.3 s
    sched = schedule.Scheduler(
        ctx, (schedule.Schedule("journeys.tick", 0.005, "siyu.services.journeys.scheduled:tick"),), tick_seconds=0.1
    ).start()
    try:
        for i in range(HOOKS):
            brand_webhooks.enqueue(ctx, "pr", "anomalies", {"seq": i})
        assert wait_until(lambda: len(receiver.seqs) == HOOKS, 60), f"{len(receiver.seqs)} of {HOOKS} delivered"
        done = "SELECT count(*) FROM journey_entries WHERE status = 'exited'"
        assert wait_until(lambda: _scalar(ctx.engine, done) == CUSTOMERS, 90), "journey did not finish"
        assert all(w.poll() is None for w in workers), "a worker process died"
        assert sched.runs["journeys.tick"] >= 2
    finally:
        sched.stop()
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        receiver.close()
    # every webhook once (no double delivery between the two workers), each logged once as delivered
    assert set(receiver.seqs) == set(range(HOOKS)) and max(receiver.seqs.values()) == 1
    assert max(receiver.deliveries.values()) == 1
    sent = "SELECT count(*) FROM messaging_outbox WHERE channel = 'webhook' AND status = 'sent'"
    assert _scalar(ctx.engine, sent) == HOOKS
    # every journey step once, every task once
    twice = "SELECT count(*) FROM (SELECT 1 FROM journey_steps GROUP BY entry_id, node_id HAVING count(*) > 1) t"
    assert _scalar(ctx.engine, twice) == 0
    assert _scalar(ctx.engine, "SELECT count(*) FROM journey_steps") == 2 * CUSTOMERS
    assert _scalar(ctx.engine, "SELECT count(DISTINCT entry_id) FROM journey_tasks") == CUSTOMERS
    assert _scalar(ctx.engine, "SELECT count(*) FROM journey_tasks") == CUSTOMERS
    # both processes took part (the jobs really went through the shared Redis queue)
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert all("Traceback" not in log for log in logs), logs
    ctx.close()
