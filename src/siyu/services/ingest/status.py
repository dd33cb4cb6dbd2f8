"""What the ingest log holds and how far the warehouse loaded it (``GET /api/ingest/status``)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from siyu.services.context import Context
from siyu.services.ingest import log as ingest_log
from siyu.services.ingest.writer import WRITER_KEY, IngestWriter, log_dir


def log_status(ctx: Context, brand_id: str) -> dict[str, Any]:
    """The brand's stored events and, per segment in the log, its writer and the batches loaded so far."""
    loaded = dict(ctx.warehouse.fetch("SELECT segment, batches FROM ingest_log_loaded"))
    segments: list[dict[str, Any]] = []
    for path in ingest_log.segments(log_dir(ctx)):
        try:
            size = path.stat().st_size
        except OSError:  # deleted meanwhile
            continue
        pid = ingest_log.segment_pid(path.name)
        segments.append(
            {
                "segment": path.name,
                "writer_pid": pid,
                "own": pid == os.getpid(),
                "writer_alive": ingest_log.writer_alive(path.name),
                "bytes": size,
                "loaded_batches": int(loaded.get(path.name, 0)),
            }
        )
    events = ctx.warehouse.fetch("SELECT count(*) FROM events WHERE brand_id = ?", [brand_id])[0][0]
    writer = ctx.extras.get(WRITER_KEY)
    return {
        "events": int(events),
        "loader": ctx.settings.ingest_loader,
        "segments": segments,
        "writer": dataclasses.asdict(writer.stats) if isinstance(writer, IngestWriter) else None,
    }
