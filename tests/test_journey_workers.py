"""Two real Huey consumer processes run one journey over one SQLite state DB at the same time: they claim
disjoint batches of entries and effects, so every step runs once, none is lost, and each send is made by one
process only — while both do part of the work."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.journey_workers import Zygote, finished, journey_with_entries, q, steps_run_twice

CUSTOMERS = 3000

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


def test_two_consumer_processes_share_the_work_and_nothing_runs_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = journey_with_entries(data, "wb", JOURNEY, CUSTOMERS)
    sent = [tmp_path / f"sent{i}.sqlite" for i in range(2)]
    # both at once, sharing one Huey queue; each queues a tick every 0.1 s (1 s budget); each a process of its own,
    # forked once the imports are done
    workers = Zygote(data)
    assert workers.threads == 1, "the zygote must not fork with threads running"
    try:
        pids = workers.start_many(sent, every=0.1, budget=1.0, read_only_warehouse=True)
        deadline = time.monotonic() + 120
        while not finished(db) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(workers.alive(p) for p in pids), "a worker process died"
    finally:
        workers.close()
    assert finished(db), "the journey did not finish within the time limit"
    # none lost: everyone exited once at the end; none twice: one step per (entry, node)
    assert q(db, "SELECT status, exit_reason, count(*) FROM journey_entries GROUP BY 1, 2") == [
        ("exited", "completed", CUSTOMERS)
    ]
    assert steps_run_twice(db) == 0
    arm_a = q(db, "SELECT count(*) FROM journey_steps WHERE node_id = 'sms'")[0][0]
    assert q(db, "SELECT count(*) FROM journey_steps")[0][0] == 3 * CUSTOMERS + arm_a
    assert q(db, "SELECT count(*), count(DISTINCT entry_id) FROM journey_tasks") == [(CUSTOMERS, CUSTOMERS)]
    assert q(db, "SELECT kind, status, count(*) FROM journey_effects GROUP BY 1, 2 ORDER BY 1") == [
        ("send", "done", arm_a),
        ("task", "done", CUSTOMERS),
    ]
    # each send key was delivered by exactly one process, once; and both processes delivered some
    by_proc = [{str(k): int(str(n)) for k, n in q(s, "SELECT key, calls FROM sent")} for s in sent]
    keys = {str(k) for (k,) in q(db, "SELECT key FROM journey_effects WHERE kind = 'send'")}
    assert set(by_proc[0]) | set(by_proc[1]) == keys
    assert not set(by_proc[0]) & set(by_proc[1])
    assert all(n == 1 for d in by_proc for n in d.values())
    assert all(len(d) > 0 for d in by_proc), [len(d) for d in by_proc]
