"""Journeys run by real Huey consumer processes (the kill -9 and the two-worker tests): a published journey with
its entries in a fresh data dir, a worker script that ticks the engine, and SQL probes on the state DB."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers
from tests.support.stores import empty_data_dir

ROOT = Path(__file__).resolve().parents[2]

# argv: data dir, sender's SQLite file, tick interval (s), tick budget (s), "ro" for a read-only warehouse
WORKER = textwrap.dedent(
    """
    import sys, time
    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.journeys.senders import RecordingSender, register_sender
    from siyu.workers import enqueue_call, start_consumer

    data, sent, every, budget = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    # DuckDB: several processes may read the warehouse only when none writes it
    ctx = Context.open(Settings.from_env(data_dir=data), read_only_warehouse=sys.argv[5] == "ro")
    register_sender("sms", RecordingSender(sent))
    consumer = start_consumer(ctx, workers=2)
    print("ready", flush=True)
    while True:  # the scheduler's job, faster: queue a tick on the Huey queue every `every` seconds
        enqueue_call(ctx, "siyu.services.journeys.scheduled:tick", budget_seconds=budget)
        time.sleep(every)
    """
)


def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the SQLite file ``db`` (its own connection: the workers write it meanwhile)."""
    con = sqlite3.connect(db, timeout=30)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def finished(db: Path) -> bool:
    """No entry is active and no effect is pending or being sent."""
    active = q(db, "SELECT count(*) FROM journey_entries WHERE status = 'active'")[0][0]
    open_ = q(db, "SELECT count(*) FROM journey_effects WHERE status IN ('pending', 'sending')")[0][0]
    return bool(active == 0 and open_ == 0)


def steps(db: Path) -> int:
    """Journey steps written so far."""
    return int(q(db, "SELECT count(*) FROM journey_steps")[0][0])


def steps_run_twice(db: Path) -> int:
    """(entry, node) pairs with more than one step: must be 0."""
    return int(
        q(db, "SELECT count(*) FROM (SELECT 1 FROM journey_steps GROUP BY entry_id, node_id HAVING count(*) > 1)")[0][0]
    )


def journey_with_entries(data: Path, brand: str, definition: dict[str, Any], customers: int) -> Path:
    """A fresh data dir with brand ``brand``, ``definition`` published and ``customers`` customers
    (c00000, c00001, …) entered; returns the state DB's path (the Context is closed again)."""
    empty_data_dir(data)
    ctx = Context.open(Settings(data_dir=data))
    try:
        brands.create_brand(ctx, brand, f"{brand} brand")
        op = brands.create_user(ctx, brand, f"{brand}.op", "pw-123456", Role.OPERATOR)
        j = jdef.create_journey(ctx, op, "workers", definition)
        jdef.publish(ctx, op, j.id)
        ids = [f"c{i:05d}" for i in range(customers)]
        assert enter_customers(ctx, brand, j.id, [(c, "go") for c in ids]) == customers
    finally:
        ctx.close()
    db = data / "state.sqlite"
    assert db.exists()
    return db


def spawn_worker(
    data: Path, sent: Path, every: float, budget: float, read_only_warehouse: bool = False
) -> subprocess.Popen[bytes]:
    """Start a worker process over ``data`` (its sends recorded in ``sent``; a tick queued every ``every`` s with a
    budget of ``budget`` s); ``wait_ready`` waits until it consumes."""
    script = data.parent / "journey_worker.py"
    if not script.exists():
        script.write_text(WORKER)
    args = [str(data), str(sent), str(every), str(budget), "ro" if read_only_warehouse else "rw"]
    env = {**os.environ, "SIYU_DATA_DIR": str(data)}
    return subprocess.Popen([sys.executable, str(script), *args], env=env, cwd=ROOT, stdout=subprocess.PIPE)


def wait_ready(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Block until the worker says it is ready (it is killed and an error raised if it says anything else)."""
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != b"ready":
        proc.kill()
        proc.wait(30)
        raise RuntimeError(f"the journey worker did not start (it said {line!r}, exit code {proc.returncode})")
    return proc


def start_worker(
    data: Path, sent: Path, every: float, budget: float, read_only_warehouse: bool = False
) -> subprocess.Popen[bytes]:
    """``spawn_worker`` and ``wait_ready``."""
    return wait_ready(spawn_worker(data, sent, every, budget, read_only_warehouse))


def progress(db: Path) -> int:
    """Steps written plus effects settled (done or failed): grows with every batch a worker commits."""
    settled = q(db, "SELECT count(*) FROM journey_effects WHERE status IN ('done', 'failed')")[0][0]
    return steps(db) + int(settled)
