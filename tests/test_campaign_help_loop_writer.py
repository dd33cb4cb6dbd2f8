"""The help POST's group commit on the event loop (SQLite): coroutines of one loop share a transaction, a failing
job is undone alone, a batch waits (without blocking the loop) while another process holds the batch lock, and
the answers only come once the batch is committed."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from siyu.services.campaigns import help_loop_writer, help_writer
from siyu.services.campaigns.help_loop_writer import loop_writer
from siyu.services.context import Context

INSERT = text("INSERT INTO campaign_help_keys (campaign_id, key, help_id) VALUES ('c1', :k, 1) RETURNING key")


def _add(key: str) -> Any:
    return lambda con: con.execute(INSERT, {"k": key}).scalar_one()


def _keys(ctx: Context) -> list[str]:
    with ctx.engine.connect() as con:
        return sorted(con.execute(text("SELECT key FROM campaign_help_keys WHERE campaign_id = 'c1'")).scalars())


def _hold_lock(path: str, held: Any, release: Any) -> None:
    """Another process's batch: hold the database's help lock until told to let go."""
    import fcntl

    fd = os.open(path + ".help-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()
    release.wait(30)
    fcntl.flock(fd, fcntl.LOCK_UN)


def test_coroutines_share_one_transaction_and_a_failure_is_undone_alone(ctx: Context) -> None:
    lock = help_writer.batch_lock(ctx.engine)
    assert lock is not None

    async def go() -> tuple[list[Any], int, int]:
        w = loop_writer(ctx.engine, lock, 256)
        got = await asyncio.gather(*(w.submit(_add(k)) for k in ["a", "b", "a", "c"]), return_exceptions=True)
        return got, w.batches, w.jobs

    got, batches, jobs = asyncio.run(go())
    assert got[:2] == ["a", "b"] and isinstance(got[2], IntegrityError) and got[3] == "c"
    assert (batches, jobs) == (1, 4)  # queued in one loop turn: one transaction
    assert _keys(ctx) == ["a", "b", "c"]
    del got  # the error's traceback holds the job, and the job its loop
    gc.collect()
    assert len(help_loop_writer._writers) == 0  # the writer went with its loop


def test_a_batch_waits_for_another_processs_lock_without_blocking_the_loop(ctx: Context) -> None:
    lock = help_writer.batch_lock(ctx.engine)
    path = help_writer.sqlite_file(ctx.engine)
    assert lock is not None and path is not None
    mp = multiprocessing.get_context("spawn")
    held, release = mp.Event(), mp.Event()
    other = mp.Process(target=_hold_lock, args=(path, held, release))
    other.start()
    try:
        assert held.wait(60)

        async def go() -> tuple[int, list[str], Any]:
            w = loop_writer(ctx.engine, lock, 256)
            job = asyncio.ensure_future(w.submit(_add("x")))
            ticks = 0
            for _ in range(20):  # the loop keeps running while the batch waits for the lock
                await asyncio.sleep(0.01)
                ticks += 1
            assert not job.done()
            seen = await asyncio.to_thread(_keys, ctx)  # nothing written while the other process holds the lock
            release.set()
            return ticks, seen, await job

        ticks, seen_while_held, answer = asyncio.run(go())
    finally:
        release.set()
        other.join(30)
    assert ticks == 20 and seen_while_held == [] and answer == "x"
    assert _keys(ctx) == ["x"]


def test_an_answer_comes_after_the_commit(ctx: Context) -> None:
    lock = help_writer.batch_lock(ctx.engine)
    assert lock is not None
    seen: list[list[str]] = []

    def job(con: Connection) -> str:
        con.execute(INSERT, {"k": "late"})
        return "late"

    async def go() -> str:
        answer = await loop_writer(ctx.engine, lock, 256).submit(job)
        seen.append(await asyncio.to_thread(_keys, ctx))  # another connection sees it: committed
        return answer

    assert asyncio.run(go()) == "late" and seen == [["late"]]


@pytest.mark.parametrize("batch", [1, 2])
def test_more_jobs_than_a_batch_take_several_transactions(ctx: Context, batch: int) -> None:
    lock = help_writer.batch_lock(ctx.engine)
    assert lock is not None

    async def go() -> tuple[list[Any], int]:
        w = loop_writer(ctx.engine, lock, batch)
        got = await asyncio.gather(*(w.submit(_add(k)) for k in "pqrs"))
        return got, w.batches

    got, batches = asyncio.run(go())
    assert got == list("pqrs") and batches == 4 // batch and _keys(ctx) == list("pqrs")
