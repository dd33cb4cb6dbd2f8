"""Group commit on the event loop's own thread, for the public help POST on SQLite (``help_writer`` is the thread
writer every other caller uses, and the async path on PostgreSQL).

A coroutine's job is queued; the loop's flush task then runs the jobs queued meanwhile in one transaction, each in
its own SAVEPOINT (``help_writer.run_jobs``), right on the loop: the jobs' Python never competes for the GIL with
the requests' Python, and their answers are set without waking the loop from another thread. Only the blocking
parts leave the loop: the COMMIT (an fsync) runs in a worker thread while the loop goes on serving requests, which
queue the next batch; the batch lock (``help_writer.BatchLock``) is tried without blocking and waited for in a
worker thread only when another process holds it. One batch at a time per loop; the same guarantees as the thread
writer (``BEGIN IMMEDIATE`` under the batch lock, the database's constraints the authority).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from siyu.services.campaigns.help_writer import BatchLock, _Job, commit, run_jobs

log = logging.getLogger(__name__)
T = TypeVar("T")


class LoopWriter:
    """The help batches of one event loop on one SQLite database (see the module docstring)."""

    def __init__(self, engine: Engine, lock: BatchLock, batch: int) -> None:
        self.engine = engine
        self.lock = lock
        self.batch = max(1, batch)
        self.pending: list[_Job[Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0

    async def submit(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in the loop's next batch; returns its result once the batch committed."""
        loop = asyncio.get_running_loop()  # not kept: the writer is the loop's value in a weak mapping
        job: _Job[T] = _Job(fn, loop)
        self.pending.append(job)
        if self._task is None:
            self._task = loop.create_task(self._flush())  # kept: the loop holds tasks weakly
        assert job.future is not None
        return await job.future

    async def _flush(self) -> None:
        try:
            while self.pending:
                await self._lock()
                jobs, self.pending = self.pending[: self.batch], self.pending[self.batch :]
                try:
                    await self._run(jobs)
                finally:
                    self.lock.release()
                    for j in jobs:
                        j._settle()
        finally:
            self._task = None

    async def _lock(self) -> None:
        """Take the batch lock: at once when free, else waited for in a worker thread (another process's batch);
        a wait cut short (the loop stopping) still releases the lock once the thread got it."""
        if self.lock.acquire(blocking=False):
            return
        got = asyncio.get_running_loop().run_in_executor(None, self.lock.acquire)
        try:
            await asyncio.shield(got)
        except asyncio.CancelledError:
            got.add_done_callback(lambda f: None if f.cancelled() or f.exception() else self.lock.release())
            raise

    async def _run(self, jobs: list[_Job[Any]]) -> None:
        con: Connection | None = None
        try:
            con = self.engine.connect()
            run_jobs(con, jobs)
            handed: Connection = con
            con = None  # the thread commits and closes it, whatever happens to this coroutine
            await asyncio.to_thread(_commit_and_close, handed)
            self.batches += 1
            self.jobs += len(jobs)
        except asyncio.CancelledError:  # the loop is stopping: nobody waits for these answers any more
            for j in jobs:
                j.error = RuntimeError("the server stopped while this help was being written")
            raise
        except Exception as exc:  # the batch failed as a whole: nobody's write stands
            log.exception("campaign help batch of %d failed", len(jobs))
            for j in jobs:
                if j.error is None:
                    j.error = exc
        finally:
            if con is not None:
                con.close()


def _commit_and_close(con: Connection) -> None:
    try:
        commit(con)
    finally:
        con.close()


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWriter] = weakref.WeakKeyDictionary()


def loop_writer(engine: Engine, lock: BatchLock, batch: int) -> LoopWriter:
    """The running loop's writer for ``engine`` (made on first use, gone with the loop)."""
    loop = asyncio.get_running_loop()
    got = _writers.get(loop)
    if got is None or got.engine is not engine:
        got = _writers[loop] = LoopWriter(engine, lock, batch)
    return got
