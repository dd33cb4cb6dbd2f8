"""Journeys run by real Huey consumer processes (the kill -9 and the two-worker tests): a published journey with
its entries in a fresh data dir, a worker script that ticks the engine, and SQL probes on the state DB."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
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

# A zygote: imports once, then forks one worker per line on its stdin: data dir, sender's SQLite file, tick interval
# (s), tick budget (s), "ro" for a read-only warehouse, the file whose existence lets it start consuming
WORKER = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.journeys import scheduled  # noqa: F401 - the tick's module, imported before any fork
    from siyu.services.journeys.senders import RecordingSender, register_sender
    from siyu.workers import enqueue_call, start_consumer

    def work(data, sent, every, budget, mode, go):
        # DuckDB: several processes may read the warehouse only when none writes it
        ctx = Context.open(Settings.from_env(data_dir=data), read_only_warehouse=mode == "ro")
        register_sender("sms", RecordingSender(sent))
        # one write(2) below PIPE_BUF is atomic: workers forked together must not interleave their lines
        os.write(1, f"ready {os.getpid()}\\n".encode())
        while not os.path.exists(go):  # workers started together begin together
            time.sleep(0.01)
        start_consumer(ctx, workers=2)
        while True:  # the scheduler's job, faster: queue a tick on the Huey queue every `every` seconds
            enqueue_call(ctx, "siyu.services.journeys.scheduled:tick", budget_seconds=float(budget))
            time.sleep(float(every))

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the killed workers
    print("zygote", threading.active_count(), flush=True)
    for line in sys.stdin:
        if os.fork() == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                work(*line.split())
            finally:
                os._exit(1)
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


def _script(data: Path) -> Path:
    script = data.parent / "journey_worker.py"
    if not script.exists():
        script.write_text(WORKER)
    return script


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "SIYU_DATA_DIR": str(data)}


def _args(data: Path, sent: Path, every: float, budget: float, read_only_warehouse: bool) -> list[str]:
    return [str(data), str(sent), str(every), str(budget), "ro" if read_only_warehouse else "rw", str(_go(data))]


def _go(data: Path) -> Path:
    return data.parent / "journey_workers.go"


def progress(db: Path) -> int:
    """Steps written plus effects settled (done or failed): grows with every batch a worker commits."""
    settled = q(db, "SELECT count(*) FROM journey_effects WHERE status IN ('done', 'failed')")[0][0]
    return steps(db) + int(settled)


class Zygote:
    """Worker processes forked from one process that has done their imports already: a worker then starts in
    the time of ``Context.open`` instead of a whole interpreter start-up with siyu's imports (seconds each, far
    more on busy cores: 597 s of a 788 s kill -9 run). Each worker is a real process of its own, with its own
    Context, Huey consumer and connections, and killed abruptly like any other."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.live: set[int] = set()
        self.proc = subprocess.Popen(
            [sys.executable, str(_script(data))],
            env=_env(data),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # its own process group: close() kills every worker forked from it
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != b"zygote":
            self.close()
            raise RuntimeError(f"the worker zygote did not start (it said {line!r})")
        self.threads = int(line[1])  # forking is safe only before threads: 1 expected

    def start(self, sent: Path, every: float, budget: float, read_only_warehouse: bool = False) -> int:
        """Fork a worker over the zygote's data dir; returns its pid once it is ready."""
        return self.start_many([sent], every, budget, read_only_warehouse)[0]

    def start_many(self, sent: list[Path], every: float, budget: float, read_only_warehouse: bool = False) -> list[int]:
        """Fork one worker per ``sent`` file; once all have opened their Context they start consuming together
        (none gets a head start); returns their pids."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        _go(self.data).unlink(missing_ok=True)
        for s in sent:
            args = _args(self.data, s, every, budget, read_only_warehouse)
            self.proc.stdin.write((" ".join(args) + "\n").encode())
        self.proc.stdin.flush()
        pids = []
        for _ in sent:
            line = self.proc.stdout.readline().split()
            if len(line) != 2 or line[0] != b"ready":
                raise RuntimeError(f"a forked journey worker did not start (it said {line!r})")
            pids.append(int(line[1]))
            self.live.add(pids[-1])
        _go(self.data).touch()
        return pids

    def alive(self, pid: int) -> bool:
        """Whether the worker ``pid`` still runs."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self, pid: int, timeout: float = 30) -> None:
        """kill -9 the worker ``pid`` and wait until it is gone."""
        os.kill(pid, signal.SIGKILL)
        self.live.discard(pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        raise RuntimeError(f"worker {pid} still exists {timeout} s after kill -9")

    def close(self) -> None:
        """Kill the zygote and every worker forked from it (its process group), even one never reported ready."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.live.clear()
        self.proc.wait(30)
