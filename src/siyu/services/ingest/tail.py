"""The warehouse process's view of segments OTHER processes write into the ingest log directory.

``siyu serve-ingest`` processes (and any ``SIYU_INGEST_LOADER=off`` process) append acknowledged batches to their
own segments; the one process that loads (``siyu serve``) polls the directory every ``TAIL_SECONDS`` and reads each
foreign segment from where it stopped (``log.SegmentTail``).  The first read of a segment skips the batches
``ingest_log_loaded`` records as loaded, so a restarted warehouse process goes on exactly where it was.

A read is ``closed`` when the segment ended with the end-of-stream marker or its writer was found gone BEFORE the
read (so that read saw everything the writer will ever write); the loader deletes a closed segment once the read's
batches are loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from siyu.services.ingest import log as ingest_log
from siyu.stores.warehouse import Warehouse

TAIL_SECONDS = 0.05  # how often the loader looks for batches other processes acknowledged


@dataclass
class ForeignRead:
    """New complete batches of one foreign segment; ``upto`` = batches read from it so far."""

    segment: str
    batches: list[pa.RecordBatch]
    upto: int
    closed: bool


class ForeignLog:
    """Tails the segments of other processes in one log directory (used by the loader thread only)."""

    def __init__(self, warehouse: Warehouse, directory: Path) -> None:
        self.warehouse = warehouse
        self.directory = directory
        self.own_pid = os.getpid()
        self._tails: dict[str, ingest_log.SegmentTail] = {}

    def poll(self) -> list[ForeignRead]:
        """Read every foreign segment's new batches (segments of this process are its own writer's business)."""
        out: list[ForeignRead] = []
        present: set[str] = set()
        for path in ingest_log.segments(self.directory):
            name = path.name
            if ingest_log.segment_pid(name) == self.own_pid:
                continue
            present.add(name)
            tail = self._tails.get(name)
            if tail is None:
                row = self.warehouse.fetch("SELECT batches FROM ingest_log_loaded WHERE segment = ?", [name])
                tail = self._tails[name] = ingest_log.SegmentTail(path, skip=int(row[0][0]) if row else 0)
            alive = ingest_log.writer_alive(name)  # before reading: a writer found gone wrote everything already
            read = tail.read()
            closed = read.eos or not alive
            if read.batches or closed:
                out.append(ForeignRead(name, read.batches, read.upto, closed))
        for gone in set(self._tails) - present:
            del self._tails[gone]
        return out

    def forget(self, segment: str) -> None:
        """Drop a segment's read position (deleted, or to be read again from the recorded count)."""
        self._tails.pop(segment, None)
