"""Exactly-once journey steps under kill -9: a real Huey consumer process runs the engine and is killed again and
again mid-batch; every customer reaches the exit once, every step and side effect happens once."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.support.journey_workers import Zygote, finished, journey_with_entries, progress, q, steps_run_twice

CUSTOMERS = 6000

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


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_customer_exits_once_and_nothing_runs_twice_under_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = journey_with_entries(data, "kb", JOURNEY, CUSTOMERS)
    sent_db = tmp_path / "sent.sqlite"
    rng = random.Random(7)
    kills, progress_at_kill = 0, []
    # a killed worker's claims come back after their lease (entries 15 s, effects 30 s); most of the run is the
    # start-ups of the 13 worker processes, forked after the imports (a fresh interpreter took seconds each, close
    # to a minute on busy shared cores: 597 s of a 788 s run)
    started = time.monotonic()
    deadline = started + 780  # before pytest-timeout (900 s): the last worker is killed and the timing told
    start_ups = 0.0
    workers = Zygote(data)  # each worker a process of its own, forked once the imports are done
    assert workers.threads == 1, "the zygote must not fork with threads running"
    try:
        while time.monotonic() < deadline:
            t = time.monotonic()
            pid = workers.start(sent_db, every=0.2, budget=2.0)
            start_ups += time.monotonic() - t
            if finished(db) or kills >= 12:  # enough kills: let the last worker finish
                while not finished(db) and time.monotonic() < deadline:
                    time.sleep(0.3)
                break
            # kill only once this worker has committed something (a batch of steps, or of delivered effects once
            # the steps are all written): mid-run, not at start-up
            before = progress(db)
            moving = time.monotonic() + 30
            while progress(db) == before and time.monotonic() < moving:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
            workers.kill(pid)
            kills += 1
            progress_at_kill.append(progress(db))
    finally:
        workers.close()
    timing = f"{kills} kills in {time.monotonic() - started:.0f} s, {start_ups:.0f} s of it worker start-ups"
    print(timing, "; progress at the kills:", progress_at_kill)
    assert finished(db), "the journey did not finish within the time limit: " + timing
    assert kills >= 5 and len(set(progress_at_kill)) >= 5, (kills, progress_at_kill)  # killed while moving
    # every customer exited exactly once, at the exit node, after the path its arm prescribes
    assert q(db, "SELECT status, exit_reason, count(*) FROM journey_entries GROUP BY 1, 2") == [
        ("exited", "completed", CUSTOMERS)
    ]
    assert q(db, "SELECT count(*), count(DISTINCT entry_id) FROM journey_steps WHERE node_id = 'end'") == [
        (CUSTOMERS, CUSTOMERS)
    ]
    assert steps_run_twice(db) == 0
    assert q(db, "SELECT count(*) FROM journey_steps")[0][0] == CUSTOMERS * 4
    # attempts of each entry are 0..3 without gaps
    assert (
        q(
            db,
            "SELECT count(*) FROM (SELECT entry_id FROM journey_steps GROUP BY 1 HAVING max(attempt) != 3 OR "
            "min(attempt) != 0)",
        )[0][0]
        == 0
    )
    # one task and one send per customer; all effects delivered
    assert q(db, "SELECT count(*), count(DISTINCT entry_id) FROM journey_tasks") == [(CUSTOMERS, CUSTOMERS)]
    assert q(
        db, "SELECT kind, status, count(*), count(DISTINCT entry_id) FROM journey_effects GROUP BY 1, 2 ORDER BY 1"
    ) == [("send", "done", CUSTOMERS, CUSTOMERS), ("task", "done", CUSTOMERS, CUSTOMERS)]
    # the sender received every send key (each once as an effect; calls > 1 only for a retry with the same key)
    sent = q(sent_db, "SELECT key, customer_id, calls FROM sent")
    keys = {k for (k,) in q(db, "SELECT key FROM journey_effects WHERE kind = 'send'")}
    assert {str(k) for k, _, _ in sent} == keys
    assert len({c for _, c, _ in sent}) == CUSTOMERS
    print(f"kills={kills} retried sender calls={sum(int(str(n)) - 1 for _, _, n in sent)}")
