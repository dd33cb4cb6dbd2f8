"""The request side of Segment-compatible ingestion: decode, authenticate, rate-limit, validate, queue.

``submit`` runs on the request's thread and returns a ``Submission`` whose ``future`` completes when the events
are durable (in the fsync'd ingest log) and whose ``loaded`` completes when they are in the warehouse.
"""

from __future__ import annotations

import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from siyu.domain.segment import EventRow, Limits, MessageRejected, parse_time, to_micros, validate_message
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.ingest.writer import get_writer
from siyu.services.rate_limit import TokenBucket
from siyu.services.write_keys import authenticate_key

LIMITER_KEY = "ingest_rate_limiter"


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
    future: Future[None]  # durable: written and fsync'd to the ingest log (what a 200 waits for)
    loaded: Future[None]  # visible: committed to the warehouse

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


def rate_share(ctx: Context) -> tuple[float, int]:
    """This process's share of the per-write-key limit: (requests/s, burst).

    Each of the ``ingest_processes`` processes behind the proxy enforces 1/N of the advertised rate with its own
    token bucket, so N processes together never allow more than the advertised rate (a client whose requests all
    reach one process gets 1/N of it: spread requests over several connections)."""
    s = ctx.settings
    n = max(1, s.ingest_processes)
    return s.rate_limit_per_second / n, max(1, s.rate_limit_burst // n)


def _limiter(ctx: Context) -> TokenBucket:
    lim = ctx.extras.get(LIMITER_KEY)
    if not isinstance(lim, TokenBucket):
        lim = ctx.extras.setdefault(LIMITER_KEY, TokenBucket(*rate_share(ctx)))
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
        share = (
            f" ({rate_share(ctx)[0]:g}/s in each of {s.ingest_processes} ingest processes)"
            if s.ingest_processes > 1
            else ""
        )
        raise RateLimited(
            f"rate limit of {s.rate_limit_per_second:g} requests/s for this write key exceeded{share}; "
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
        # a body within the per-event limit bounds each message's size: no need to measure them one by one
        bound = len(body) if len(body) <= limits.max_event_bytes else None
        for i, msg in enumerate(batch):
            try:
                rows.append(validate_message(msg, None, limits, received_at, batch_sent_at, batch_context, bound))
            except MessageRejected as exc:
                rejected.append(_rejection(i, msg, exc))
        if rejected and not rows:
            first = rejected[0]
            raise BatchRejected(
                f"no event in the batch is valid; e.g. batch[{first['index']}].{first['field']}: {first['reason']}",
                rejected,
            )
    durable, loaded = get_writer(ctx).submit(auth.brand_id, auth.key_id, rows)
    return Submission(auth.brand_id, len(rows), rejected, durable, loaded)


def ingest(
    ctx: Context, body: bytes, type_: str | None, basic_key: str | None = None, timeout: float = 60.0
) -> Submission:
    """``submit`` and wait until the events are in the warehouse (blocking form for CLI, workers and tests)."""
    sub = submit(ctx, body, type_, basic_key)
    sub.loaded.result(timeout)
    return sub
