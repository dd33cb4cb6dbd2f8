"""WeCom corp tags → the warehouse (WeCom → siyu direction of the tag sync).

Corp tags become ``tags`` rows (tag_id = WeCom's id, stable across renames; source ``wecom``); the tags members put
on a customer become ``identifier_tags`` on the customer's external_userid (source ``wecom``: the union over the
members following them).  Reconciling a customer replaces their ``wecom`` tags and leaves other sources alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.models import TagGroup
from siyu.services.context import Context
from siyu.services.oneid import now

SOURCE = "wecom"


def write_corp_tags(cur: duckdb.DuckDBPyConnection, brand_id: str, groups: list[TagGroup]) -> tuple[int, int]:
    """Upsert every corp tag; tags WeCom no longer has are removed (with their assignments). (kept, removed)."""
    rows = [(t.id, t.name, g.name) for g in groups for t in g.tags]
    cur.register(
        "_wtags",
        pa.table(
            {"tag_id": [r[0] for r in rows], "name": [r[1] for r in rows], "grp": [r[2] for r in rows]},
            schema=pa.schema([("tag_id", pa.string()), ("name", pa.string()), ("grp", pa.string())]),
        ),
    )
    try:
        cur.execute(
            "INSERT INTO tags (brand_id, tag_id, name, source) SELECT ?, tag_id, name, 'wecom' FROM _wtags "
            "ON CONFLICT (brand_id, tag_id) DO UPDATE SET name = excluded.name",
            [brand_id],
        )
        gone = [
            r[0]
            for r in cur.execute(
                "SELECT tag_id FROM tags WHERE brand_id = ? AND source = 'wecom' "
                "AND tag_id NOT IN (SELECT tag_id FROM _wtags)",
                [brand_id],
            ).fetchall()
        ]
    finally:
        cur.unregister("_wtags")
    for tid in gone:
        cur.execute("DELETE FROM identifier_tags WHERE brand_id = ? AND tag_id = ?", [brand_id, tid])
        cur.execute("DELETE FROM tags WHERE brand_id = ? AND tag_id = ?", [brand_id, tid])
    return len(rows), len(gone)


def write_customer_tags(cur: duckdb.DuckDBPyConnection, brand_id: str, tags_of: dict[str, set[str]]) -> tuple[int, int]:
    """Make each external_userid's ``wecom`` tags equal ``tags_of[ext]`` (unknown tag ids are skipped).
    Returns (added, removed)."""
    pairs = [(ext, t) for ext, ts in tags_of.items() for t in sorted(ts)]
    cur.register(
        "_wct",
        pa.table(
            {"ext": [p[0] for p in pairs], "tag_id": [p[1] for p in pairs]},
            schema=pa.schema([("ext", pa.string()), ("tag_id", pa.string())]),
        ),
    )
    cur.register("_wcx", pa.table({"ext": pa.array(list(tags_of), pa.string())}))
    try:
        removed = cur.execute(
            "SELECT count(*) FROM identifier_tags i WHERE i.brand_id = $b AND i.id_type = 'external_userid' "
            "AND i.source = 'wecom' AND i.id_value IN (SELECT ext FROM _wcx) "
            "AND NOT EXISTS (SELECT 1 FROM _wct w WHERE w.ext = i.id_value AND w.tag_id = i.tag_id)",
            {"b": brand_id},
        ).fetchone()
        cur.execute(
            "DELETE FROM identifier_tags WHERE brand_id = $b AND id_type = 'external_userid' AND source = 'wecom' "
            "AND id_value IN (SELECT ext FROM _wcx) AND NOT EXISTS (SELECT 1 FROM _wct w "
            "WHERE w.ext = identifier_tags.id_value AND w.tag_id = identifier_tags.tag_id)",
            {"b": brand_id},
        )
        before = cur.execute("SELECT count(*) FROM identifier_tags WHERE brand_id = ?", [brand_id]).fetchone()
        cur.execute(
            "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
            "SELECT $b, 'external_userid', w.ext, w.tag_id, 'wecom', $now FROM _wct w "
            "JOIN tags t ON t.brand_id = $b AND t.tag_id = w.tag_id ON CONFLICT DO NOTHING",
            {"b": brand_id, "now": now()},
        )
        after = cur.execute("SELECT count(*) FROM identifier_tags WHERE brand_id = ?", [brand_id]).fetchone()
    finally:
        cur.unregister("_wct")
        cur.unregister("_wcx")
    return (int(after[0]) - int(before[0]) if after and before else 0), int(removed[0]) if removed else 0


def set_customer_tags(cur: duckdb.DuckDBPyConnection, brand_id: str, ext: str, tag_ids: set[str]) -> tuple[int, int]:
    """One customer's ``wecom`` tags := ``tag_ids`` (known tags only); the few-statement path for callbacks."""
    have = {
        r[0]
        for r in cur.execute(
            "SELECT tag_id FROM identifier_tags WHERE brand_id = ? AND id_type = 'external_userid' AND id_value = ? "
            "AND source = 'wecom'",
            [brand_id, ext],
        ).fetchall()
    }
    drop, add = have - tag_ids, tag_ids - have
    if drop:
        cur.execute(
            "DELETE FROM identifier_tags WHERE brand_id = ? AND id_type = 'external_userid' AND id_value = ? "
            "AND source = 'wecom' AND list_contains(?, tag_id)",
            [brand_id, ext, sorted(drop)],
        )
    added = 0
    if add:
        known = [
            r[0]
            for r in cur.execute(
                "SELECT tag_id FROM tags WHERE brand_id = ? AND list_contains(?, tag_id)", [brand_id, sorted(add)]
            ).fetchall()
        ]
        if known:
            cur.executemany(
                "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
                "VALUES (?, 'external_userid', ?, ?, 'wecom', ?) ON CONFLICT DO NOTHING",
                [[brand_id, ext, t, now()] for t in known],
            )
        added = len(known)
    return added, len(drop)


def sync_corp_tags(ctx: Context, brand_id: str, client: WeComClient) -> tuple[int, int]:
    """Fetch the corp tag list and write it (kept, removed)."""
    groups = client.get_corp_tags()
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        return write_corp_tags(cur, brand_id, groups)


def union_tags(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[str, set[str]]:
    """external_userid → the union of the tag ids every member put on them."""
    out: dict[str, set[str]] = {}
    for ext, tags in pairs:
        out.setdefault(ext, set()).update(tags)
    return out
