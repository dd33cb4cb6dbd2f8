"""Write parsed import records to the warehouse in one transaction per chunk, idempotently.

Reference data (stores, guides, channels, channel_spend) is upserted on its natural key; orders are inserted
when new and updated when a later export changed their amount, status, channel, store, guide or lines; WeCom
relations are inserted only when new.  Only new records write their identity observation, so importing the same
file again changes nothing.  Bulk writes go through pyarrow tables, never per-row inserts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from siyu.domain.models import Identity
from siyu.services.imports.kinds import RowError

IDENTIFIERS_TYPE = pa.list_(pa.struct([("type", pa.string()), ("value", pa.string())]))


@dataclass
class Unit:
    """One record to write and the file rows (spreadsheet numbering) it came from."""

    rows: list[int]
    record: dict[str, Any]


@dataclass
class Source:
    """Where records come from: brand, observation source kind, file name (for source_ref), import time."""

    brand_id: str
    source_kind: str
    filename: str
    now: datetime

    def ref(self, rows: list[int], key: str | None = None) -> str:
        return f"{self.filename}#{key}" if key else f"{self.filename}#row{rows[0]}"


@dataclass
class WriteResult:
    ok: int = 0
    skipped: int = 0
    errors: list[tuple[int, RowError]] = field(default_factory=list)


def _ids(idents: list[Identity]) -> list[dict[str, str]]:
    return [{"type": i.type, "value": i.value} for i in idents]


def _traits(traits: dict[str, Any]) -> str:
    return json.dumps(traits, ensure_ascii=False, sort_keys=True, default=str)


def insert_observations(
    cur: duckdb.DuckDBPyConnection,
    source: Source,
    obs: list[tuple[str, datetime, list[Identity], dict[str, Any]]],
    skip_existing: bool = False,
) -> int:
    """Append identity observations ``(source_ref, observed_at, identifiers, traits)``; return how many landed.

    With ``skip_existing`` an observation equal to one already stored (same source_kind, source_ref and
    identifiers) is not written again.
    """
    if not obs:
        return 0
    table = pa.table(
        {
            "source_ref": pa.array([o[0] for o in obs], pa.string()),
            "observed_at": pa.array([o[1] for o in obs], pa.timestamp("us")),
            "identifiers": pa.array([_ids(o[2]) for o in obs], IDENTIFIERS_TYPE),
            "traits": pa.array([_traits(o[3]) for o in obs], pa.string()),
        }
    )
    cur.register("_obs_stage", table)
    try:
        where = ""
        if skip_existing:
            where = (
                "WHERE NOT EXISTS (SELECT 1 FROM identity_observations o WHERE o.brand_id = $brand "
                "AND o.source_kind = $kind AND o.source_ref = s.source_ref AND o.identifiers = s.identifiers)"
            )
        before = cur.execute("SELECT count(*) FROM identity_observations").fetchone()
        cur.execute(
            "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
            "SELECT $brand, $kind, s.source_ref, s.observed_at, s.identifiers, s.traits::JSON "
            f"FROM _obs_stage s {where}",
            {"brand": source.brand_id, "kind": source.source_kind},
        )
        after = cur.execute("SELECT count(*) FROM identity_observations").fetchone()
    finally:
        cur.unregister("_obs_stage")
    return int(after[0] if after else 0) - int(before[0] if before else 0)


def upsert(
    cur: duckdb.DuckDBPyConnection, table: str, brand_id: str, keys: list[str], cols: list[str], data: pa.Table
) -> tuple[int, int]:
    """Insert new rows and update changed ones on (brand_id, *keys); return (written, unchanged)."""
    cur.register("_up_stage", data)
    try:
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        same = " AND ".join(f"t.{c} IS NOT DISTINCT FROM s.{c}" for c in cols)
        row = cur.execute(
            f"SELECT count(*) FROM _up_stage s JOIN {table} t ON t.brand_id = $brand AND {on} AND {same}",
            {"brand": brand_id},
        ).fetchone()
        unchanged = int(row[0]) if row else 0
        all_cols = ["brand_id", *keys, *cols]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols)
        cur.execute(
            f"INSERT INTO {table} ({', '.join(all_cols)}) SELECT $brand, {', '.join('s.' + c for c in keys + cols)} "
            f"FROM _up_stage s WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table} t WHERE t.brand_id = $brand AND {on} AND {same}) "
            f"ON CONFLICT DO UPDATE SET {updates}",
            {"brand": brand_id},
        )
    finally:
        cur.unregister("_up_stage")
    return data.num_rows - unchanged, unchanged


def _last_wins(units: list[Unit], key: tuple[str, ...]) -> tuple[list[Unit], int]:
    """Keep the last unit per key (a file listing a key twice updates it); return (units, duplicates dropped)."""
    latest: dict[tuple[Any, ...], Unit] = {}
    for u in units:
        latest[tuple(u.record[k] for k in key)] = u
    return list(latest.values()), len(units) - len(latest)


def write_reference(
    cur: duckdb.DuckDBPyConnection, kind: str, units: list[Unit], source: Source, lookups: dict[str, Any]
) -> WriteResult:
    """stores / guides / channels / channel_spend: upsert on the natural key."""
    result = WriteResult()
    if kind == "channel_spend":
        resolved: list[Unit] = []
        for u in units:
            cid = lookups["channels"].get(u.record["channel"])
            if cid is None:
                result.errors.append(
                    (
                        u.rows[0],
                        RowError(
                            "channel",
                            u.record["channel"],
                            f"channel {u.record['channel']!r} is not known",
                            "import it first with `siyu import channels` (id or name must match)",
                        ),
                    )
                )
                continue
            resolved.append(Unit(u.rows, {**u.record, "channel_id": cid}))
        units = resolved
    spec = {
        "stores": ("stores", ["store_id"], ["name", "city"]),
        "guides": ("guides", ["guide_id"], ["name", "store_id", "wecom_userid", "active"]),
        "channels": ("channels", ["channel_id"], ["name", "kind"]),
        "channel_spend": ("channel_spend", ["channel_id", "day"], ["spend", "exposures"]),
    }[kind]
    table, keys, cols = spec
    units, dupes = _last_wins(units, tuple(keys))
    result.skipped += dupes
    if not units:
        return result
    columns: dict[str, Any] = {}
    for c in keys + cols:
        values = [u.record[c] for u in units]
        if c == "spend":
            columns[c] = pa.array(values, pa.decimal128(18, 2))
        elif c == "day":
            columns[c] = pa.array(values, pa.date32())
        elif c == "exposures":
            columns[c] = pa.array(values, pa.int64())
        elif c == "active":
            columns[c] = pa.array(values, pa.bool_())
        else:
            columns[c] = pa.array(values, pa.string())
    written, unchanged = upsert(cur, table, source.brand_id, keys, cols, pa.table(columns))
    result.ok += written
    result.skipped += unchanged
    return result


def write_customers(cur: duckdb.DuckDBPyConnection, units: list[Unit], source: Source) -> WriteResult:
    """Customers are evidence only: one observation per row (skipped when the same row was imported before)."""
    obs = [(source.ref(u.rows), source.now, u.record["identifiers"], u.record["traits"]) for u in units]
    landed = insert_observations(cur, source, obs, skip_existing=True)
    return WriteResult(ok=landed, skipped=len(units) - landed)


# order fields a later export may change (a refund, a late store or guide assignment); the customer and the
# order time identify the order and are kept
_MUTABLE_ORDER_FIELDS: tuple[tuple[str, str], ...] = (
    ("amount", "amount"),
    ("currency", "currency"),
    ("status", "status"),
    ("channel_id", "channel"),
    ("store_id", "store"),
    ("guide_id", "guide"),
)


def _mutable_columns(records: list[dict[str, Any]]) -> dict[str, pa.Array]:
    """The changeable order columns of ``records`` as Arrow arrays (amount as DECIMAL(18, 2))."""
    return {
        col: pa.array([r[key] for r in records], pa.decimal128(18, 2) if col == "amount" else pa.string())
        for col, key in _MUTABLE_ORDER_FIELDS
    }


def _order_state(record: dict[str, Any]) -> tuple[Any, ...]:
    return (*(record[key] for _, key in _MUTABLE_ORDER_FIELDS), _line_state(record))


def _line_state(record: dict[str, Any]) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        (
            x["sku"],
            x["name"],
            x["quantity"].quantize(Decimal("0.001")),
            x["unit_price"].quantize(Decimal("0.0001")),
            x["amount"],
        )
        for x in record["lines"]
    )


def write_orders(cur: duckdb.DuckDBPyConnection, units: list[Unit], source: Source) -> WriteResult:
    """Orders (one unit per order, with its lines): new orders are written with one observation; a stored order
    whose amount, status, channel, store, guide or lines changed is updated (lines replaced); unchanged ones are
    skipped, so importing the same file again changes nothing."""
    result = WriteResult()
    ids = [u.record["order_id"] for u in units]
    cur.register("_ids", pa.table({"order_id": pa.array(ids, pa.string())}))
    try:
        cols = ", ".join(f"o.{c}" for c, _ in _MUTABLE_ORDER_FIELDS)
        stored = {
            row[0]: row[1:]
            for row in cur.execute(
                f"SELECT o.order_id, {cols} FROM orders o JOIN _ids i USING (order_id) WHERE o.brand_id = ?",
                [source.brand_id],
            ).fetchall()
        }
        lines_of: dict[str, list[tuple[Any, ...]]] = {}
        for row in cur.execute(
            "SELECT l.order_id, l.sku, l.name, l.quantity, l.unit_price, l.amount FROM order_lines l "
            "JOIN _ids i USING (order_id) WHERE l.brand_id = ? ORDER BY l.order_id, l.line_no",
            [source.brand_id],
        ).fetchall():
            lines_of.setdefault(row[0], []).append(tuple(row[1:]))
    finally:
        cur.unregister("_ids")
    new = [u for u in units if u.record["order_id"] not in stored]
    changed = [
        u
        for u in units
        if u.record["order_id"] in stored
        and _order_state(u.record) != (*stored[u.record["order_id"]], tuple(lines_of.get(u.record["order_id"], [])))
    ]
    result.skipped = sum(len(u.rows) for u in units if u.record["order_id"] in stored) - sum(
        len(u.rows) for u in changed
    )
    if changed:
        _update_orders(cur, changed, source)
        result.ok += sum(len(u.rows) for u in changed)
    if not new:
        return result
    o = [u.record for u in new]
    orders = pa.table(
        {
            "order_id": pa.array([r["order_id"] for r in o], pa.string()),
            "customer_ref_type": pa.array([r["customer_ref"].type for r in o], pa.string()),
            "customer_ref": pa.array([r["customer_ref"].value for r in o], pa.string()),
            "ordered_at": pa.array([r["ordered_at"] for r in o], pa.timestamp("us")),
            **_mutable_columns(o),  # amount … guide_id, in the orders table's order
            "source_ref": pa.array([source.ref(u.rows, u.record["order_id"]) for u in new], pa.string()),
        }
    )
    line_table = _lines_table(o)
    cur.register("_orders", orders)
    cur.register("_lines", line_table)
    try:
        cur.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount, currency, "
            "status, channel_id, store_id, guide_id, source_ref) SELECT $1, * FROM _orders ON CONFLICT DO NOTHING",
            [source.brand_id],
        )
        cur.execute(
            "INSERT INTO order_lines (brand_id, order_id, line_no, sku, name, quantity, unit_price, amount) "
            "SELECT $1, * FROM _lines ON CONFLICT DO NOTHING",
            [source.brand_id],
        )
    finally:
        cur.unregister("_orders")
        cur.unregister("_lines")
    obs = []
    for u in new:
        r = u.record
        traits = {"name": r["name"]} if r.get("name") else {}
        obs.append((source.ref(u.rows, r["order_id"]), r["ordered_at"], r["identifiers"], traits))
    insert_observations(cur, source, obs)
    result.ok += sum(len(u.rows) for u in new)
    return result


def _lines_table(records: list[dict[str, Any]]) -> pa.Table:
    lines = [(r["order_id"], n, line) for r in records for n, line in enumerate(r["lines"], start=1)]
    return pa.table(
        {
            "order_id": pa.array([x[0] for x in lines], pa.string()),
            "line_no": pa.array([x[1] for x in lines], pa.int32()),
            "sku": pa.array([x[2]["sku"] for x in lines], pa.string()),
            "name": pa.array([x[2]["name"] for x in lines], pa.string()),
            "quantity": pa.array([x[2]["quantity"].quantize(Decimal("0.001")) for x in lines], pa.decimal128(18, 3)),
            "unit_price": pa.array(
                [x[2]["unit_price"].quantize(Decimal("0.0001")) for x in lines], pa.decimal128(18, 4)
            ),
            "amount": pa.array([x[2]["amount"] for x in lines], pa.decimal128(18, 2)),
        }
    )


def _update_orders(cur: duckdb.DuckDBPyConnection, units: list[Unit], source: Source) -> None:
    """Overwrite the changeable fields of stored orders and replace their lines."""
    o = [u.record for u in units]
    upd = pa.table(
        {
            "order_id": pa.array([r["order_id"] for r in o], pa.string()),
            **_mutable_columns(o),
        }
    )
    sets = ", ".join(f"{c} = u.{c}" for c, _ in _MUTABLE_ORDER_FIELDS)
    cur.register("_upd", upd)
    cur.register("_upd_lines", _lines_table(o))
    try:
        cur.execute(
            f"UPDATE orders SET {sets} FROM _upd u WHERE orders.brand_id = ? AND orders.order_id = u.order_id",
            [source.brand_id],
        )
        cur.execute(
            "DELETE FROM order_lines WHERE brand_id = ? AND order_id IN (SELECT order_id FROM _upd)",
            [source.brand_id],
        )
        cur.execute(
            "INSERT INTO order_lines (brand_id, order_id, line_no, sku, name, quantity, unit_price, amount) "
            "SELECT $1, * FROM _upd_lines",
            [source.brand_id],
        )
    finally:
        cur.unregister("_upd")
        cur.unregister("_upd_lines")


def tag_id_for(name: str) -> str:
    """A stable tag id for a tag name (WeCom corp tags are keyed by name on import)."""
    return "tag_" + hashlib.sha1(name.encode()).hexdigest()[:12]


def write_wecom_contacts(
    cur: duckdb.DuckDBPyConnection, units: list[Unit], source: Source, lookups: dict[str, Any]
) -> WriteResult:
    """WeCom contact export → relations (new ones only) + observations + tags on the external_userid."""
    result = WriteResult()
    ready: list[Unit] = []
    for u in units:
        r = u.record
        guide_id = lookups["guides"].get(r["follow_userid"])
        if guide_id is None:
            result.errors.append(
                (
                    u.rows[0],
                    RowError(
                        "follow_userid",
                        r["follow_userid"],
                        f"follow user {r['follow_userid']!r} is not a known guide's WeCom userid",
                        "import guides (with wecom_userid) first with `siyu import guides`",
                    ),
                )
            )
            continue
        ready.append(Unit(u.rows, {**r, "guide_id": guide_id}))
    ready, dupes = _last_wins(ready, ("external_userid", "guide_id"))
    result.skipped += dupes
    if not ready:
        return result
    keys = pa.table(
        {
            "external_userid": pa.array([u.record["external_userid"] for u in ready], pa.string()),
            "guide_id": pa.array([u.record["guide_id"] for u in ready], pa.string()),
        }
    )
    cur.register("_keys", keys)
    try:
        existing = set(
            cur.execute(
                "SELECT r.external_userid, r.guide_id FROM relations r JOIN _keys k USING (external_userid, guide_id) "
                "WHERE r.brand_id = ?",
                [source.brand_id],
            ).fetchall()
        )
    finally:
        cur.unregister("_keys")
    new = [u for u in ready if (u.record["external_userid"], u.record["guide_id"]) not in existing]
    result.skipped += len(ready) - len(new)
    # Tags follow the identifier; applied for every valid row (re-exports may carry new tags).
    tag_names = sorted({t for u in ready for t in u.record["tags"]})
    if tag_names:
        cur.register(
            "_tags",
            pa.table(
                {
                    "tag_id": pa.array([tag_id_for(t) for t in tag_names], pa.string()),
                    "name": pa.array(tag_names, pa.string()),
                }
            ),
        )
        tagged = [(u.record["external_userid"], tag_id_for(t)) for u in ready for t in u.record["tags"]]
        cur.register(
            "_idtags",
            pa.table(
                {
                    "id_value": pa.array([x[0] for x in tagged], pa.string()),
                    "tag_id": pa.array([x[1] for x in tagged], pa.string()),
                }
            ),
        )
        try:
            cur.execute(
                "INSERT INTO tags (brand_id, tag_id, name, source) SELECT $1, tag_id, name, 'manual' FROM _tags "
                "ON CONFLICT DO NOTHING",
                [source.brand_id],
            )
            cur.execute(
                "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
                "SELECT DISTINCT $1, 'external_userid', id_value, tag_id, 'manual', $2 FROM _idtags "
                "ON CONFLICT DO NOTHING",
                [source.brand_id, source.now],
            )
        finally:
            cur.unregister("_tags")
            cur.unregister("_idtags")
    if not new:
        return result
    rel = [u.record for u in new]
    relations = pa.table(
        {
            "external_userid": pa.array([r["external_userid"] for r in rel], pa.string()),
            "guide_id": pa.array([r["guide_id"] for r in rel], pa.string()),
            "added_at": pa.array([r["added_at"] or source.now for r in rel], pa.timestamp("us")),
            "add_way": pa.array([r["add_way"] for r in rel], pa.string()),
            "channel_id": pa.array(
                [lookups["channels"].get(r["state"], r["state"]) if r["state"] else None for r in rel], pa.string()
            ),
            "source_ref": pa.array([source.ref(u.rows) for u in new], pa.string()),
        }
    )
    cur.register("_rel", relations)
    try:
        cur.execute(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, add_way, state, channel_id, "
            "source_ref) SELECT $1, external_userid, guide_id, added_at, add_way, 'active', channel_id, source_ref "
            "FROM _rel ON CONFLICT DO NOTHING",
            [source.brand_id],
        )
    finally:
        cur.unregister("_rel")
    obs = []
    for u in new:
        r = u.record
        traits = dict(r["traits"])
        if r["state"]:
            traits["state"] = r["state"]
        obs.append((source.ref(u.rows), r["added_at"] or source.now, r["identifiers"], traits))
    insert_observations(cur, source, obs)
    result.ok = len(new)
    return result
