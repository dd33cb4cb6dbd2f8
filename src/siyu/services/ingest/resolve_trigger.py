"""Runs OneID for brands with newly loaded observations, off the ack path, coalescing triggers."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from siyu.services import oneid
from siyu.services.context import Context

if TYPE_CHECKING:
    from siyu.services.ingest.writer import WriterStats

log = logging.getLogger(__name__)

# OneID runs at most this often for new observations (bigger, fewer runs cost less CPU next to ingestion)
ONEID_INTERVAL_SECONDS = 3.0
# re-seen identifiers' first/last-seen times are written behind (DuckDB row updates are the costly part of a run):
# at most this old while ingestion goes on, and flushed this long after it pauses
ONEID_SEEN_DELAY_SECONDS = 5.0


class ResolveTrigger:
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
