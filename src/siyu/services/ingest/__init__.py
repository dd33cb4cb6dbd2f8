"""Segment-compatible ingestion: the request side (``request``), Arrow batches (``batches``), the durable log
(``log``), the log + warehouse writer (``writer``) and the OneID trigger (``resolve_trigger``).

A 200 means the events are on disk in the fsync'd ingest log; the loader puts them into DuckDB behind the acks
(``Submission.loaded`` / ``wait_loaded`` tell when), and ``recover_log`` loads what a crashed process left.
``siyu serve-ingest`` processes (``process``) only append to the log; the warehouse process's loader tails their
segments (``tail``).
"""

from siyu.services.ingest.request import (
    BatchRejected,
    PayloadTooLarge,
    RateLimited,
    Submission,
    decode_body,
    ingest,
    submit,
)
from siyu.services.ingest.writer import (
    WRITER_KEY,
    IngestWriter,
    WriterStats,
    get_writer,
    recover_log,
    start_loader,
    wait_loaded,
)

__all__ = [
    "WRITER_KEY",
    "BatchRejected",
    "IngestWriter",
    "PayloadTooLarge",
    "RateLimited",
    "Submission",
    "WriterStats",
    "decode_body",
    "get_writer",
    "ingest",
    "recover_log",
    "start_loader",
    "submit",
    "wait_loaded",
]
