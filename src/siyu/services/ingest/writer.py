"""The process's ingest writer: a log thread that makes requests durable, a loader thread that fills DuckDB.

1. ``submit`` (request thread) builds the request's Arrow batch and queues it.
2. The log thread drains every queued request, appends their batches to the ingest log (``log.SegmentLog``),
   fsyncs once for all of them and completes their ``durable`` futures: the HTTP 200 (group commit, ~1 ms).
3. The loader thread takes the durable batches in large groups and, in ONE DuckDB transaction, inserts the
   events, their identity observations and the log position it reached, then completes their ``loaded``
   futures and triggers OneID.  Retries are stored once: a two-generation memory of recent message ids drops
   most before DuckDB; the events table's primary key catches the rest (``INSERT OR IGNORE`` path).

The transaction holds OneID's short ``observation_lock`` (never ``write_lock``, which a OneID run holds
throughout), so OneID sees no obs_id gaps.  A group that fails to load (e.g. a full disk) is retried with
back-off while the log keeps accepting; after a crash ``recover_log`` loads what the log holds beyond the
recorded position.

4. The loader also tails segments OTHER processes write into the same log directory (``siyu serve-ingest``,
   log-only processes): every ``TAIL_SECONDS`` it loads their complete batches beyond the recorded count, and
   deletes a foreign segment once it is closed and fully loaded (``tail.ForeignLog``; the rule is in ``log``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from siyu.domain.segment import EventRow
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.heap import freeze_heap
from siyu.services.ingest import log as ingest_log
from siyu.services.ingest.batches import EVENT_COLUMNS, LOG_SCHEMA, build_batch
from siyu.services.ingest.resolve_trigger import ONEID_INTERVAL_SECONDS, ResolveTrigger
from siyu.services.ingest.tail import TAIL_SECONDS, ForeignLog, ForeignRead
from siyu.services.oneid import observation_transaction

log = logging.getLogger(__name__)

WRITER_KEY = "ingest_writer"
MAX_ROWS_PER_COMMIT = 50_000
# DuckDB checkpoints the WAL inside the commit that crosses this size (a stall of up to a second); the loader
# raises the threshold and checkpoints itself when ingestion is idle instead.
WAL_CHECKPOINT_THRESHOLD = "512MB"
IDLE_CHECKPOINT_SECONDS = 2.0
RECENT_IDS = 200_000  # loaded (brand_id, message_id) remembered to drop retries before they reach DuckDB
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # back-off of a group that failed to load
POISON_ATTEMPTS = 3  # a single request failing this often alone is set aside in <log>/failed/

_COLS = ", ".join(EVENT_COLUMNS)
_INSERT_EVENTS_FAST = f"INSERT INTO events ({_COLS}) SELECT {_COLS} FROM _ingest_events"
_INSERT_EVENTS = f"{_INSERT_EVENTS_FAST.replace('INSERT INTO', 'INSERT OR IGNORE INTO')} RETURNING brand_id, message_id"
_INSERT_OBS = (
    "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
    # no ORDER BY: DuckDB keeps the Arrow table's order (preserve_insertion_order), which is the events' order
    "SELECT brand_id, 'event', message_id, timestamp, obs_identifiers, obs_traits FROM _ingest_events "
    "WHERE obs_identifiers IS NOT NULL"
)
_SAVE_POSITION = "INSERT OR REPLACE INTO ingest_log_loaded (segment, batches, updated_at) VALUES (?, ?, now())"

# segments an open writer of this process is writing (recovery must leave them alone)
_LIVE_SEGMENTS: set[str] = set()
_LOG_ONLY = "this process only writes the ingest log (SIYU_INGEST_LOADER=off); the warehouse process loads it"


def _brand_of(batch: pa.RecordBatch) -> str:
    """The brand of a log batch (one request, so one brand)."""
    return str(batch.column("brand_id")[0].as_py()) if batch.num_rows else ""


@dataclass
class _Job:
    """One request's batch on its way to the log and the warehouse."""

    brand_id: str
    message_ids: list[str]
    batch: pa.RecordBatch
    durable: Future[None] = field(default_factory=Future)
    loaded: Future[None] = field(default_factory=Future)
    segment: str = ""
    index: int = -1  # position of the batch in its segment
    failures: int = 0


@dataclass(frozen=True)
class _Closed:
    """The log thread closed a segment holding ``batches`` batches."""

    segment: str
    batches: int


@dataclass
class WriterStats:
    """Counters since the writer started (for ops and benchmarks)."""

    commits: int = 0
    requests: int = 0
    events_received: int = 0
    events_stored: int = 0
    observations: int = 0
    log_syncs: int = 0
    log_seconds: float = 0.0
    resolve_runs: int = 0
    resolve_errors: int = 0
    resolve_rebuilds: int = 0  # runs where OneID found a gap below its watermark and rebuilt (should stay 0)
    resolve_seconds: float = 0.0
    max_resolve_seconds: float = 0.0
    write_seconds: float = 0.0
    max_write_seconds: float = 0.0
    checkpoints: int = 0
    slow_path_commits: int = 0
    load_failures: int = 0
    quarantined: int = 0
    foreign_batches: int = 0  # batches loaded from segments other processes wrote
    foreign_events_stored: int = 0


def log_dir(ctx: Context) -> Path:
    """Where the ingest log of this data directory lives."""
    return ctx.settings.data_dir / ingest_log.LOG_DIR_NAME


class IngestWriter:
    """The process's ingest writer (lives in ``ctx.extras['ingest_writer']``)."""

    def __init__(self, ctx: Context, resolve_interval: float = ONEID_INTERVAL_SECONDS) -> None:
        self.ctx = ctx
        self.stats = WriterStats()
        # loaded ids in two generations: the older one is dropped whole when the newer one is full
        self._recent: dict[str, set[str]] = {}  # brand_id → message ids
        self._recent_old: dict[str, set[str]] = {}
        self._recent_n = 0
        self._log = ingest_log.SegmentLog(log_dir(ctx))
        self._log_q: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._load_q: queue.SimpleQueue[_Job | _Closed | None] = queue.SimpleQueue()
        self._closed_segments: dict[str, int] = {}
        self._loaded_upto: dict[str, int] = {}
        self._closed = False
        self._lock = threading.Lock()
        self._progress = threading.Condition()
        self._submitted = 0
        self._finished = 0
        self._resolver = ResolveTrigger(ctx, resolve_interval, self.stats)
        self._loader = ctx.settings.ingest_loader
        tails = self._loader and not ctx.warehouse.read_only  # only the process that writes the warehouse
        self._foreign = ForeignLog(ctx.warehouse, log_dir(ctx)) if tails else None
        freeze_heap()
        self._log_thread = threading.Thread(target=self._log_loop, name="siyu-ingest-log", daemon=True)
        self._load_thread = threading.Thread(target=self._load_loop, name="siyu-ingest-loader", daemon=True)
        self._log_thread.start()
        if self._loader:
            self._load_thread.start()

    # ------------------------------------------------------------------------------------------ request side

    def submit(self, brand_id: str, key_id: str, rows: list[EventRow]) -> tuple[Future[None], Future[None]]:
        """Queue validated rows; returns (durable, loaded) futures (both fail with the error if writing fails)."""
        if not rows:
            done: Future[None] = Future()
            done.set_result(None)
            return done, done
        job = _Job(brand_id, [r.message_id for r in rows], build_batch(brand_id, key_id, rows))
        with self._lock:
            if self._closed:
                raise SiyuError("the ingest writer is shutting down; retry shortly")
            self._submitted += 1
            self._log_q.put(job)
        return job.durable, job.loaded

    def wait_loaded(self, timeout: float = 60.0) -> bool:
        """Wait until every request submitted so far is in the warehouse (or failed); False on timeout."""
        with self._lock:
            target = self._submitted
        with self._progress:
            return self._progress.wait_for(lambda: self._finished >= target, timeout)

    # ------------------------------------------------------------------------------------------ log thread

    def _log_loop(self) -> None:
        while True:
            job = self._log_q.get()
            jobs: list[_Job] = []
            stop = job is None
            if job is not None:
                jobs.append(job)
                while True:
                    try:
                        nxt = self._log_q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    jobs.append(nxt)
            if jobs:
                self._append(jobs)
            if stop or self._log.full():
                closed = self._log.close_segment()
                if closed is not None:
                    _LIVE_SEGMENTS.discard(closed[0])
                    if self._loader:
                        self._load_q.put(_Closed(*closed))
            if stop:
                if self._loader:
                    self._load_q.put(None)
                return

    def _append(self, jobs: list[_Job]) -> None:
        t0 = time.perf_counter()
        try:
            name, first = self._log.append([j.batch for j in jobs])
        except Exception as exc:  # nothing was acknowledged: the clients get an error and retry
            log.exception("ingest log append failed")
            abandoned = self._log.abandoned  # the segment was closed at its last acknowledged batch
            if abandoned is not None:
                _LIVE_SEGMENTS.discard(abandoned[0])
                if self._loader:
                    self._load_q.put(_Closed(*abandoned))
            for j in jobs:
                j.durable.set_exception(exc)
                j.loaded.set_exception(exc)
            self._finish(len(jobs))
            return
        _LIVE_SEGMENTS.add(name)
        self.stats.log_syncs += 1
        self.stats.log_seconds += time.perf_counter() - t0
        for i, j in enumerate(jobs):
            j.segment, j.index = name, first + i
            j.durable.set_result(None)
            if self._loader:
                self._load_q.put(j)
        if not self._loader:  # log-only: the warehouse process loads the segment (it tails the log directory)
            for j in jobs:
                j.loaded.set_exception(SiyuError(_LOG_ONLY, "ingest_loader"))
            self._finish(len(jobs))

    def _finish(self, n: int) -> None:
        with self._progress:
            self._finished += n
            self._progress.notify_all()

    # ------------------------------------------------------------------------------------------ loader thread

    def _load_loop(self) -> None:
        cur = self.ctx.warehouse.cursor()
        try:
            cur.execute(f"SET checkpoint_threshold = '{WAL_CHECKPOINT_THRESHOLD}'")
        except Exception:  # an older DuckDB without the setting keeps its default
            log.warning("could not raise DuckDB checkpoint_threshold", exc_info=True)
        threads = _ThreadsPolicy(cur, self.ctx.settings.ingest_busy_threads)
        try:
            self._load_until_stopped(cur, threads)
        finally:
            threads.idle()

    def _load_until_stopped(self, cur: Any, threads: _ThreadsPolicy) -> None:
        dirty = False
        pending: list[_Job] = []  # a group that failed to load, retried before anything newer
        attempt = 0
        stop = False
        last_work = next_tail = time.monotonic()
        while True:
            if not pending:
                now = time.monotonic()
                if self._foreign is not None and now >= next_tail:
                    next_tail = now + TAIL_SECONDS
                    if self._load_foreign(threads):
                        dirty, last_work = True, time.monotonic()
                        continue
                timeout = next_tail - now if self._foreign is not None else None
                if dirty:
                    idle_at = last_work + IDLE_CHECKPOINT_SECONDS - now
                    timeout = idle_at if timeout is None else min(timeout, idle_at)
                try:
                    item = self._load_q.get(timeout=None if timeout is None else max(0.0, timeout))
                except queue.Empty:
                    if dirty and time.monotonic() - last_work >= IDLE_CHECKPOINT_SECONDS:
                        dirty = not self._checkpoint(cur)
                        last_work = time.monotonic()  # a skipped checkpoint is tried again after another pause
                        threads.idle()
                    continue
                threads.busy()
                last_work = time.monotonic()
                stop = self._take(item, pending)
                n = sum(len(j.message_ids) for j in pending)
                while not stop and n < MAX_ROWS_PER_COMMIT:
                    try:
                        item = self._load_q.get_nowait()
                    except queue.Empty:
                        break
                    stop = self._take(item, pending)
                    n = sum(len(j.message_ids) for j in pending)
            if pending:
                dirty = True
                pending = self._load_group(pending)
                if pending:  # failed: back off, then retry (the log keeps acknowledging meanwhile)
                    if stop:
                        log.error(
                            "ingest loader stopping with %d requests unloaded; they stay in the log", len(pending)
                        )
                        for j in pending:
                            j.loaded.set_exception(SiyuError("not loaded yet; it stays in the ingest log"))
                        self._finish(len(pending))
                        return
                    time.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                    attempt += 1
                    continue
                attempt = 0
            self._drop_loaded_segments()
            if stop:
                if self._foreign is not None:  # what other processes acknowledged up to now
                    self._load_foreign(threads)
                return

    def _take(self, item: _Job | _Closed | None, into: list[_Job]) -> bool:
        """Add a queue item to the group; True when it is the stop signal."""
        if item is None:
            return True
        if isinstance(item, _Closed):
            self._closed_segments[item.segment] = item.batches
        else:
            into.append(item)
        return False

    def _load_group(self, jobs: list[_Job]) -> list[_Job]:
        """Load a group; returns the jobs still to retry (empty when all are loaded or set aside)."""
        try:
            self._write(jobs)
        except Exception:
            self.stats.load_failures += 1
            if len(jobs) > 1:  # isolate the bad request: load the others one by one
                log.warning("loading %d requests failed; retrying one by one", len(jobs), exc_info=True)
                failed: list[_Job] = []
                for j in jobs:
                    failed += self._load_group([j])
                return failed
            job = jobs[0]
            job.failures += 1
            log.exception("loading a request from %s failed (attempt %d)", job.segment, job.failures)
            if job.failures < POISON_ATTEMPTS:
                return jobs
            self._quarantine(job)
            return []
        for j in jobs:
            j.loaded.set_result(None)
        self._finish(len(jobs))
        return []

    def _quarantine(self, job: _Job) -> None:
        """Set a request that cannot be loaded aside in ``<log>/failed/`` (kept for an operator) and move on."""
        failed = log_dir(self.ctx) / "failed"
        failed.mkdir(parents=True, exist_ok=True)
        path = failed / f"{job.segment}.{job.index:06d}.arrows"
        with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, LOG_SCHEMA) as w:
            w.write_batch(job.batch)
        self._mark_loaded(job.segment, job.index + 1)
        self.stats.quarantined += 1
        job.loaded.set_exception(SiyuError(f"this request could not be loaded; it was set aside in {path}"))
        self._finish(1)

    def _mark_loaded(self, segment: str, upto: int) -> None:
        with self.ctx.warehouse.transaction() as tx:
            tx.execute(_SAVE_POSITION, [segment, upto])
        self._loaded_upto[segment] = max(self._loaded_upto.get(segment, 0), upto)

    def _checkpoint(self, cur: Any) -> bool:
        """Fold the WAL into the database file while nothing waits; True when done."""
        try:
            cur.execute("CHECKPOINT")
        except Exception:  # another transaction is open (e.g. OneID): try again at the next idle moment
            log.debug("idle checkpoint skipped", exc_info=True)
            return False
        self.stats.checkpoints += 1
        return True

    def _fresh(self, jobs: list[_Job]) -> tuple[list[pa.RecordBatch], dict[str, set[str]]]:
        """The jobs' batches without retries of ids loaded recently or repeated in this group."""
        return self._fresh_batches([(j.brand_id, j.message_ids, j.batch) for j in jobs])

    def _fresh_batches(
        self, items: list[tuple[str, list[str], pa.RecordBatch]]
    ) -> tuple[list[pa.RecordBatch], dict[str, set[str]]]:
        """(brand, message ids, batch) items without the ids loaded recently or repeated among them.

        Set operations decide for a whole request at once; only a request that holds a repeat is filtered row by
        row (rare: a client retry)."""
        seen: dict[str, set[str]] = {}
        out: list[pa.RecordBatch] = []
        empty: set[str] = set()
        for b, mids, batch in items:
            ids = set(mids)
            now_seen = seen.setdefault(b, set())
            recent, old = self._recent.get(b, empty), self._recent_old.get(b, empty)
            if len(ids) == len(mids) and ids.isdisjoint(now_seen) and ids.isdisjoint(recent) and ids.isdisjoint(old):
                now_seen |= ids
                out.append(batch)
                continue
            keep: list[bool] = []
            for m in mids:
                fresh = m not in now_seen and m not in recent and m not in old
                keep.append(fresh)
                if fresh:
                    now_seen.add(m)
            if any(keep):
                out.append(batch.filter(pa.array(keep)))
        return out, seen

    def _write(self, jobs: list[_Job]) -> None:
        t0 = time.perf_counter()
        st = self.stats
        batches, seen = self._fresh(jobs)
        positions: dict[str, int] = {}
        for j in jobs:
            positions[j.segment] = max(positions.get(j.segment, 0), j.index + 1)
        table = pa.Table.from_batches(batches, schema=LOG_SCHEMA)
        inserted_n, n_obs, careful = load_table(self.ctx, table, positions)
        st.slow_path_commits += careful
        for seg, upto in positions.items():
            self._loaded_upto[seg] = max(self._loaded_upto.get(seg, 0), upto)
        self._remember(seen)
        st.requests += len(jobs)
        st.commits += 1
        st.events_received += table.num_rows
        st.events_stored += inserted_n
        st.observations += n_obs
        took = time.perf_counter() - t0
        st.write_seconds += took
        st.max_write_seconds = max(st.max_write_seconds, took)
        if n_obs:
            self._resolver.trigger({j.brand_id for j in jobs})

    def _load_foreign(self, threads: _ThreadsPolicy) -> bool:
        """Load what other processes appended to their segments since the last poll; True when anything was."""
        assert self._foreign is not None
        try:
            reads = self._foreign.poll()
        except Exception:
            log.exception("reading other processes' ingest log segments failed")
            return False
        worked = False
        for read in reads:
            if read.batches:
                threads.busy()
                worked = True
                try:
                    self._write_foreign(read)
                except Exception:
                    self.stats.load_failures += 1
                    log.exception("loading ingest log segment %s failed; it is read again next time", read.segment)
                    self._foreign.forget(read.segment)  # re-read from the recorded position
                    continue
            if read.closed:
                _drop_segment(self.ctx, read.segment)
                self._foreign.forget(read.segment)
        return worked

    def _write_foreign(self, read: ForeignRead) -> None:
        """Load one foreign segment's new batches (in groups of at most ``MAX_ROWS_PER_COMMIT`` rows)."""
        st = self.stats
        start = read.upto - len(read.batches)
        group: list[pa.RecordBatch] = []
        rows = 0
        for i, batch in enumerate(read.batches, start=1):
            group.append(batch)
            rows += batch.num_rows
            if rows >= MAX_ROWS_PER_COMMIT or i == len(read.batches):
                t0 = time.perf_counter()
                items = [(_brand_of(b), b.column("message_id").to_pylist(), b) for b in group if b.num_rows]
                batches, seen = self._fresh_batches(items)
                table = pa.Table.from_batches(batches, schema=LOG_SCHEMA)
                stored, n_obs, careful = load_table(self.ctx, table, {read.segment: start + i})
                self._remember(seen)
                st.foreign_batches += len(group)
                st.foreign_events_stored += stored
                st.events_received += sum(b.num_rows for b in group)
                st.events_stored += stored
                st.observations += n_obs
                st.slow_path_commits += careful
                st.commits += 1
                took = time.perf_counter() - t0
                st.write_seconds += took
                st.max_write_seconds = max(st.max_write_seconds, took)
                if n_obs:
                    self._resolver.trigger({brand for brand, _, _ in items})
                group, rows = [], 0

    def _remember(self, loaded: dict[str, set[str]]) -> None:
        """Add loaded ids to the recent-id memory (between RECENT_IDS / 2 and RECENT_IDS ids are kept)."""
        for b, ids in loaded.items():
            self._recent.setdefault(b, set()).update(ids)
            self._recent_n += len(ids)
        if self._recent_n >= RECENT_IDS // 2:
            self._recent_old, self._recent, self._recent_n = self._recent, {}, 0

    def _drop_loaded_segments(self) -> None:
        for seg, count in list(self._closed_segments.items()):
            if self._loaded_upto.get(seg, 0) >= count:
                _drop_segment(self.ctx, seg)
                del self._closed_segments[seg]
                self._loaded_upto.pop(seg, None)

    # ------------------------------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Flush: everything queued is logged and loaded, then the threads and the OneID trigger stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._log_q.put(None)
        self._log_thread.join()
        if self._load_thread.is_alive():
            self._load_thread.join()
        self._resolver.close()


class _ThreadsPolicy:
    """DuckDB runs on ``busy_threads`` threads while ingestion is busy and on all of them again once it is idle.

    DuckDB's worker threads (loading, OneID's writes, checkpoints) otherwise take every core in bursts and the
    acks wait for CPU: on 2 cores this took the p99 ack at 20,000 events/s from ~45 ms to ~100 ms.  Analytics
    that run during heavy ingestion get fewer threads; 0 leaves DuckDB's setting alone."""

    def __init__(self, cur: Any, busy_threads: int) -> None:
        self.cur = cur
        self.busy_threads = busy_threads
        row = cur.execute("SELECT current_setting('threads')").fetchone()
        self.idle_threads = int(row[0]) if row else 0
        self._busy = False

    def busy(self) -> None:
        """Ingestion started: narrow DuckDB (once per busy period)."""
        if self._busy or not (0 < self.busy_threads < self.idle_threads):
            return
        self.cur.execute(f"SET threads = {int(self.busy_threads)}")
        self._busy = True

    def idle(self) -> None:
        """Ingestion paused: give DuckDB all its threads back."""
        if self._busy:
            self.cur.execute(f"SET threads = {int(self.idle_threads)}")
            self._busy = False


def load_table(ctx: Context, table: pa.Table, positions: dict[str, int]) -> tuple[int, int, bool]:
    """Insert log rows (events + observations) and the log positions in one transaction.

    Returns (events stored, observations stored, whether the careful path ran because some ids were stored
    before)."""
    n_obs = table.num_rows - table.column("obs_identifiers").null_count
    _ingest_events = table
    try:
        # Fast path: a plain INSERT is about twice as fast as INSERT OR IGNORE on the primary key.
        with observation_transaction(ctx) as tx:
            if table.num_rows:
                tx.execute(_INSERT_EVENTS_FAST)
            if n_obs:
                tx.execute(_INSERT_OBS)
            for seg, upto in positions.items():
                tx.execute(_SAVE_POSITION, [seg, upto])
        return table.num_rows, n_obs, False
    except (duckdb.ConstraintException, duckdb.TransactionException):
        pass
    # Some message ids were stored long ago (older than the recent-id memory) or by a recovery: the careful path.
    with observation_transaction(ctx) as tx:
        stored = set(tx.execute(_INSERT_EVENTS).fetchall()) if table.num_rows else set()
        if len(stored) != table.num_rows:
            pairs = zip(table.column("brand_id").to_pylist(), table.column("message_id").to_pylist(), strict=True)
            _ingest_events = table.filter(pa.array([p in stored for p in pairs]))
            n_obs = _ingest_events.num_rows - _ingest_events.column("obs_identifiers").null_count
        if n_obs:
            tx.execute(_INSERT_OBS)
        for seg, upto in positions.items():
            tx.execute(_SAVE_POSITION, [seg, upto])
    return len(stored), n_obs, True


def _drop_segment(ctx: Context, segment: str) -> None:
    """Delete a fully loaded segment file, then its position row."""
    try:
        (log_dir(ctx) / segment).unlink(missing_ok=True)
    except OSError:
        log.warning("could not delete ingest log segment %s", segment, exc_info=True)
        return
    with ctx.warehouse.transaction() as tx:
        tx.execute("DELETE FROM ingest_log_loaded WHERE segment = ?", [segment])


def recover_log(ctx: Context, group_rows: int = MAX_ROWS_PER_COMMIT) -> int:
    """Load what segments hold beyond their recorded position; returns events loaded.

    Called when a Context opens the warehouse.  Segments a live writer of this process is writing are skipped;
    a segment is deleted only when it is closed (end-of-stream marker, or its writer process is gone — see
    ``log``): a segment another live process (``siyu serve-ingest``) is still writing stays, and the loader's
    tail goes on from the recorded position."""
    total = 0
    own_pid = os.getpid()
    for path in ingest_log.segments(log_dir(ctx)):
        if path.name in _LIVE_SEGMENTS:
            continue
        # a segment named with this pid that no writer here holds was left by an earlier writer (or process)
        alive = ingest_log.segment_pid(path.name) != own_pid and ingest_log.writer_alive(path.name)
        row = ctx.warehouse.fetch("SELECT batches FROM ingest_log_loaded WHERE segment = ?", [path.name])
        done = int(row[0][0]) if row else 0
        read = ingest_log.SegmentTail(path, skip=done).read()
        loaded = 0
        group: list[pa.RecordBatch] = []
        n = 0
        for index, batch in enumerate(read.batches, start=done + 1):
            group.append(batch)
            n += batch.num_rows
            if n >= group_rows or index == read.upto:
                loaded += load_table(ctx, pa.Table.from_batches(group, schema=LOG_SCHEMA), {path.name: index})[0]
                group, n = [], 0
        if loaded:
            log.warning("recovered %d events from ingest log segment %s", loaded, path.name)
        total += loaded
        if read.eos or not alive:
            _drop_segment(ctx, path.name)
    return total


_START_LOCK = threading.Lock()


def get_writer(ctx: Context) -> IngestWriter:
    """The process's ingest writer, started on first use."""
    writer = ctx.extras.get(WRITER_KEY)
    if isinstance(writer, IngestWriter):
        return writer
    with _START_LOCK:
        writer = ctx.extras.get(WRITER_KEY)
        if not isinstance(writer, IngestWriter):
            writer = IngestWriter(ctx)
            ctx.extras[WRITER_KEY] = writer
    return writer


def start_loader(ctx: Context) -> None:
    """Start this process's writer now when it loads (the warehouse process): it then also loads what other
    processes append to the log, before any request reaches this one."""
    if ctx.settings.ingest_loader:
        get_writer(ctx)


def wait_loaded(ctx: Context, timeout: float = 60.0) -> bool:
    """Wait until everything this process acknowledged is in the warehouse (True at once when nothing was)."""
    writer = ctx.extras.get(WRITER_KEY)
    return writer.wait_loaded(timeout) if isinstance(writer, IngestWriter) else True
