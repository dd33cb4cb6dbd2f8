"""The warehouse process's loader tails segments other processes write, and the rule for deleting them.

Foreign segments are written here with ``SegmentLog`` under another process's pid (a live ``sleep`` process, or one
that has exited), exactly as a ``siyu serve-ingest`` process writes them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.config import Settings
from siyu.domain.segment import EventRow
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.ingest import get_writer, recover_log
from siyu.services.ingest import log as ingest_log
from siyu.services.ingest.batches import build_batch


def _rows(tag: str, n: int, identify: bool = False) -> list[EventRow]:
    from siyu.domain.segment import Limits, validate_message

    if identify:
        limits = Limits.from_settings(Settings())
        return [
            validate_message(
                {
                    "type": "identify",
                    "messageId": f"{tag}{i}",
                    "userId": f"{tag}-user{i}",
                    "anonymousId": f"{tag}-anon{i}",
                },
                None,
                limits,
                1,
            )
            for i in range(n)
        ]
    return [
        EventRow(f"{tag}{i}", "track", "E", None, f"u{i}", None, None, None, None, None, None, 1, None, None, 1, None)
        for i in range(n)
    ]


class ForeignWriter:
    """A SegmentLog whose segments carry ``pid`` in their names (as if another process wrote them)."""

    def __init__(self, directory: Path, pid: int) -> None:
        self.log = ingest_log.SegmentLog(directory)
        self.pid = pid

    def append(self, tag: str, n: int, identify: bool = False) -> str:
        real = os.getpid
        os.getpid = lambda: self.pid  # type: ignore[assignment]  # the name is chosen at the segment's first append
        try:
            name, _ = self.log.append([build_batch("acme", "k", _rows(tag, n, identify))])
        finally:
            os.getpid = real  # type: ignore[assignment]
        return name


@pytest.fixture
def other_pid() -> Iterator[int]:
    """The pid of a live process that is not this one."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _ids(ctx: Context) -> set[str]:
    return {r[0] for r in ctx.warehouse.fetch("SELECT message_id FROM events")}


def _wait(pred: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(pred())  # type: ignore[operator]


def test_live_foreign_segment_is_tailed_and_kept_until_its_writer_closes_it(tmp_path: Path, other_pid: int) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    try:
        create_brand(ctx, "acme", "Acme")
        directory = settings.data_dir / ingest_log.LOG_DIR_NAME
        foreign = ForeignWriter(directory, other_pid)
        seg = foreign.append("a", 3)
        get_writer(ctx)  # the warehouse process's loader: tails the directory
        assert _wait(lambda: _ids(ctx) == {"a0", "a1", "a2"})
        foreign.append("b", 2, identify=True)  # appended while tailed: loaded from where the last read stopped
        foreign.append("a", 3)  # a retry sent again to this process: stored once
        assert _wait(lambda: _ids(ctx) == {"a0", "a1", "a2", "b0", "b1"})
        # its writer is alive and has not closed it: the segment stays, its position is recorded
        assert (directory / seg).exists()
        position = "SELECT batches FROM ingest_log_loaded WHERE segment = ?"
        assert _wait(lambda: ctx.warehouse.fetch(position, [seg]) == [(3,)])  # the retry's batch was read too
        assert _ids(ctx) == {"a0", "a1", "a2", "b0", "b1"}
        # OneID ran after the foreign load: the identify events' userIds resolved
        assert _wait(
            lambda: ctx.warehouse.fetch("SELECT count(*) FROM identities WHERE id_value LIKE 'b-user%'")[0][0] == 2
        )
        assert foreign.log.close_segment() == (seg, 3)  # the end-of-stream marker, writer still alive
        assert _wait(lambda: not (directory / seg).exists())  # closed + fully loaded → deleted with its position
        assert _wait(lambda: ctx.warehouse.fetch("SELECT count(*) FROM ingest_log_loaded")[0][0] == 0)  # file, then row
        assert ctx.warehouse.fetch("SELECT count(*) FROM events")[0][0] == 5
    finally:
        ctx.close()


def test_segment_of_a_dead_writer_is_loaded_up_to_its_torn_tail_then_deleted(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    try:
        create_brand(ctx, "acme", "Acme")
        directory = settings.data_dir / ingest_log.LOG_DIR_NAME
        foreign = ForeignWriter(directory, _dead_pid())
        seg = foreign.append("x", 2)
        size = (directory / seg).stat().st_size
        foreign.append("y", 4)
        with open(directory / seg, "r+b") as f:  # kill -9 in the middle of writing the second batch
            f.truncate(size + 40)
        get_writer(ctx)
        assert _wait(lambda: not (directory / seg).exists())  # no EOS, but its writer is gone: closed
        assert _ids(ctx) == {"x0", "x1"}
    finally:
        ctx.close()


def test_recovery_at_open_leaves_a_live_writers_segment_to_the_tail(tmp_path: Path, other_pid: int) -> None:
    """A warehouse process (re)starting while an ingest process writes: its segment is loaded, not deleted,
    and the tail goes on from the recorded position (nothing loaded twice)."""
    settings = Settings(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    create_brand(ctx, "acme", "Acme")
    directory = settings.data_dir / ingest_log.LOG_DIR_NAME
    foreign = ForeignWriter(directory, other_pid)
    seg = foreign.append("p", 2)
    dead = ForeignWriter(directory, _dead_pid())
    dead_seg = dead.append("d", 1)
    assert recover_log(ctx) == 3
    assert (directory / seg).exists() and not (directory / dead_seg).exists()
    foreign.append("q", 2)
    get_writer(ctx)
    try:
        assert _wait(lambda: _ids(ctx) == {"p0", "p1", "q0", "q1", "d0"})
        assert ctx.warehouse.fetch("SELECT batches FROM ingest_log_loaded WHERE segment = ?", [seg]) == [(2,)]
        stats = get_writer(ctx).stats
        assert (stats.foreign_batches, stats.slow_path_commits) == (1, 0)  # only the new batch, no PK conflict
    finally:
        ctx.close()


def test_a_log_only_writer_keeps_no_loader_queue(tmp_path: Path) -> None:
    """An ingest-only process acknowledges on the log alone and holds no batch in memory afterwards."""
    settings = Settings(data_dir=tmp_path / "data", ingest_loader=False)
    ctx = Context.open(settings)
    try:
        create_brand(ctx, "acme", "Acme")
        writer = get_writer(ctx)
        durable, loaded = writer.submit("acme", "k", _rows("z", 5))
        durable.result(10)
        with pytest.raises(Exception, match="warehouse process loads"):
            loaded.result(10)
        assert writer._load_q.qsize() == 0
        assert writer.wait_loaded(1)
    finally:
        ctx.close()
