"""Two real Huey consumer processes run one journey over one SQLite state DB at the same time: they claim
disjoint batches of entries and effects, so every step runs once, none is lost, and each send is made by one
process only — while both do part of the work."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = 3000

WORKER = textwrap.dedent(
    """
    import sys, time
    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.journeys.senders import RecordingSender, register_sender
    from siyu.workers import enqueue_call, start_consumer

    # DuckDB: several processes may read the warehouse only when none writes it
    ctx = Context.open(Settings.from_env(data_dir=sys.argv[1]), read_only_warehouse=True)
    register_sender("sms", RecordingSender(sys.argv[2]))
    consumer = start_consumer(ctx, workers=2)
    print("ready", flush=True)
    while True:  # the scheduler's job, faster: queue a tick on the shared Huey queue every 0.1 s
        enqueue_call(ctx, "siyu.services.journeys.scheduled:tick", budget_seconds=1.0)
        time.sleep(0.1)
    """
)

JOURNEY = {
    "trigger": {"kind": "manual"},
    "start": "split",
    "nodes": [
        {"id": "split", "kind": "split", "arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]},
        {"id": "sms", "kind": "action", "action": {"type": "send", "channel": "sms", "content": "你好"}},
        {"id": "task", "kind": "action", "action": {"type": "task", "task_kind": "call", "title": "回访"}},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [
        {"from": "split", "to": "sms", "branch": "a"},
        {"from": "split", "to": "task", "branch": "b"},
        {"from": "sms", "to": "task"},
        {"from": "task", "to": "end"},
    ],
}


def _q(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def _finished(db: Path) -> bool:
    active = _q(db, "SELECT count(*) FROM journey_entries WHERE status = 'active'")[0][0]
    open_ = _q(db, "SELECT count(*) FROM journey_effects WHERE status IN ('pending', 'sending')")[0][0]
    return active == 0 and open_ == 0


def test_two_consumer_processes_share_the_work_and_nothing_runs_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ctx = Context.open(Settings(data_dir=data))
    brands.create_brand(ctx, "wb", "Workers brand")
    op = brands.create_user(ctx, "wb", "wb.op", "pw-123456", Role.OPERATOR)
    j = jdef.create_journey(ctx, op, "two workers", JOURNEY)
    jdef.publish(ctx, op, j.id)
    ids = [f"c{i:05d}" for i in range(CUSTOMERS)]
    assert enter_customers(ctx, "wb", j.id, [(c, "go") for c in ids]) == CUSTOMERS
    ctx.close()
    db = data / "state.sqlite"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "SIYU_DATA_DIR": str(data)}
    sent = [tmp_path / f"sent{i}.sqlite" for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, str(script), str(data), str(s)], env=env, cwd=ROOT, stdout=subprocess.PIPE)
        for s in sent
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 120
        while not _finished(db) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(p.poll() is None for p in procs), "a worker process died"
    finally:
        for p in procs:
            p.kill()
            p.wait(30)
    assert _finished(db), "the journey did not finish within the time limit"
    # none lost: everyone exited once at the end; none twice: one step per (entry, node)
    assert _q(db, "SELECT status, exit_reason, count(*) FROM journey_entries GROUP BY 1, 2") == [
        ("exited", "completed", CUSTOMERS)
    ]
    twice = "SELECT count(*) FROM (SELECT 1 FROM journey_steps GROUP BY entry_id, node_id HAVING count(*) > 1)"
    assert _q(db, twice) == [(0,)]
    arm_a = _q(db, "SELECT count(*) FROM journey_steps WHERE node_id = 'sms'")[0][0]
    assert _q(db, "SELECT count(*) FROM journey_steps")[0][0] == 3 * CUSTOMERS + arm_a
    assert _q(db, "SELECT count(*), count(DISTINCT entry_id) FROM journey_tasks") == [(CUSTOMERS, CUSTOMERS)]
    assert _q(db, "SELECT kind, status, count(*) FROM journey_effects GROUP BY 1, 2 ORDER BY 1") == [
        ("send", "done", arm_a),
        ("task", "done", CUSTOMERS),
    ]
    # each send key was delivered by exactly one process, once; and both processes delivered some
    by_proc = [{str(k): int(str(n)) for k, n in _q(s, "SELECT key, calls FROM sent")} for s in sent]
    keys = {str(k) for (k,) in _q(db, "SELECT key FROM journey_effects WHERE kind = 'send'")}
    assert set(by_proc[0]) | set(by_proc[1]) == keys
    assert not set(by_proc[0]) & set(by_proc[1])
    assert all(n == 1 for d in by_proc for n in d.values())
    assert all(len(d) > 0 for d in by_proc), [len(d) for d in by_proc]
