"""Full contact sync: every member's customers from WeCom → relations + OneID observations.

``get_follow_user_list`` → ``batch/get_by_user`` (up to 100 members per call, pages of 100: ``member_lists``) for the
members that are known guides (``guides.wecom_userid``; others are reported and skipped).  Producer threads page
through WeCom (the first requests leave as soon as the member list is known; the corp tags sync alongside) while
the caller writes what has arrived, in transactions of ``WRITE_EVERY`` records: relations (present in WeCom →
active; new ones inserted with added_at = createtime, add_way, channel from state) and each new contact's first
observation (external_userid, unionid; source_ref ``wecom-sync:<id>``, built in SQL).  After the last page, one
small transaction: the last records; relations of the synced guides that were active before the sync and that WeCom
no longer lists are marked lost (``lost_by = 'sync'``: ended while no callback reached us); a contact met in several
transactions gets its earliest time as observation time; each customer's tags (union over the members) replace
their ``wecom`` tags.  A failed fetch marks nothing lost (what it had written are true facts; the next sync
completes them).  OneID resolves the new observations in the background afterwards
(``SyncStats.wait_identities``).  Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from siyu.connectors.wecom.client import BATCH_LIMIT, BATCH_USERS, WeComClient
from siyu.connectors.wecom.models import ContactRecord
from siyu.services import oneid
from siyu.services.context import Context
from siyu.services.oneid import Observation, add_observation_table, add_observations, now
from siyu.services.wecom import relations as rel
from siyu.services.wecom import tags
from siyu.services.wecom.config import client_for, get_config

Progress = Callable[[str], None]
# pagers at once (each over up to 100 members): enough requests waiting for the limiter that no pacing slot passes
# unused while others are in flight — at WeCom's 10,000/min a slot opens every 6 ms, so 16 pagers cover 96 ms of
# round trip (a call from outside WeCom's network, or a loaded machine); the shared limiter keeps WeCom's rate
FETCH_WORKERS = 16
log = logging.getLogger(__name__)


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
    fetch_seconds: float = 0.0  # from the member list to the last page
    write_seconds: float = 0.0  # in warehouse writes (mostly while pages were still arriving)
    tail_seconds: float = 0.0  # after the last page: the final write
    _resolution: _Resolution | None = field(default=None, repr=False, compare=False)

    @property
    def identities_resolving(self) -> bool:
        """True while OneID is still resolving the new contacts' identities."""
        return self._resolution is not None and self._resolution.thread.is_alive()

    def wait_identities(self, timeout: float | None = None) -> bool:
        """Wait until OneID has resolved this sync's new observations; False on timeout."""
        return self._resolution is None or self._resolution.close(timeout)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")} | {
            "identities_resolving": self.identities_resolving
        }


_SCHEMA = pa.schema(
    [
        ("external_userid", pa.string()),
        ("guide_id", pa.string()),
        ("added_at", pa.timestamp("us")),
        ("add_way", pa.string()),
        ("state", pa.string()),
        ("unionid", pa.string()),
        ("name", pa.string()),
    ]
)
WRITE_EVERY = 5_000  # relation records upserted per warehouse transaction while pages keep arriving


def _guides(ctx: Context, brand_id: str) -> dict[str, str]:
    rows = ctx.warehouse.fetch(
        "SELECT wecom_userid, guide_id FROM guides WHERE brand_id = ? AND wecom_userid IS NOT NULL", [brand_id]
    )
    return {str(u): str(g) for u, g in rows}


def member_lists(userids: list[str], workers: int = FETCH_WORKERS) -> list[list[str]]:
    """The ``userid_list`` of each pager: 100 members (WeCom's maximum: the fewest calls), fewer when that would
    leave pagers idle (under 1,600 members: ``workers`` lists, costing at most one partial page more per list)."""
    size = max(1, min(BATCH_USERS, -(-len(userids) // max(1, workers))))
    return [userids[i : i + size] for i in range(0, len(userids), size)]


class Pages:
    """Every page of ``batch/get_by_user`` for these members (``member_lists``, 100 records a page), fetched by
    producer threads (one pager per list, ``workers`` at once) that start at once — the first requests are in
    flight while the caller still prepares — and consumed by iterating, in completion order.  An API error ends
    the iteration with that error; ``close`` (or the iteration's end) stops the pagers."""

    def __init__(self, client: WeComClient, userids: list[str], workers: int = FETCH_WORKERS) -> None:
        self.client = client
        self.chunks = member_lists(userids, workers)
        self.q: queue.SimpleQueue[list[ContactRecord] | BaseException | None] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.workers = max(1, min(workers, len(self.chunks)))
        self.producer = threading.Thread(target=self._produce, name="wecom-sync-producer", daemon=True)
        if self.chunks:
            self.producer.start()

    def _pager(self, chunk: list[str]) -> None:
        cursor = ""
        while not self.stop.is_set():
            rows, cursor = self.client.batch_get_by_user(chunk, cursor, BATCH_LIMIT)
            self.q.put(rows)
            if not cursor:
                return

    def _produce(self) -> None:
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="wecom-sync") as ex:
            futures = [ex.submit(self._pager, c) for c in self.chunks]
            for f in futures:
                err = f.exception()
                if err is not None:
                    self.stop.set()
                    self.q.put(err)
                    return
        self.q.put(None)

    def __iter__(self) -> Iterator[list[ContactRecord]]:
        if not self.chunks:
            return
        try:
            while (item := self.q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the pagers (each finishes its call in flight) and wait for them."""
        self.stop.set()
        if self.producer.is_alive():
            self.producer.join()


def pages(client: WeComClient, userids: list[str], workers: int = FETCH_WORKERS) -> Pages:
    """``Pages`` of these members, already being fetched."""
    return Pages(client, userids, workers)


class _Writer:
    """Writes fetched pages while later pages are still being fetched, in transactions of ``WRITE_EVERY``
    records: relations, and each new contact's first observation.  ``finish`` (after the last page) is small: the
    last records, the losses (known relations of the synced guides WeCom did not list), and the customers' tags."""

    def __init__(self, ctx: Context, brand_id: str, guides: dict[str, str], stats: SyncStats) -> None:
        self.ctx, self.brand_id, self.guides, self.stats = ctx, brand_id, guides, stats
        self.ts = now()
        self.cols: dict[str, list[Any]] = {name: [] for name in _SCHEMA.names}
        self.written: list[pa.Table] = []  # every record written (for first-seen times across transactions)
        self.tag_exts: list[str] = []  # (customer, tag id) pairs as two flat lists (few objects for the GC)
        self.tag_ids: list[str] = []
        self.seconds = 0.0
        # the brand's relations before this sync: new / re-added are counted and losses found without joins
        self.before: dict[tuple[str, str], str] = {
            (str(e), str(g)): str(st)
            for e, g, st in ctx.warehouse.fetch(
                "SELECT external_userid, guide_id, state FROM relations WHERE brand_id = ?", [brand_id]
            )
        }
        # contacts a sync observed before: only the others get a first observation (no anti-join per transaction)
        self.known: set[str] = {
            str(r[0]).removeprefix("wecom-sync:")
            for r in ctx.warehouse.fetch(
                "SELECT source_ref FROM identity_observations WHERE brand_id = ? AND source_kind = ? "
                "AND starts_with(source_ref, 'wecom-sync:')",
                [brand_id, rel.SOURCE_KIND],
            )
        }
        self.seen: set[tuple[str, str]] = set()
        self.flushed_exts: set[str] = set()
        self.repeated_exts: set[str] = set()  # contacts met again in a later transaction (several guides)
        self.observed_exts: set[str] = set()  # contacts this sync observed first

    def add(self, page: list[ContactRecord]) -> None:
        cols, tag_exts, tag_ids = self.cols, self.tag_exts, self.tag_ids
        for r in page:
            ext = r.contact.external_userid
            cols["external_userid"].append(ext)
            cols["guide_id"].append(self.guides[r.follow.userid])
            cols["added_at"].append(r.follow.createtime or None)
            cols["add_way"].append(str(r.follow.add_way))
            cols["state"].append(r.follow.state or None)
            cols["unionid"].append(r.contact.unionid or None)
            cols["name"].append(r.contact.name or None)
            for t in r.follow.tag_ids:
                tag_exts.append(ext)
                tag_ids.append(t)
        self.stats.records += len(page)
        if len(cols["guide_id"]) >= WRITE_EVERY:
            self.flush()

    def _count(self, exts: list[str], guide_ids: list[str]) -> tuple[list[bool], list[bool]]:
        """Count new and re-added relations; returns (relation existed, contact is new to the sync's
        observations) per record."""
        before, seen, stats, known = self.before, self.seen, self.stats, self.known
        existed = []
        for key in zip(exts, guide_ids, strict=True):
            if key in seen:
                existed.append(True)
                continue
            seen.add(key)
            state = before.get(key)
            existed.append(state is not None)
            if state is None:
                stats.relations_new += 1
            elif state == "lost":
                stats.relations_reactivated += 1
        unseen = [e not in known for e in exts]
        chunk = set(exts)
        known |= chunk
        self.repeated_exts |= chunk & self.flushed_exts
        self.flushed_exts |= chunk
        return existed, unseen

    def flush(self) -> None:
        """Upsert the gathered relation records and observe the new contacts among them (one short transaction)."""
        if not self.cols["guide_id"]:
            return
        t0 = time.perf_counter()
        cols = {**self.cols, "added_at": pa.array(self.cols["added_at"], pa.int64()).cast(pa.timestamp("s"))}
        table = pa.table(cols, schema=_SCHEMA.set(2, pa.field("added_at", pa.timestamp("s")))).cast(_SCHEMA)
        self.cols = {name: [] for name in _SCHEMA.names}
        existed, unseen = self._count(cols["external_userid"], cols["guide_id"])
        mask = pa.array(existed, pa.bool_())
        # new relations go in with a plain insert (no conflict handling to pay for); known ones are upserted
        parts = [(_INSERT, table.filter(pc.invert(mask))), (_UPSERT, table.filter(mask))]
        new_contacts = table.filter(pa.array(unseen, pa.bool_()))
        params = {"brand": self.brand_id, "now": self.ts}
        for attempt in range(2):
            try:
                with self.ctx.warehouse.write_lock, self.ctx.warehouse.transaction() as cur:
                    for sql, rows in parts:
                        if rows.num_rows:
                            cur.register("_wsync", rows)
                            try:
                                cur.execute(sql, params)
                            finally:
                                cur.unregister("_wsync")
                    cur.register("_wsync", new_contacts)
                    try:
                        got = cur.execute(_FRESH, {**params, "kind": rel.SOURCE_KIND}).arrow()
                        fresh = got if isinstance(got, pa.Table) else got.read_all()  # duckdb ≥ 1.4: a stream
                    finally:
                        cur.unregister("_wsync")
                    self._observe(cur, fresh)
                break
            except duckdb.ConstraintException:
                if attempt:
                    raise
                parts = [(_UPSERT, table)]  # a callback added one of the "new" relations meanwhile: upsert all
        self.written.append(table)
        self.seconds += time.perf_counter() - t0

    def _observe(self, cur: Any, fresh: pa.Table) -> None:
        """Write the first observations of new contacts (canonical ones in bulk, the rest normalised per row)."""
        stats, brand = self.stats, self.brand_id
        ok = fresh.column("canonical")
        stats.observations += add_observation_table(cur, fresh.filter(ok).drop(["canonical", "unionid"]))
        odd = fresh.filter(pc.invert(ok)).to_pylist()  # identifiers to normalise (or invalid)
        observations = [
            Observation(
                rel.SOURCE_KIND,
                o["source_ref"],
                o["observed_at"],
                rel.identities(
                    rel.NewRelation(
                        o["source_ref"].removeprefix("wecom-sync:"), "", now(), None, "", o["unionid"] or ""
                    )
                ),
                orjson.loads(o["traits"]) if o["traits"] else {},
            )
            for o in odd
        ]
        stats.observations += add_observations(cur, brand, observations)
        self.observed_exts.update(r.removeprefix("wecom-sync:") for r in fresh.column("source_ref").to_pylist())

    def finish(self, synced_guides: list[str]) -> None:
        """The rest in one transaction: the last records, losses, first-seen times of contacts met in several
        transactions, customers' tags."""
        self.flush()
        t0 = time.perf_counter()
        stats, brand = self.stats, self.brand_id
        params = {"brand": brand, "now": self.ts}
        synced = set(synced_guides)
        lost = [k for k, st in self.before.items() if st == "active" and k[1] in synced and k not in self.seen]
        again = self.repeated_exts & self.observed_exts
        with self.ctx.warehouse.write_lock, self.ctx.warehouse.transaction() as cur:
            if lost:
                cur.register("_wlost", pa.table({"ext": [k[0] for k in lost], "guide_id": [k[1] for k in lost]}))
                try:
                    n = cur.execute(_LOSE, params).fetchone()
                    stats.relations_lost = int(n[0]) if n else 0
                finally:
                    cur.unregister("_wlost")
            if again:  # observed at the earliest of all its relations, not only those of its first transaction
                records = pa.concat_tables(self.written)
                mine = records.filter(pc.is_in(records.column("external_userid"), pa.array(sorted(again))))
                first = mine.group_by("external_userid").aggregate([("added_at", "min")])
                cur.register("_wfirst", first)
                try:
                    cur.execute(_FIRST_SEEN, {"brand": brand, "kind": rel.SOURCE_KIND})
                finally:
                    cur.unregister("_wfirst")
            added, removed = tags.write_customer_tags(cur, brand, self.flushed_exts, self.tag_exts, self.tag_ids)
            stats.customer_tags_added, stats.customer_tags_removed = added, removed
        self.seconds += time.perf_counter() - t0


# Each new contact observed once (source_ref wecom-sync:<external_userid>, at its earliest createtime), built in
# SQL; identifiers that are already canonical (what ``siyu.domain.identity.normalize`` returns unchanged: no
# surrounding blanks, 1..256 characters, not a null word) skip the per-row normalisation.
_CANON = "(regexp_full_match({v}, '[A-Za-z0-9_-]{{1,256}}') AND lower({v}) NOT IN ('nan', 'none', 'null'))"
_FRESH = f"""
SELECT $brand AS brand_id, $kind AS source_kind, 'wecom-sync:' || ext AS source_ref,
       coalesce(first_at, $now) AS observed_at,
       CASE WHEN unionid IS NULL THEN [{{'type': 'external_userid', 'value': ext}}]
            ELSE [{{'type': 'external_userid', 'value': ext}}, {{'type': 'unionid', 'value': unionid}}] END
         AS identifiers,
       CASE WHEN name IS NOT NULL THEN CAST(json_object('name', name) AS VARCHAR) END AS traits,
       unionid, {_CANON.format(v="ext")} AND (unionid IS NULL OR {_CANON.format(v="unionid")}) AS canonical
FROM (SELECT external_userid AS ext, max(unionid) AS unionid, max(name) AS name, min(added_at) AS first_at
      FROM _wsync GROUP BY 1) c
ORDER BY ext
"""

_INSERT = """
INSERT INTO relations (brand_id, external_userid, guide_id, added_at, add_way, state, channel_id, source_ref)
SELECT $brand, w.external_userid, w.guide_id, coalesce(w.added_at, $now), w.add_way, 'active',
       coalesce(c1.channel_id, c2.channel_id, w.state), 'wecom-sync'
FROM _wsync w
LEFT JOIN channels c1 ON c1.brand_id = $brand AND c1.channel_id = w.state
LEFT JOIN (SELECT name, min(channel_id) AS channel_id FROM channels WHERE brand_id = $brand GROUP BY name) c2
       ON c2.name = w.state
"""
_UPSERT = (
    _INSERT
    + """ON CONFLICT (brand_id, external_userid, guide_id) DO UPDATE SET
    added_at = CASE WHEN relations.state = 'lost' THEN excluded.added_at ELSE relations.added_at END,
    add_way = coalesce(relations.add_way, excluded.add_way),
    channel_id = coalesce(relations.channel_id, excluded.channel_id),
    state = 'active', lost_at = NULL, lost_by = NULL
"""
)
_LOSE = """
UPDATE relations SET state = 'lost', lost_at = $now, lost_by = 'sync'
FROM _wlost l
WHERE relations.brand_id = $brand AND relations.state = 'active' AND relations.external_userid = l.ext
  AND relations.guide_id = l.guide_id
"""

_FIRST_SEEN = """
UPDATE identity_observations SET observed_at = f.added_at_min
FROM _wfirst f
WHERE identity_observations.brand_id = $brand AND identity_observations.source_kind = $kind
  AND identity_observations.source_ref = 'wecom-sync:' || f.external_userid
  AND f.added_at_min IS NOT NULL AND identity_observations.observed_at > f.added_at_min
"""


_GC_LOCK = threading.Lock()
_GC_DEPTH = [0, 0, 0, 0]  # syncs running; the thresholds to restore
GC_GEN0 = 50_000  # allocations between young collections while a sync runs (Python's default: 700)


def _fewer_collections() -> None:
    """Young-generation collections less often while syncs run: parsing 100,000 contacts allocates millions of
    short-lived objects, and the full collections that follow hold the GIL long enough (0.1–0.5 s on a busy
    machine) for every pager to miss its pacing slots. Garbage is still collected; ``_usual_collections`` puts
    the thresholds back when the last running sync ends."""
    with _GC_LOCK:
        if _GC_DEPTH[0] == 0:
            _GC_DEPTH[1:] = gc.get_threshold()
            if 0 < _GC_DEPTH[1] < GC_GEN0:
                gc.set_threshold(GC_GEN0, _GC_DEPTH[2], _GC_DEPTH[3])
        _GC_DEPTH[0] += 1


def _usual_collections() -> None:
    with _GC_LOCK:
        _GC_DEPTH[0] -= 1
        if _GC_DEPTH[0] == 0 and gc.get_threshold()[0] == GC_GEN0:
            gc.set_threshold(*_GC_DEPTH[1:])


class _Resolution:
    """OneID resolving a sync's new observations in the background (``close`` waits: ``Context.close`` calls it)."""

    def __init__(self, ctx: Context, brand_id: str) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(ctx, brand_id), name="wecom-sync-oneid", daemon=True)
        self.thread.start()

    def _run(self, ctx: Context, brand_id: str) -> None:
        try:
            oneid.resolve_pending(ctx, brand_id)
        except BaseException as err:  # the observations stay pending: the next resolution picks them up
            self.error = err
            log.exception("OneID resolution after the WeCom sync failed for brand %s", brand_id)
            return
        from siyu.services.guide_work.pool_feed import settle_quietly

        settle_quietly(ctx, brand_id)  # pool leads whose customer added a guide leave the pool

    def close(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def sync_contacts(
    ctx: Context, brand_id: str, client: WeComClient | None = None, progress: Progress | None = None
) -> SyncStats:
    """Fetch every contact of the brand's guides from WeCom and bring relations up to date; the new contacts'
    identities are resolved by OneID in the background afterwards (``SyncStats.wait_identities``)."""
    say = progress or (lambda _m: None)
    own = client is None
    client = client or client_for(get_config(ctx, brand_id))
    stats = SyncStats()
    tagger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wecom-sync-tags")
    _fewer_collections()
    try:
        t0 = time.perf_counter()
        waited0, calls0, backoff0 = client.t.limiter.waited, client.t.stats["calls"], client.t.stats["backoff_seconds"]
        # the corp tags (needed by the customers' tags at the end) are synced while the contacts are fetched
        tag_sync = tagger.submit(tags.sync_corp_tags, ctx, brand_id, client)
        members = client.get_follow_user_list()
        guides = _guides(ctx, brand_id)
        synced = sorted({m for m in members if m in guides})
        fetch = pages(client, synced)  # the first requests leave now
        stats.members = len(members)
        stats.unknown_members = sorted(m for m in members if m not in guides)
        stats.guides_synced = len(synced)
        try:
            writer = _Writer(ctx, brand_id, guides, stats)
            for page in fetch:
                writer.add(page)
                if stats.records // 10_000 != (stats.records - len(page)) // 10_000:
                    say(f"{stats.records} contacts fetched")
        finally:
            fetch.close()
        stats.fetch_seconds = round(time.perf_counter() - t0, 3)
        stats.api_calls = int(client.t.stats["calls"] - calls0)
        waited = client.t.limiter.waited - waited0 + client.t.stats["backoff_seconds"] - backoff0
        stats.rate_wait_seconds = round(waited, 3)
        stats.tags = tag_sync.result()[0]
        say(f"{stats.records} contact records fetched; finishing the write")
        t1 = time.perf_counter()
        writer.finish(sorted({guides[m] for m in synced}))
        stats.tail_seconds = round(time.perf_counter() - t1, 3)
        stats.write_seconds = round(writer.seconds, 3)
    finally:
        _usual_collections()
        tagger.shutdown(wait=True)
        if own:
            client.close()
    if stats.observations:
        previous = ctx.extras.pop(f"wecom_sync_oneid:{brand_id}", None)
        if previous is not None:
            previous.close()
        stats._resolution = ctx.extras[f"wecom_sync_oneid:{brand_id}"] = _Resolution(ctx, brand_id)
        say(f"synced; {stats.observations} new contacts' identities resolving")
    return stats
