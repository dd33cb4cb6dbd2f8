"""Exactly-once journey steps under kill -9: a real Huey consumer process runs the engine and is killed again and
again mid-batch; every customer reaches the exit once, every step and side effect happens once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = 6000

WORKER = textwrap.dedent(
    """
    import sys, time
    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.journeys.senders import RecordingSender, register_sender
    from siyu.workers import enqueue_call, start_consumer

    ctx = Context.open(Settings.from_env(data_dir=sys.argv[1]))
    register_sender("sms", RecordingSender(sys.argv[2]))
    consumer = start_consumer(ctx, workers=2)
    print("ready", flush=True)
    while True:  # the scheduler's job, faster: queue a tick on Huey every 0.2 s
        enqueue_call(ctx, "siyu.services.journeys.scheduled:tick", budget_seconds=2.0)
        time.sleep(0.2)
    """
)

JOURNEY = {
    "trigger": {"kind": "manual"},
    "start": "split",
    "nodes": [
        {"id": "split", "kind": "split", "arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]},
        {"id": "sms_a", "kind": "action", "action": {"type": "send", "channel": "sms", "content": "你好 A"}},
        {"id": "task_a", "kind": "action", "action": {"type": "task", "task_kind": "call", "title": "回访 A"}},
        {"id": "task_b", "kind": "action", "action": {"type": "task", "task_kind": "visit", "title": "邀约到店 B"}},
        {"id": "sms_b", "kind": "action", "action": {"type": "send", "channel": "sms", "content": "你好 B"}},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [
        {"from": "split", "to": "sms_a", "branch": "a"},
        {"from": "split", "to": "task_b", "branch": "b"},
        {"from": "sms_a", "to": "task_a"},
        {"from": "task_a", "to": "end"},
        {"from": "task_b", "to": "sms_b"},
        {"from": "sms_b", "to": "end"},
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
    pending = _q(db, "SELECT count(*) FROM journey_effects WHERE status IN ('pending', 'sending')")[0][0]
    return active == 0 and pending == 0


@pytest.mark.slow
def test_every_customer_exits_once_and_nothing_runs_twice_under_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ctx = Context.open(Settings(data_dir=data))
    brands.create_brand(ctx, "kb", "Kill brand")
    op = brands.create_user(ctx, "kb", "kb.op", "pw-123456", Role.OPERATOR)
    j = jdef.create_journey(ctx, op, "kill -9", JOURNEY)
    jdef.publish(ctx, op, j.id)
    ids = [f"c{i:05d}" for i in range(CUSTOMERS)]
    assert enter_customers(ctx, "kb", j.id, [(c, "go") for c in ids]) == CUSTOMERS
    ctx.close()
    db = data / "state.sqlite"
    assert db.exists()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    sent_db = tmp_path / "sent.sqlite"
    rng = random.Random(7)
    kills, progress_at_kill = 0, []
    env = {**os.environ, "SIYU_DATA_DIR": str(data)}
    deadline = time.monotonic() + 420  # a killed worker's claims come back after their lease (15 s / 30 s)
    while time.monotonic() < deadline:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(data), str(sent_db)], env=env, cwd=ROOT, stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        done = _finished(db)
        if done or kills >= 12:  # enough kills: let the last worker finish
            while not _finished(db) and time.monotonic() < deadline:
                time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            break
        before = _q(db, "SELECT count(*) FROM journey_steps")[0][0]
        moving = time.monotonic() + 15
        while _q(db, "SELECT count(*) FROM journey_steps")[0][0] == before and time.monotonic() < moving:
            time.sleep(0.05)  # kill only once this worker has committed something: mid-run, not at start-up
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        kills += 1
        progress_at_kill.append(_q(db, "SELECT count(*) FROM journey_steps")[0][0])
    assert _finished(db), "the journey did not finish within the time limit"
    assert kills >= 5 and len(set(progress_at_kill)) >= 5, (kills, progress_at_kill)  # killed while moving
    # every customer exited exactly once, at the exit node, after the path its arm prescribes
    assert _q(db, "SELECT status, exit_reason, count(*) FROM journey_entries GROUP BY 1, 2") == [
        ("exited", "completed", CUSTOMERS)
    ]
    assert _q(db, "SELECT count(*), count(DISTINCT entry_id) FROM journey_steps WHERE node_id = 'end'") == [
        (CUSTOMERS, CUSTOMERS)
    ]
    assert (
        _q(db, "SELECT count(*) FROM (SELECT 1 FROM journey_steps GROUP BY entry_id, node_id HAVING count(*) > 1)")[0][
            0
        ]
        == 0
    )
    assert _q(db, "SELECT count(*) FROM journey_steps")[0][0] == CUSTOMERS * 4
    # attempts of each entry are 0..3 without gaps
    assert (
        _q(
            db,
            "SELECT count(*) FROM (SELECT entry_id FROM journey_steps GROUP BY 1 HAVING max(attempt) != 3 OR "
            "min(attempt) != 0)",
        )[0][0]
        == 0
    )
    # one task and one send per customer; all effects delivered
    assert _q(db, "SELECT count(*), count(DISTINCT entry_id) FROM journey_tasks") == [(CUSTOMERS, CUSTOMERS)]
    assert _q(
        db, "SELECT kind, status, count(*), count(DISTINCT entry_id) FROM journey_effects GROUP BY 1, 2 ORDER BY 1"
    ) == [("send", "done", CUSTOMERS, CUSTOMERS), ("task", "done", CUSTOMERS, CUSTOMERS)]
    # the sender received every send key (each once as an effect; calls > 1 only for a retry with the same key)
    sent = _q(sent_db, "SELECT key, customer_id, calls FROM sent")
    keys = {k for (k,) in _q(db, "SELECT key FROM journey_effects WHERE kind = 'send'")}
    assert {str(k) for k, _, _ in sent} == keys
    assert len({c for _, c, _ in sent}) == CUSTOMERS
    print(f"kills={kills} retried sender calls={sum(int(str(n)) - 1 for _, _, n in sent)}")
