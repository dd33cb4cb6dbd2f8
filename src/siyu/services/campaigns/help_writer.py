"""Group commit for the campaign help path: one writer thread per process runs the write jobs of concurrent
requests (helps and the reward payouts they trigger) in one state-database transaction and commits once.

SQLite admits one writer at a time and every commit waits for an fsync (``synchronous`` stays FULL), so N
requests committing one by one wait N fsyncs; the writer turns them into one. Each job runs in its own SAVEPOINT:
a job that fails (e.g. a unique help key already taken) is rolled back alone and the others still commit. The
transaction starts with ``BEGIN IMMEDIATE`` on SQLite, so a job's reads and writes see one consistent state even
with other processes writing; the database constraints (unique help keys, conditional counter and stock updates)
stay the authority, as with several processes or PostgreSQL.

``submit(job)`` blocks the calling (request) thread until the batch holding its job committed and returns the
job's result (or raises its error); ``await submit_async(job)`` does the same for a coroutine on an event loop
(the public help POST: no worker thread per request, the loop is woken once the batch committed).
``SIYU_HELP_BATCH`` = the most jobs per transaction (default 256; ``0`` switches the writer off: each job then
commits on its own in the caller's thread). On a SQLite file, coroutines batch on their own event loop instead
(``help_loop_writer``; ``SIYU_HELP_ON_LOOP=0`` sends them to the thread writer too).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import fcntl
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import sessionmaker

from siyu.services.context import Context
from siyu.stores.state.driver_sql import Savepoint

log = logging.getLogger(__name__)
T = TypeVar("T")
EXTRA = "campaign_help_writer"
SWITCH_INTERVAL = 0.0001  # seconds (Python's default: 0.005; 0.5 ms gave 5-10 % fewer helps/s with 2 public processes)


def max_batch() -> int:
    """Jobs per transaction (``SIYU_HELP_BATCH``; 0 = no writer thread)."""
    return int(os.environ.get("SIYU_HELP_BATCH", "256"))


class _Job(Generic[T]):
    __slots__ = ("done", "error", "fn", "future", "loop", "result")

    def __init__(self, fn: Callable[[Connection], T], loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.fn = fn
        # a blocked thread waits on an Event; a coroutine on its future (an Event costs ~30 µs to make)
        self.done: threading.Event | None = threading.Event() if loop is None else None
        self.result: T | None = None
        self.error: BaseException | None = None
        self.loop = loop
        self.future: asyncio.Future[T] | None = loop.create_future() if loop is not None else None

    def _settle(self) -> None:
        fut = self.future
        if fut is None or fut.done():
            return
        if self.error is not None:
            fut.set_exception(self.error)
        else:
            fut.set_result(self.result)  # type: ignore[arg-type]


def _finish(jobs: list[_Job[Any]]) -> None:
    """Wake whoever waits on ``jobs``: each blocked thread, and each event loop once for all its coroutines (one
    wake-up of the loop per batch, not one per job)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
    for j in jobs:
        if j.done is not None:
            j.done.set()
        if j.loop is not None:
            by_loop.setdefault(j.loop, []).append(j)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_all, waiting)


def _settle_all(jobs: list[_Job[Any]]) -> None:
    for j in jobs:
        j._settle()


HELP_LOCK = 0x5179_7548_656C_70  # PostgreSQL advisory lock key of help transactions ("siyuHelp")


def _begin(con: Connection) -> None:
    """Open the batch's transaction and take the help write lock first, so its reads (already helped, device /
    IP / person counts, the sharer's counters) see every help committed before and none can commit meanwhile:
    SQLite's write lock (``BEGIN IMMEDIATE``), on PostgreSQL a transaction-level advisory lock (READ COMMITTED
    alone lets two processes both read "4 helps from this IP" and both write the 5th)."""
    if con.dialect.name == "sqlite":
        con.exec_driver_sql("BEGIN IMMEDIATE")
        return
    con.begin()
    if con.dialect.name == "postgresql":
        con.exec_driver_sql(f"SELECT pg_advisory_xact_lock({HELP_LOCK})")


def sqlite_file(engine: Engine) -> str | None:
    """The SQLite database file behind ``engine`` (None for PostgreSQL and in-memory SQLite)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    return path if path and path != ":memory:" else None


class BatchLock:
    """Who may run a help batch on one SQLite file: a lock between this process's writers, then an exclusive
    ``flock`` on ``<database>.help-lock`` between processes (writers of several processes then hand the database
    over at once — the kernel wakes the waiter — instead of polling SQLite's busy handler, which sleeps 1, 2, 5,
    10 … ms between tries). A ``flock`` does not exclude holders of the same open file, hence the in-process lock."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path + ".help-lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.inproc = threading.Lock()

    def acquire(self, blocking: bool = True) -> bool:
        """Take both locks (False, holding neither, when ``blocking`` is off and one is taken)."""
        if not self.inproc.acquire(blocking):
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.inproc.release()
            return False
        except BaseException:
            self.inproc.release()
            raise
        return True

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.inproc.release()


_batch_locks: dict[str, BatchLock] = {}
_batch_locks_guard = threading.Lock()


def batch_lock(engine: Engine) -> BatchLock | None:
    """The process's ``BatchLock`` of ``engine``'s SQLite file (None: PostgreSQL or in-memory SQLite, where the
    transaction's own lock is enough)."""
    path = sqlite_file(engine)
    if path is None:
        return None
    got = _batch_locks.get(path)
    if got is None:
        with _batch_locks_guard:
            got = _batch_locks.setdefault(path, BatchLock(path))
    return got


@contextlib.contextmanager
def _process_lock(con: Connection) -> Any:
    """The batch lock of ``con``'s database held around a batch (nothing to hold on PostgreSQL)."""
    lock = batch_lock(con.engine)
    if lock is None:
        yield
        return
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def run_jobs(con: Connection, jobs: list[_Job[Any]]) -> None:
    """Open the batch's transaction and run each job in a SAVEPOINT of its own: a job that fails is undone alone
    (its ``error`` set), the others stand; the caller commits (``commit``). A failure outside the jobs rolls the
    whole batch back and is raised."""
    _begin(con)
    try:
        for j in jobs:
            sp = Savepoint(con, "help_job")  # on SQLite straight on sqlite3 (~10 µs, not ~100)
            try:
                j.result = j.fn(con)
                sp.commit()
            except Exception as exc:  # this job alone is undone
                sp.rollback()
                j.error = exc
    except BaseException:
        if con.in_transaction():
            con.rollback()
        raise


def commit(con: Connection) -> None:
    """Commit the batch's transaction (rolled back, and the error raised, when the commit fails)."""
    try:
        con.commit()
    except BaseException:
        if con.in_transaction():
            con.rollback()
        raise


def run_alone(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run one job in its own transaction in the calling thread (the writer switched off)."""
    with engine.connect() as con:
        _begin(con)
        try:
            out = fn(con)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return out


class HelpWriter:
    """The process's writer thread for help jobs (see the module docstring); ``close`` drains and stops it."""

    def __init__(self, engine: Engine, batch: int = 256) -> None:
        self.engine = engine
        self.batch = max(1, batch)
        self._q: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._closed = False
        self.batches = 0
        self.jobs = 0
        # the writer releases the GIL at every SQLite call; with the default 5 ms switch interval it then waits
        # behind busy request threads at each statement (a convoy). A shorter interval keeps it moving.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._run, name="campaign-help-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in the next batch; returns its result once the batch committed."""
        if self._closed:
            return run_alone(self.engine, fn)
        job: _Job[T] = _Job(fn)
        self._q.put(job)
        assert job.done is not None
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    async def submit_async(self, fn: Callable[[Connection], T]) -> T:
        """``submit`` for a coroutine: awaits the batch holding the job without blocking the event loop."""
        if self._closed:
            return await asyncio.to_thread(run_alone, self.engine, fn)
        job: _Job[T] = _Job(fn, asyncio.get_running_loop())
        self._q.put(job)
        assert job.future is not None
        return await job.future

    def _run(self) -> None:
        con: Connection | None = None
        while True:
            first = self._q.get()
            if first is None:
                break
            jobs: list[_Job[Any]] = [first]
            stop = False
            while len(jobs) < self.batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            try:
                if con is None or con.closed or con.invalidated:
                    con = self.engine.connect()
                self._commit(con, jobs)
            except BaseException as exc:  # the batch failed as a whole: nobody's write stands
                log.exception("campaign help batch of %d failed", len(jobs))
                for j in jobs:
                    if j.error is None:
                        j.error = exc
                if con is not None:
                    con.close()
                    con = None
            finally:
                _finish(jobs)
            if stop:
                break
        if con is not None:
            con.close()

    def _commit(self, con: Connection, jobs: list[_Job[Any]]) -> None:
        with _process_lock(con):
            run_jobs(con, jobs)
            commit(con)
        self.batches += 1
        self.jobs += len(jobs)

    def close(self) -> None:
        """Stop taking jobs, finish the queued ones, stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._q.put(None)
        self._thread.join(timeout=60)
        atexit.unregister(self.close)


_lock = threading.Lock()


def writer(ctx: Context) -> HelpWriter | None:
    """The Context's help writer (started on first use); None when switched off (``SIYU_HELP_BATCH=0``)."""
    got = ctx.extras.get(EXTRA)
    if isinstance(got, HelpWriter):
        return got
    n = max_batch()
    if n <= 0:
        return None
    with _lock:
        got = ctx.extras.get(EXTRA)
        if not isinstance(got, HelpWriter):
            got = ctx.extras[EXTRA] = HelpWriter(ctx.engine, n)
    return got


def bound(ctx: Context, con: Connection) -> Context:
    """A Context whose sessions work inside ``con``'s transaction (each session's transaction is a SAVEPOINT):
    lets the reward payouts of a help run in the help's batch and commit with it."""
    return dataclasses.replace(
        ctx, sessions=sessionmaker(bind=con, join_transaction_mode="create_savepoint", expire_on_commit=False)
    )


def write(ctx: Context, fn: Callable[[Connection], T]) -> T:
    """Run a write job through the Context's writer (or alone when the writer is off)."""
    w = writer(ctx)
    return w.submit(fn) if w is not None else run_alone(ctx.engine, fn)


async def write_async(ctx: Context, fn: Callable[[Connection], T]) -> T:
    """``write`` for a coroutine: on a SQLite file in the loop's own batches (``help_loop_writer``; not with
    ``SIYU_HELP_ON_LOOP=0``), else through the thread writer (the writer off: the job runs alone in a worker
    thread)."""
    n = max_batch()
    if n <= 0:
        return await asyncio.to_thread(run_alone, ctx.engine, fn)
    lock = batch_lock(ctx.engine)
    if lock is not None and os.environ.get("SIYU_HELP_ON_LOOP", "1") != "0":
        from siyu.services.campaigns.help_loop_writer import loop_writer

        return await loop_writer(ctx.engine, lock, n).submit(fn)
    w = writer(ctx)
    assert w is not None
    return await w.submit_async(fn)
