"""Validated Segment events as Arrow record batches: the ingest log's and the warehouse loader's one shape.

A batch holds the ``events`` columns plus the OneID observation of each event (``obs_identifiers`` is NULL for
events that reveal no linked identifiers).  Batches are built on the request's thread, column by column.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from siyu.domain.segment import EventRow

_TS = pa.timestamp("us")
IDS_TYPE = pa.list_(pa.struct([("type", pa.string()), ("value", pa.string())]))
EVENT_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
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
    ("timestamp", _TS),
    ("original_timestamp", _TS),
    ("sent_at", _TS),
    ("received_at", _TS),
    ("write_key_id", pa.string()),
)
LOG_SCHEMA = pa.schema([*EVENT_FIELDS, ("obs_identifiers", IDS_TYPE), ("obs_traits", pa.string())])
EVENT_COLUMNS: tuple[str, ...] = tuple(name for name, _ in EVENT_FIELDS)


def _col(values: list[Any], typ: pa.DataType = pa.string()) -> pa.Array:
    return pa.array(values, type=typ)


def _times(values: list[int | None]) -> pa.Array:
    return pa.array(values, type=pa.int64()).view(_TS)


def build_batch(brand_id: str, key_id: str, rows: list[EventRow]) -> pa.RecordBatch:
    """One request's validated rows as a record batch of ``LOG_SCHEMA``."""
    n = len(rows)
    obs = [r.observation for r in rows]
    return pa.RecordBatch.from_arrays(
        [
            _col([brand_id] * n),
            _col([r.message_id for r in rows]),
            _col([r.type for r in rows]),
            _col([r.event for r in rows]),
            _col([r.name for r in rows]),
            _col([r.user_id for r in rows]),
            _col([r.anonymous_id for r in rows]),
            _col([r.group_id for r in rows]),
            _col([r.previous_id for r in rows]),
            _col([r.properties for r in rows]),
            _col([r.traits for r in rows]),
            _col([r.context for r in rows]),
            _times([r.timestamp for r in rows]),
            _times([r.original_timestamp for r in rows]),
            _times([r.sent_at for r in rows]),
            _times([r.received_at for r in rows]),
            _col([key_id] * n),
            _col([o.identifiers if o is not None else None for o in obs], IDS_TYPE),
            _col([o.traits if o is not None else None for o in obs]),
        ],
        schema=LOG_SCHEMA,
    )
