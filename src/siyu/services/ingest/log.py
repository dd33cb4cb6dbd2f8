"""The durable ingest log: acknowledged events are appended to Arrow IPC segment files and fsync'd.

An HTTP 200 waits for the fsync of the segment holding the request's batch, not for the warehouse: the loader
moves batches into DuckDB in large groups behind the acks and records, in the same transaction, how many
batches of each segment it has loaded (``ingest_log_loaded``).  After a crash, ``pending_batches`` yields what a
segment holds beyond that count, so every acknowledged event reaches the warehouse exactly once (the events
table's primary key is the backstop for a batch loaded but not yet counted).

Segment files are named ``<time_ns>-<pid>.arrows`` in ``<data_dir>/ingest-log/``; a segment is closed when it
passes ``SEGMENT_BYTES`` (or at shutdown, or after a failed write) and deleted once fully loaded.

Several processes may append to the same directory (``siyu serve-ingest``), each to its own segments; only the
warehouse process loads and deletes them.  A segment is **closed** when its writer wrote the end-of-stream marker
(``has_eos``) or its writer process is gone (``writer_alive``); a closed segment is deleted once every complete
batch it holds is loaded (a torn tail was never acknowledged).  ``SegmentTail`` reads a segment another process is
still writing, batch by batch, from where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from siyu.services.ingest.batches import LOG_SCHEMA

SEGMENT_BYTES = 64 * 1024 * 1024
LOG_DIR_NAME = "ingest-log"
EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # Arrow IPC end-of-stream marker


class _Sink:
    """Where the Arrow stream writer puts its bytes; ``SegmentLog`` moves them to the file itself."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.written = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.buf += data
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self.buf = bytes(self.buf), bytearray()
        return data


class SegmentLog:
    """Appends batches to the current segment; ``append`` returns after the bytes are on disk.

    A failed append (a full disk) truncates the segment back to its last complete batch and closes it, so what
    was acknowledged before stays readable and the next append starts a new segment; ``abandoned`` then names the
    closed segment and its batch count (None when it held none and was deleted)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.name: str | None = None
        self.batches = 0
        self.size = 0  # bytes on disk: the end of the last complete batch
        self.abandoned: tuple[str, int] | None = None
        self._fd: int | None = None
        self._sink = _Sink()
        self._stream: pa.ipc.RecordBatchStreamWriter | None = None

    def append(self, batches: list[pa.RecordBatch]) -> tuple[str, int]:
        """Write and fsync ``batches``; returns the segment name and the index of the first of them."""
        self.abandoned = None
        if self._stream is None:
            self.name = f"{time.time_ns():020d}-{os.getpid()}.arrows"
            self._fd = os.open(self.directory / self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._sink = _Sink()
            self._stream = pa.ipc.new_stream(pa.PythonFile(self._sink, mode="w"), LOG_SCHEMA)
            self.batches = self.size = 0
            try:
                _fsync_dir(self.directory)
            except OSError:
                self._abandon()
                raise
        assert self._fd is not None and self.name is not None
        first = self.batches
        for b in batches:
            self._stream.write_batch(b)
        data = self._sink.take()
        try:
            _write_all(self._fd, data)
            os.fdatasync(self._fd)
        except OSError:
            self._abandon()
            raise
        self.size += len(data)
        self.batches += len(batches)
        return self.name, first

    def _abandon(self) -> None:
        """Cut the segment back to its last complete batch and close it (a new one starts at the next append)."""
        assert self._fd is not None and self.name is not None
        try:
            os.ftruncate(self._fd, self.size)
            os.fdatasync(self._fd)
        except OSError:  # a torn tail is still safe: readers stop there, and nothing is appended after it
            pass
        with contextlib.suppress(OSError):  # mark it closed for the warehouse process (else: when this one exits)
            os.pwrite(self._fd, EOS, self.size)
        os.close(self._fd)
        if self.batches:
            self.abandoned = (self.name, self.batches)
        else:
            (self.directory / self.name).unlink(missing_ok=True)
        self._fd = None
        self._stream = None
        self.name = None

    def full(self) -> bool:
        """Whether the current segment should be closed."""
        return self._fd is not None and self.size >= SEGMENT_BYTES

    def close_segment(self) -> tuple[str, int] | None:
        """Close the current segment; returns its name and batch count (None when none is open)."""
        if self._stream is None or self._fd is None or self.name is None:
            return None
        self._stream.close()  # the end-of-stream marker (optional for readers)
        try:
            _write_all(self._fd, self._sink.take())
            os.fdatasync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self.size)
        os.close(self._fd)
        closed = (self.name, self.batches)
        self._stream = None
        self._fd = None
        self.name = None
        return closed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


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


def segment_pid(name: str) -> int | None:
    """The writer's process id in a segment name ``<time_ns>-<pid>.arrows`` (None when the name is not one)."""
    try:
        return int(name.split(".", 1)[0].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def _segment_time_ns(name: str) -> int | None:
    try:
        return int(name.split("-", 1)[0])
    except ValueError:
        return None


@functools.cache
def _boot_time() -> int | None:
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        return next(int(line.split()[1]) for line in lines if line.startswith("btime "))
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _process_start_ns(pid: int) -> int | None:
    """When ``pid`` started (wall clock, ns), from Linux /proc; None elsewhere."""
    btime = _boot_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if btime is None:
        return None
    return int((btime + int(stat[19]) / os.sysconf("SC_CLK_TCK")) * 1e9)


def writer_alive(name: str) -> bool:
    """Whether the process that writes segment ``name`` may still be running (on this machine).

    A pid reused by a process that started after the segment was created is not its writer (Linux /proc); when in
    doubt the writer counts as alive, which only keeps the segment longer."""
    pid = segment_pid(name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started, created = _process_start_ns(pid), _segment_time_ns(name)
    # started well after the segment was created: not its writer (the margin covers boot-time clock drift)
    if started is not None and created is not None and started > created + 120_000_000_000:
        return False
    state = _proc_state(pid)
    return state not in ("Z", "X")  # a zombie (killed, not yet reaped) writes nothing more


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@dataclass
class TailRead:
    """What ``SegmentTail.read`` found: complete batches beyond those read before, and whether the stream ended."""

    batches: list[pa.RecordBatch]
    upto: int  # batches read from the segment so far (the position to record once ``batches`` are loaded)
    eos: bool


class SegmentTail:
    """Reads a segment that another process may still be appending to, from where the last read stopped.

    Only complete messages are returned; a partial one (being written, or torn by a crash) is read again next
    time.  ``skip`` batches (already loaded, per ``ingest_log_loaded``) are passed over without decoding."""

    def __init__(self, path: Path, skip: int = 0) -> None:
        self.path = path
        self.skip = skip
        self.offset = 0  # end of the last complete message read
        self.count = 0  # record batches passed so far (skipped or returned)
        self.eos = False
        self._schema: pa.Schema | None = None

    def read(self) -> TailRead:
        """The complete batches written since the last call (file gone → none, and ``eos`` stays False)."""
        out: list[pa.RecordBatch] = []
        if self.eos:
            return TailRead(out, self.count, True)
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return TailRead(out, self.count, False)
        buf = pa.BufferReader(pa.py_buffer(data))
        pos = 0
        while pos < len(data):
            if data[pos : pos + 8] == EOS:
                self.eos = True
                break
            try:
                msg = pa.ipc.read_message(buf)
            except (StopIteration, EOFError, pa.ArrowInvalid, OSError):
                break  # incomplete: being written (or torn)
            pos = buf.tell()
            if msg.type == "schema":
                self._schema = pa.ipc.read_schema(msg)
            elif msg.type == "record batch":
                self.count += 1
                if self.count > self.skip:
                    assert self._schema is not None
                    out.append(pa.ipc.read_record_batch(msg, self._schema))
        self.offset += pos
        return TailRead(out, self.count, self.eos)
