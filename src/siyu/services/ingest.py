"""Segment-compatible ingestion: authenticate, rate-limit, validate, then durably store through a group-commit writer.

Request handlers call ``submit`` (validation happens on the caller's thread) and wait on the returned future;
one ``IngestWriter`` thread per process drains every pending request, inserts all their events and identity
observations in ONE DuckDB transaction (bulk insert from Arrow), commits, and only then resolves the futures —
so an HTTP 200 means the events are committed.  Retries are stored once: ``events`` is keyed by
(brand_id, message_id) and inserted with ``INSERT OR IGNORE``; observations are written only for newly stored
events.  The transaction holds OneID's short ``observation_lock`` (never ``write_lock``, which a OneID run holds
throughout), so OneID sees no obs_id gaps and acks never wait for a resolution.  After each commit OneID's
``resolve_pending`` is triggered on a separate, coalescing thread.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from siyu.domain.segment import EventRow, Limits, MessageRejected, parse_time, to_micros, validate_message
from siyu.services import oneid
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.oneid import observation_transaction
from siyu.services.rate_limit import TokenBucket
from siyu.services.write_keys import authenticate_key

log = logging.getLogger(__name__)

WRITER_KEY = "ingest_writer"
LIMITER_KEY = "ingest_rate_limiter"
MAX_ROWS_PER_COMMIT = 50_000
# DuckDB checkpoints the WAL inside the commit that crosses this size, stalling every ack of that group for up
# to a second; the writer raises the threshold and checkpoints itself when ingestion is idle instead.
WAL_CHECKPOINT_THRESHOLD = "512MB"
IDLE_CHECKPOINT_SECONDS = 2.0
# OneID runs at most this often for new observations (bigger, fewer runs cost less CPU next to ingestion)
ONEID_INTERVAL_SECONDS = 3.0
# re-seen identifiers' first/last-seen times are written behind (DuckDB row updates are the costly part of a run):
# at most this old while ingestion goes on, and flushed this long after it pauses
ONEID_SEEN_DELAY_SECONDS = 5.0
RECENT_IDS = 200_000  # committed (brand_id, message_id) remembered to drop retries before they reach DuckDB


class PayloadTooLarge(SiyuError):
    """A Segment size/count limit was exceeded (HTTP 413)."""

    status_code = 413


class RateLimited(SiyuError):
    """Too many requests for one write key (HTTP 429); ``retry_after`` is in seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, "writeKey")
        self.retry_after = retry_after


class BatchRejected(SiyuError):
    """Every event of a batch was invalid (HTTP 400); ``rejected`` lists each one."""

    def __init__(self, message: str, rejected: list[dict[str, Any]]) -> None:
        super().__init__(message, "batch")
        self.rejected = rejected


@dataclass
class Submission:
    """What ``submit`` accepted: the brand, counts, per-event rejections, and the durability future."""

    brand_id: str
    accepted: int
    rejected: list[dict[str, Any]]
    future: Future[None]

    def body(self) -> dict[str, Any]:
        """The JSON answer (Segment's ``{"success": true}`` plus siyu's details)."""
        return {"success": True, "accepted": self.accepted, "rejected": self.rejected}


# --------------------------------------------------------------------------------------------- request side


def _now_micros() -> int:
    return to_micros(datetime.now(UTC))


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate (Segment clients may compress), refusing anything larger than ``limit`` bytes."""
    if not content_encoding or content_encoding.lower() in ("identity", ""):
        return raw
    enc = content_encoding.lower()
    if enc not in ("gzip", "deflate"):
        raise SiyuError(
            f"Content-Encoding {content_encoding!r} is not supported; send gzip or none", "Content-Encoding"
        )
    try:
        d = zlib.decompressobj(zlib.MAX_WBITS | 32)
        out = d.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise SiyuError(f"body is not valid {enc} data ({exc})", "Content-Encoding") from exc
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"uncompressed body exceeds the limit of {limit // 1024} KB", "body")
    return out


def _limiter(ctx: Context) -> TokenBucket:
    lim = ctx.extras.get(LIMITER_KEY)
    if not isinstance(lim, TokenBucket):
        s = ctx.settings
        lim = ctx.extras.setdefault(LIMITER_KEY, TokenBucket(s.rate_limit_per_second, s.rate_limit_burst))
    return lim


def _rejection(index: int | None, msg: object, exc: MessageRejected) -> dict[str, Any]:
    mid = msg.get("messageId") if isinstance(msg, dict) else None
    item: dict[str, Any] = {"field": exc.field, "reason": exc.reason}
    if index is not None:
        item = {"index": index, "messageId": mid if isinstance(mid, str) else None, **item}
    return item


def submit(
    ctx: Context,
    body: bytes,
    type_: str | None,
    basic_key: str | None = None,
    content_encoding: str | None = None,
) -> Submission:
    """Validate one Segment request and hand its events to the writer.

    ``type_`` is the endpoint's message type, or None for ``/v1/batch`` and ``/v1/import``.  ``basic_key`` is the
    HTTP Basic user name; otherwise ``writeKey`` in the body is used.  Raises SiyuError subclasses (401, 400,
    413, 429) for request-level problems; per-event problems in a batch are listed in ``rejected``.
    """
    s = ctx.settings
    limits = Limits.from_settings(s)
    byte_limit = s.max_batch_bytes if type_ is None else s.max_event_bytes
    if len(body) > byte_limit and not content_encoding:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; the limit is {byte_limit // 1024} KB "
            + ("per batch — split it into smaller batches" if type_ is None else "per event — send less data"),
            "body",
        )
    body = decode_body(body, content_encoding, byte_limit)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SiyuError(f"body is not valid JSON ({exc}); send a JSON object", "body") from None
    if not isinstance(payload, dict):
        raise SiyuError("body must be a JSON object", "body")
    key = basic_key or payload.get("writeKey")
    auth = authenticate_key(ctx, key if isinstance(key, str) else None)
    wait = _limiter(ctx).take(auth.key_id)
    if wait > 0:
        raise RateLimited(
            f"rate limit of {s.rate_limit_per_second:g} requests/s for this write key exceeded; "
            f"retry after {wait:.2f} s",
            wait,
        )
    received_at = _now_micros()
    rows: list[EventRow] = []
    rejected: list[dict[str, Any]] = []
    if type_ is not None:
        try:
            rows.append(validate_message(payload, type_, limits, received_at, size=len(body)))
        except MessageRejected as exc:
            if exc.too_large:
                raise PayloadTooLarge(exc.reason, exc.field) from None
            raise SiyuError(exc.reason, exc.field) from None
    else:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise SiyuError('batch must be a JSON array of messages: {"batch": [{...}, ...]}', "batch")
        if len(batch) > limits.max_batch_events:
            raise PayloadTooLarge(
                f"batch has {len(batch)} events; the limit is {limits.max_batch_events} per request — "
                "split it into smaller batches",
                "batch",
            )
        try:
            batch_sent_at = parse_time(payload.get("sentAt"), "sentAt")
        except MessageRejected as exc:
            raise SiyuError(exc.reason, exc.field) from None
        batch_context = payload.get("context")
        if not isinstance(batch_context, dict) or not batch_context:
            batch_context = None
        for i, msg in enumerate(batch):
            try:
                rows.append(validate_message(msg, None, limits, received_at, batch_sent_at, batch_context))
            except MessageRejected as exc:
                rejected.append(_rejection(i, msg, exc))
        if rejected and not rows:
            first = rejected[0]
            raise BatchRejected(
                f"no event in the batch is valid; e.g. batch[{first['index']}].{first['field']}: {first['reason']}",
                rejected,
            )
    future = get_writer(ctx).submit(auth.brand_id, auth.key_id, rows)
    return Submission(auth.brand_id, len(rows), rejected, future)


def ingest(
    ctx: Context, body: bytes, type_: str | None, basic_key: str | None = None, timeout: float = 60.0
) -> Submission:
    """``submit`` and wait until the events are committed (blocking form for CLI, workers and tests)."""
    sub = submit(ctx, body, type_, basic_key)
    sub.future.result(timeout)
    return sub


# --------------------------------------------------------------------------------------------- writer side

_EVENT_SCHEMA = pa.schema(
    [
        ("brand_id", pa.string()),
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("group_id", pa.string()),
        ("previous_id", pa.string()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("original_timestamp", pa.timestamp("us")),
        ("sent_at", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("write_key_id", pa.string()),
    ]
)
_IDS_TYPE = pa.list_(pa.struct([("type", pa.string()), ("value", pa.string())]))
_OBS_SCHEMA = pa.schema(
    [
        ("brand_id", pa.string()),
        ("source_ref", pa.string()),
        ("observed_at", pa.timestamp("us")),
        ("identifiers", _IDS_TYPE),
        ("traits", pa.string()),
    ]
)
_COLS = ", ".join(_EVENT_SCHEMA.names)
_INSERT_EVENTS = (
    f"INSERT OR IGNORE INTO events ({_COLS}) SELECT {_COLS} FROM _ingest_events RETURNING brand_id, message_id"
)
_INSERT_EVENTS_FAST = f"INSERT INTO events ({_COLS}) SELECT {_COLS} FROM _ingest_events"
_INSERT_OBS = (
    "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
    # no ORDER BY: DuckDB keeps the Arrow table's order (preserve_insertion_order), which is the events' order
    "SELECT brand_id, 'event', source_ref, observed_at, identifiers, traits FROM _ingest_obs"
)


@dataclass
class _Job:
    """One request's events, already shaped as Arrow on the request's thread (off the writer's critical path)."""

    brand_id: str
    message_ids: list[str]
    events: pa.RecordBatch
    obs: pa.RecordBatch | None
    obs_rows: list[int]  # the position in ``events`` of each ``obs`` row
    future: Future[None] = field(default_factory=Future)


def _job(brand_id: str, key_id: str, rows: list[EventRow]) -> _Job:
    """Turn validated rows into the Arrow batches the writer inserts (columns built directly, no row tuples)."""
    n = len(rows)
    mids = [r.message_id for r in rows]
    ts = pa.timestamp("us")

    def col(values: list[Any], typ: pa.DataType = pa.string()) -> pa.Array:
        return pa.array(values, type=typ)

    def times(values: list[int | None]) -> pa.Array:
        return pa.array(values, type=pa.int64()).view(ts)

    events = pa.RecordBatch.from_arrays(
        [
            col([brand_id] * n),
            col(mids),
            col([r.type for r in rows]),
            col([r.event for r in rows]),
            col([r.name for r in rows]),
            col([r.user_id for r in rows]),
            col([r.anonymous_id for r in rows]),
            col([r.group_id for r in rows]),
            col([r.previous_id for r in rows]),
            col([r.properties for r in rows]),
            col([r.traits for r in rows]),
            col([r.context for r in rows]),
            times([r.timestamp for r in rows]),
            times([r.original_timestamp for r in rows]),
            times([r.sent_at for r in rows]),
            times([r.received_at for r in rows]),
            col([key_id] * n),
        ],
        schema=_EVENT_SCHEMA,
    )
    obs_rows = [i for i, r in enumerate(rows) if r.observation is not None]
    with_obs = [rows[i] for i in obs_rows]
    obs = None
    if with_obs:
        obs = pa.RecordBatch.from_arrays(
            [
                col([brand_id] * len(with_obs)),
                col([r.message_id for r in with_obs]),
                times([r.timestamp for r in with_obs]),
                col([r.observation.identifiers for r in with_obs], _IDS_TYPE),  # type: ignore[union-attr]
                col([r.observation.traits for r in with_obs]),  # type: ignore[union-attr]
            ],
            schema=_OBS_SCHEMA,
        )
    return _Job(brand_id, mids, events, obs, obs_rows)


@dataclass
class WriterStats:
    """Counters since the writer started (for ops and benchmarks)."""

    commits: int = 0
    requests: int = 0
    events_received: int = 0
    events_stored: int = 0
    observations: int = 0
    resolve_runs: int = 0
    resolve_errors: int = 0
    resolve_rebuilds: int = 0  # runs where OneID found a gap below its watermark and rebuilt (should stay 0)
    resolve_seconds: float = 0.0
    max_resolve_seconds: float = 0.0
    write_seconds: float = 0.0
    max_write_seconds: float = 0.0
    checkpoints: int = 0
    slow_path_commits: int = 0


class IngestWriter:
    """The single group-commit writer of a process (lives in ``ctx.extras['ingest_writer']``)."""

    def __init__(self, ctx: Context, resolve_interval: float = ONEID_INTERVAL_SECONDS) -> None:
        self.ctx = ctx
        self.stats = WriterStats()
        # committed ids in two generations: the older one is dropped whole when the newer one is full (evicting
        # the oldest key of one big insertion-ordered dict costs a scan over deleted slots: ~10 ms per commit)
        self._recent: dict[str, set[str]] = {}  # brand_id → message ids
        self._recent_old: dict[str, set[str]] = {}
        self._recent_n = 0
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._resolver = _ResolveTrigger(ctx, resolve_interval, self.stats)
        _freeze_heap()
        self._thread = threading.Thread(target=self._run, name="siyu-ingest-writer", daemon=True)
        self._thread.start()

    def submit(self, brand_id: str, key_id: str, rows: list[EventRow]) -> Future[None]:
        """Queue validated rows; the future completes once they are committed (or fails with the DB error)."""
        if not rows:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        job = _job(brand_id, key_id, rows)
        with self._lock:
            if self._closed:
                raise SiyuError("the ingest writer is shutting down; retry shortly")
            self._queue.put(job)
        return job.future

    def _run(self) -> None:
        cur = self.ctx.warehouse.cursor()
        try:
            cur.execute(f"SET checkpoint_threshold = '{WAL_CHECKPOINT_THRESHOLD}'")
        except Exception:  # an older DuckDB without the setting keeps its default
            log.warning("could not raise DuckDB checkpoint_threshold", exc_info=True)
        dirty = False
        while True:
            try:
                job = self._queue.get(timeout=IDLE_CHECKPOINT_SECONDS if dirty else None)
            except queue.Empty:
                dirty = not self._checkpoint(cur)
                continue
            if job is None:
                return
            dirty = True
            jobs = [job]
            n = len(job.message_ids)
            stop = False
            while n < MAX_ROWS_PER_COMMIT:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                n += len(nxt.message_ids)
            self._commit(jobs)
            if stop:
                return

    def _checkpoint(self, cur: Any) -> bool:
        """Fold the WAL into the database file while no request waits; True when done."""
        try:
            cur.execute("CHECKPOINT")
        except Exception:  # another transaction is open (e.g. OneID): try again at the next idle moment
            log.debug("idle checkpoint skipped", exc_info=True)
            return False
        self.stats.checkpoints += 1
        return True

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            self._write(jobs)
        except Exception as exc:  # isolate the bad request: retry one by one
            if len(jobs) == 1:
                log.exception("ingest commit failed")
                jobs[0].future.set_exception(exc)
                return
            for job in jobs:
                self._commit([job])
            return
        for job in jobs:
            job.future.set_result(None)

    def _fresh(self, jobs: list[_Job]) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch], dict[str, set[str]]]:
        """The jobs' batches without retries of ids committed recently or repeated in this group.

        Set operations decide for a whole request at once; only a request that holds a repeat is filtered row by
        row (rare: a client retry)."""
        seen: dict[str, set[str]] = {}
        ev: list[pa.RecordBatch] = []
        obs: list[pa.RecordBatch] = []
        empty: set[str] = set()
        for job in jobs:
            b, mids = job.brand_id, job.message_ids
            ids = set(mids)
            now_seen = seen.setdefault(b, set())
            recent, old = self._recent.get(b, empty), self._recent_old.get(b, empty)
            if len(ids) == len(mids) and ids.isdisjoint(now_seen) and ids.isdisjoint(recent) and ids.isdisjoint(old):
                now_seen |= ids
                ev.append(job.events)
                if job.obs is not None:
                    obs.append(job.obs)
                continue
            keep: list[bool] = []
            for m in mids:
                fresh = m not in now_seen and m not in recent and m not in old
                keep.append(fresh)
                if fresh:
                    now_seen.add(m)
            if any(keep):
                ev.append(job.events.filter(pa.array(keep)))
                if job.obs is not None:
                    obs.append(job.obs.filter(pa.array([keep[i] for i in job.obs_rows])))
        return ev, obs, seen

    def _write(self, jobs: list[_Job]) -> None:
        t0 = time.perf_counter()
        st = self.stats
        st.requests += len(jobs)
        ev_batches, obs_batches, seen = self._fresh(jobs)
        n_ev = sum(b.num_rows for b in ev_batches)
        if not n_ev:
            return
        ev_table = pa.Table.from_batches(ev_batches, schema=_EVENT_SCHEMA)
        obs_table = pa.Table.from_batches(obs_batches, schema=_OBS_SCHEMA) if obs_batches else None
        # DuckDB finds the Arrow tables by these local names (a replacement scan: cheaper than register/unregister)
        _ingest_events = ev_table
        _ingest_obs = obs_table
        try:
            # Fast path: a plain INSERT is about twice as fast as INSERT OR IGNORE on the primary key.
            with observation_transaction(self.ctx) as tx:
                tx.execute(_INSERT_EVENTS_FAST)
                if obs_table is not None:
                    tx.execute(_INSERT_OBS)
            inserted_n = n_ev
        except duckdb.ConstraintException:
            # Some message ids were stored long ago (older than the recent-id memory): the careful path.
            st.slow_path_commits += 1
            with observation_transaction(self.ctx) as tx:
                inserted = tx.execute(_INSERT_EVENTS).fetchall()
                inserted_n = len(inserted)
                if obs_table is not None and inserted_n != n_ev:
                    stored = set(inserted)
                    pairs = zip(obs_table.column(0).to_pylist(), obs_table.column(1).to_pylist(), strict=True)
                    obs_table = obs_table.filter(pa.array([p in stored for p in pairs]))
                if obs_table is not None and obs_table.num_rows:
                    _ingest_obs = obs_table
                    tx.execute(_INSERT_OBS)
        self._remember(seen)
        st.commits += 1
        st.events_received += n_ev
        st.events_stored += inserted_n
        n_obs = obs_table.num_rows if obs_table is not None else 0
        st.observations += n_obs
        took = time.perf_counter() - t0
        st.write_seconds += took
        st.max_write_seconds = max(st.max_write_seconds, took)
        if n_obs:
            self._resolver.trigger(set(obs_table.column(0).unique().to_pylist()))  # type: ignore[union-attr]

    def _remember(self, committed: dict[str, set[str]]) -> None:
        """Add committed ids to the recent-id memory (between RECENT_IDS / 2 and RECENT_IDS ids are kept)."""
        for b, ids in committed.items():
            self._recent.setdefault(b, set()).update(ids)
            self._recent_n += len(ids)
        if self._recent_n >= RECENT_IDS // 2:
            self._recent_old, self._recent, self._recent_n = self._recent, {}, 0

    def close(self) -> None:
        """Flush everything queued, stop the writer thread and the OneID trigger."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._resolver.close()


_FROZEN = False


def _freeze_heap() -> None:
    """Move the objects alive now (the app, its modules) out of the cyclic GC's reach, once per process.

    A full (generation 2) collection walks every tracked object while holding the GIL: with the application
    loaded that took ~100-200 ms, stalling every ack in flight (the ingest benchmark's p99).  Frozen objects are
    still freed by reference counting; only cycles among them are no longer collected."""
    global _FROZEN
    if _FROZEN:
        return
    _FROZEN = True
    gc.collect()
    gc.freeze()


class _ResolveTrigger:
    """Runs OneID ``resolve_pending`` for brands with new observations, coalescing triggers, off the ack path."""

    def __init__(self, ctx: Context, interval: float, stats: WriterStats) -> None:
        self.ctx = ctx
        self.interval = interval
        self.stats = stats
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def trigger(self, brand_ids: set[str]) -> None:
        with self._lock:
            self._pending |= brand_ids
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._run, name="siyu-oneid-trigger", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        last = 0.0
        unflushed: set[str] = set()  # brands with deferred first/last-seen times
        while True:
            if not self._wake.wait(ONEID_SEEN_DELAY_SECONDS if unflushed else None):
                self._flush(unflushed)  # ingestion paused: write the deferred times now
                continue
            if self._stop:
                return
            pause = last + self.interval - time.monotonic()
            if pause > 0 and self._stopped.wait(pause):
                return
            self._wake.clear()
            with self._lock:
                brands, self._pending = self._pending, set()
            last = time.monotonic()
            for brand_id in sorted(brands):
                if self._stop:
                    return
                try:
                    t0 = time.perf_counter()
                    res = oneid.resolve_pending(self.ctx, brand_id, seen_delay=ONEID_SEEN_DELAY_SECONDS)
                    if res.mode == "rebuild":
                        self.stats.resolve_rebuilds += 1
                    took = time.perf_counter() - t0
                    self.stats.resolve_runs += 1
                    self.stats.resolve_seconds += took
                    self.stats.max_resolve_seconds = max(self.stats.max_resolve_seconds, took)
                    if oneid.seen_pending(self.ctx, brand_id):
                        unflushed.add(brand_id)
                except Exception:
                    self.stats.resolve_errors += 1
                    log.exception("OneID resolve_pending failed for brand %s", brand_id)

    def _flush(self, brands: set[str]) -> None:
        for brand_id in sorted(brands):
            try:
                oneid.flush_seen(self.ctx, brand_id)
            except Exception:
                log.exception("OneID flush_seen failed for brand %s", brand_id)
        brands.clear()

    def close(self) -> None:
        with self._lock:
            self._stop = True
            thread = self._thread
        self._stopped.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=60)


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


_START_LOCK = threading.Lock()
