"""The durable ingest log: acknowledged events are appended to Arrow IPC segment files and fsync'd.

An HTTP 200 waits for the fsync of the segment holding the request's batch, not for the warehouse: the loader
moves batches into DuckDB in large groups behind the acks and records, in the same transaction, how many
batches of each segment it has loaded (``ingest_log_loaded``).  After a crash, ``pending_batches`` yields what a
segment holds beyond that count, so every acknowledged event reaches the warehouse exactly once (the events
table's primary key is the backstop for a batch loaded but not yet counted).

Segment files are named ``<time_ns>-<pid>.arrows`` in ``<data_dir>/ingest-log/``; a segment is closed when it
passes ``SEGMENT_BYTES`` (or at shutdown) and deleted once fully loaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from siyu.services.ingest.batches import LOG_SCHEMA

SEGMENT_BYTES = 64 * 1024 * 1024
LOG_DIR_NAME = "ingest-log"


class SegmentLog:
    """Appends batches to the current segment; ``append`` returns after the bytes are on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.name: str | None = None
        self.batches = 0
        self._file: BinaryIO | None = None
        self._stream: pa.ipc.RecordBatchStreamWriter | None = None

    def append(self, batches: list[pa.RecordBatch]) -> tuple[str, int]:
        """Write and fsync ``batches``; returns the segment name and the index of the first of them."""
        if self._stream is None:
            self.name = f"{time.time_ns():020d}-{os.getpid()}.arrows"
            self._file = open(self.directory / self.name, "wb")  # noqa: SIM115 - kept open across appends
            self._stream = pa.ipc.new_stream(self._file, LOG_SCHEMA)
            self.batches = 0
            _fsync_dir(self.directory)
        assert self._file is not None and self.name is not None
        first = self.batches
        for b in batches:
            self._stream.write_batch(b)
        self._file.flush()
        os.fdatasync(self._file.fileno())
        self.batches += len(batches)
        return self.name, first

    def full(self) -> bool:
        """Whether the current segment should be closed."""
        return self._file is not None and self._file.tell() >= SEGMENT_BYTES

    def close_segment(self) -> tuple[str, int] | None:
        """Close the current segment; returns its name and batch count (None when none is open)."""
        if self._stream is None or self._file is None or self.name is None:
            return None
        self._stream.close()
        self._file.flush()
        os.fdatasync(self._file.fileno())
        self._file.close()
        closed = (self.name, self.batches)
        self._stream = self._file = None
        self.name = None
        return closed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segments(directory: Path) -> list[Path]:
    """Segment files in arrival order."""
    if not directory.exists():
        return []
    return sorted(directory.glob("*.arrows"))


def read_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The complete batches of a segment, in order; a torn tail (a crash mid-write) ends the iteration."""
    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
    except (pa.ArrowInvalid, OSError):
        return
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError):
            return
