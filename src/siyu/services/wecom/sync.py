"""Full contact sync: every member's customers from WeCom → relations + OneID observations.

``get_follow_user_list`` → ``batch/get_by_user`` (100 members per call, pages of 100) for the members that are
known guides (``guides.wecom_userid``; others are reported and skipped).  Relations present in WeCom become
active (new ones inserted with added_at = createtime, add_way, channel from state); active relations of the
synced guides that WeCom no longer lists are marked lost (``lost_by = 'sync'``: ended while no callback reached
us).  Corp tags are synced first, then each customer's tags (union over the members) replace their ``wecom``
tags.  Each contact's identifiers (external_userid, unionid) are observed once (source_ref ``wecom-sync:<id>``).
Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from siyu.connectors.wecom.client import WeComClient
from siyu.services.context import Context
from siyu.services.oneid import Observation, add_observations, now
from siyu.services.wecom import relations as rel
from siyu.services.wecom import tags
from siyu.services.wecom.config import client_for, get_config

Progress = Callable[[str], None]
FETCH_WORKERS = 4  # member batches fetched at once (latency hidden; the shared limiter keeps WeCom's rate)


@dataclass
class SyncStats:
    """What a sync saw and changed."""

    members: int = 0
    guides_synced: int = 0
    unknown_members: list[str] = field(default_factory=list)
    records: int = 0
    relations_new: int = 0
    relations_reactivated: int = 0
    relations_lost: int = 0
    tags: int = 0
    customer_tags_added: int = 0
    customer_tags_removed: int = 0
    observations: int = 0
    api_calls: int = 0
    rate_wait_seconds: float = 0.0
    fetch_seconds: float = 0.0
    write_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_SCHEMA = pa.schema(
    [
        ("external_userid", pa.string()),
        ("guide_id", pa.string()),
        ("added_at", pa.timestamp("us")),
        ("add_way", pa.string()),
        ("state", pa.string()),
        ("unionid", pa.string()),
        ("name", pa.string()),
        ("tag_ids", pa.list_(pa.string())),
    ]
)


def _guides(ctx: Context, brand_id: str) -> dict[str, str]:
    rows = ctx.warehouse.fetch(
        "SELECT wecom_userid, guide_id FROM guides WHERE brand_id = ? AND wecom_userid IS NOT NULL", [brand_id]
    )
    return {str(u): str(g) for u, g in rows}


def fetch(
    client: WeComClient, guides: dict[str, str], stats: SyncStats, progress: Progress
) -> tuple[pa.Table, list[str]]:
    """Every (contact, known guide) record from WeCom as an Arrow table, and the guide_ids synced."""
    members = client.get_follow_user_list()
    stats.members = len(members)
    stats.unknown_members = sorted(m for m in members if m not in guides)
    synced = [m for m in members if m in guides]
    stats.guides_synced = len(synced)
    cols: dict[str, list[Any]] = {name: [] for name in _SCHEMA.names}
    for r in client.iter_contacts_parallel(synced, workers=FETCH_WORKERS):
        cols["external_userid"].append(r.contact.external_userid)
        cols["guide_id"].append(guides[r.follow.userid])
        cols["added_at"].append(rel.utc(r.follow.createtime) if r.follow.createtime else None)
        cols["add_way"].append(str(r.follow.add_way))
        cols["state"].append(r.follow.state or None)
        cols["unionid"].append(r.contact.unionid or None)
        cols["name"].append(r.contact.name or None)
        cols["tag_ids"].append(list(r.follow.tag_ids))
        if len(cols["guide_id"]) % 10_000 == 0:
            progress(f"{len(cols['guide_id'])} contacts fetched")
    stats.records = len(cols["guide_id"])
    return pa.table(cols, schema=_SCHEMA), sorted({guides[m] for m in synced})


_UPSERT = """
INSERT INTO relations (brand_id, external_userid, guide_id, added_at, add_way, state, channel_id, source_ref)
SELECT $brand, w.external_userid, w.guide_id, coalesce(w.added_at, $now), w.add_way, 'active',
       coalesce(c1.channel_id, c2.channel_id, w.state), 'wecom-sync'
FROM _wsync w
LEFT JOIN channels c1 ON c1.brand_id = $brand AND c1.channel_id = w.state
LEFT JOIN (SELECT name, min(channel_id) AS channel_id FROM channels WHERE brand_id = $brand GROUP BY name) c2
       ON c2.name = w.state
ON CONFLICT (brand_id, external_userid, guide_id) DO UPDATE SET
    added_at = CASE WHEN relations.state = 'lost' THEN excluded.added_at ELSE relations.added_at END,
    add_way = coalesce(relations.add_way, excluded.add_way),
    channel_id = coalesce(relations.channel_id, excluded.channel_id),
    state = 'active', lost_at = NULL, lost_by = NULL
"""

_LOSE = """
UPDATE relations SET state = 'lost', lost_at = $now, lost_by = 'sync'
WHERE brand_id = $brand AND state = 'active' AND guide_id IN (SELECT guide_id FROM _wsync_guides)
  AND NOT EXISTS (SELECT 1 FROM _wsync w WHERE w.external_userid = relations.external_userid
                  AND w.guide_id = relations.guide_id)
"""


def write(ctx: Context, brand_id: str, table: pa.Table, synced_guides: list[str], stats: SyncStats) -> None:
    """Apply the fetched records in one warehouse transaction."""
    ts = now()
    params = {"brand": brand_id, "now": ts}
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.register("_wsync", table)
        cur.register("_wsync_guides", pa.table({"guide_id": pa.array(synced_guides, pa.string())}))
        try:
            before = cur.execute(
                "SELECT count(*) FILTER (WHERE r.state IS NULL), count(*) FILTER (WHERE r.state = 'lost') "
                "FROM _wsync w LEFT JOIN relations r ON r.brand_id = $brand AND r.external_userid = w.external_userid "
                "AND r.guide_id = w.guide_id",
                {"brand": brand_id},
            ).fetchone()
            stats.relations_new, stats.relations_reactivated = (int(before[0]), int(before[1])) if before else (0, 0)
            cur.execute(_UPSERT, params)
            lost = cur.execute(
                "SELECT count(*) FROM relations WHERE brand_id = $brand AND state = 'active' "
                "AND guide_id IN (SELECT guide_id FROM _wsync_guides) AND NOT EXISTS (SELECT 1 FROM _wsync w "
                "WHERE w.external_userid = relations.external_userid AND w.guide_id = relations.guide_id)",
                {"brand": brand_id},
            ).fetchone()
            stats.relations_lost = int(lost[0]) if lost else 0
            cur.execute(_LOSE, params)
            fresh = cur.execute(
                "SELECT w.external_userid, any_value(w.unionid), any_value(w.name), min(w.added_at) FROM _wsync w "
                "WHERE NOT EXISTS (SELECT 1 FROM identity_observations o WHERE o.brand_id = $brand "
                "AND o.source_kind = 'wecom' AND o.source_ref = 'wecom-sync:' || w.external_userid) GROUP BY 1",
                {"brand": brand_id},
            ).fetchall()
        finally:
            cur.unregister("_wsync")
            cur.unregister("_wsync_guides")
        observations = [
            Observation(
                rel.SOURCE_KIND,
                f"wecom-sync:{ext}",
                added or ts,
                rel.identities(rel.NewRelation(ext, "", ts, None, "", unionid or "")),
                {"name": name} if name else {},
            )
            for ext, unionid, name, added in fresh
        ]
        stats.observations = add_observations(cur, brand_id, observations)
        ext, tag_lists = table.column("external_userid").to_pylist(), table.column("tag_ids").to_pylist()
        added, removed = tags.write_customer_tags(cur, brand_id, tags.union_tags(zip(ext, tag_lists, strict=True)))
        stats.customer_tags_added, stats.customer_tags_removed = added, removed


def sync_contacts(
    ctx: Context, brand_id: str, client: WeComClient | None = None, progress: Progress | None = None
) -> SyncStats:
    """Fetch every contact of the brand's guides from WeCom and bring relations and identities up to date."""
    say = progress or (lambda _m: None)
    own = client is None
    client = client or client_for(get_config(ctx, brand_id))
    stats = SyncStats()
    try:
        guides = _guides(ctx, brand_id)
        stats.tags = tags.sync_corp_tags(ctx, brand_id, client)[0]  # first, so customers' tag ids are known
        t0 = time.perf_counter()
        waited0, calls0, backoff0 = client.t.limiter.waited, client.t.stats["calls"], client.t.stats["backoff_seconds"]
        table, synced = fetch(client, guides, stats, say)
        stats.fetch_seconds = round(time.perf_counter() - t0, 3)
        stats.api_calls = int(client.t.stats["calls"] - calls0)
        waited = client.t.limiter.waited - waited0 + client.t.stats["backoff_seconds"] - backoff0
        stats.rate_wait_seconds = round(waited, 3)
        say(f"{stats.records} contact records fetched; writing")
        t1 = time.perf_counter()
        write(ctx, brand_id, table, synced, stats)
        stats.write_seconds = round(time.perf_counter() - t1, 3)
    finally:
        if own:
            client.close()
    if stats.observations:
        from siyu.services import oneid

        oneid.resolve_pending(ctx, brand_id)
    return stats
