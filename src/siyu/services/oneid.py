"""OneID: resolve identity observations into customers (incremental, full rebuild, split, look-ups).

Records never store a customer id: they keep raw identifiers and join ``identities``.  This module maintains
``identities`` / ``customers`` / ``identity_merges`` / ``identity_conflicts`` / ``identity_splits`` and the
per-brand watermark ``oneid_state``.  Partitioning is done by ``siyu.domain.oneid.resolve`` (rebuild, split) and
by an in-memory per-brand index for incremental resolution (``resolve_pending``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa

from siyu.domain import oneid as algo
from siyu.domain.identity import IdentifierError, OneIdPolicy
from siyu.domain.models import Identity
from siyu.domain.oneid import Key
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError

if TYPE_CHECKING:
    from siyu.services.brands import User

Progress = Callable[[str], None]
PROFILE_FIELDS = ("name", "phone", "email", "gender", "birthday", "city")
_FAR_FUTURE = datetime(9999, 1, 1)


@dataclass
class ResolveStats:
    """What a resolution did. ``mode`` is 'incremental' or 'rebuild'."""

    brand_id: str
    mode: str
    observations: int = 0
    identifiers: int = 0  # new identifiers (incremental) / all resolved identifiers (rebuild)
    customers: int = 0  # customers created (incremental) / customers in total (rebuild)
    merges: int = 0
    conflicts: int = 0
    shared: int = 0  # identifiers found shared by too many people (not used to merge)
    last_obs_id: int = 0
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The stats as a plain dict (for JSON / CLI output)."""
        return asdict(self)


@dataclass
class _Obs:
    obs_id: int
    observed_at: datetime
    source_kind: str
    source_ref: str
    identifiers: list[Key]
    traits: dict[str, Any]


def now() -> datetime:
    """UTC now, naive (warehouse timestamps are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_customer_id() -> str:
    """A fresh opaque customer id: ``c_`` + 12 hex digits."""
    return "c_" + uuid.uuid4().hex[:12]


def load_policy(ctx: Context, brand_id: str) -> OneIdPolicy:
    """The brand's OneID policy from ``brands.settings["oneid"]`` (DEFAULT_POLICIES when absent)."""
    from siyu.services.brands import get_brand

    settings = get_brand(ctx, brand_id).settings or {}
    try:
        return OneIdPolicy.from_settings(settings.get("oneid"))
    except IdentifierError as exc:
        raise SiyuError(str(exc), field="settings.oneid") from exc


def parse_identifier(text: str) -> Identity:
    """Parse ``type:value`` (the value is normalised, e.g. phones to E.164)."""
    from siyu.domain.identity import normalize

    id_type, sep, value = text.partition(":")
    if not sep or not value:
        raise SiyuError(f"identifier {text!r} must look like type:value, e.g. phone:13800138000", field="identifier")
    try:
        return normalize(id_type.strip(), value.strip())
    except IdentifierError as exc:
        raise SiyuError(str(exc), field="identifier") from exc


# ----------------------------------------------------------------------------------------- observation commits

_OBS_LOCK_KEY = "oneid_observation_lock"
_OBS_LOCK_GUARD = threading.Lock()


def observation_lock(ctx: Context) -> threading.Lock:
    """The short lock a latency-sensitive writer holds around each transaction that inserts observations.

    OneID's watermark needs observation ids to be committed without gaps below the highest id it reads.  Batch
    writers (imports, demo seed) get that by holding ``ctx.warehouse.write_lock`` around their transaction;
    OneID holds ``write_lock`` for its whole run.  The ingest writer must not wait for a whole OneID run, so it
    holds this lock instead (only around its commit, milliseconds); OneID takes it only for the instant it
    reads the highest committed obs_id (``_committed_high``), so it never sees a gap and acks never wait for it.
    """
    lock = ctx.extras.get(_OBS_LOCK_KEY)
    if not isinstance(lock, type(_OBS_LOCK_GUARD)):
        with _OBS_LOCK_GUARD:
            lock = ctx.extras.get(_OBS_LOCK_KEY)
            if not isinstance(lock, type(_OBS_LOCK_GUARD)):
                lock = threading.Lock()
                ctx.extras[_OBS_LOCK_KEY] = lock
    return lock


@contextmanager
def observation_transaction(ctx: Context) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse transaction for writing observations without holding ``write_lock`` (see ``observation_lock``)."""
    with observation_lock(ctx), ctx.warehouse.transaction() as tx:
        yield tx


def _committed_high(ctx: Context, cur: duckdb.DuckDBPyConnection) -> int:
    """The highest obs_id such that every lower id that will ever commit has committed.

    The caller holds ``write_lock`` (no batch writer is mid-transaction); holding ``observation_lock`` for this
    one query excludes the ingest writer, so nothing below the answer can still be in flight."""
    with observation_lock(ctx):
        row = cur.execute("SELECT max(obs_id) FROM identity_observations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --------------------------------------------------------------------------------------------------- loading


def _parse_traits(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _arrow(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    """Run a query and materialise the whole result as an Arrow table."""
    result: Any = cur.execute(sql, params).arrow()
    return result.read_all() if hasattr(result, "read_all") else result


def _load_observations(
    cur: duckdb.DuckDBPyConnection, brand_id: str, where: str = "", params: Iterable[Any] = ()
) -> list[_Obs]:
    """Observations of a brand (optionally filtered), in obs_id order, with identifiers flattened in bulk."""
    base = f"FROM identity_observations WHERE brand_id = ? {where}"
    args = [brand_id, *params]
    meta = _arrow(
        cur,
        f"SELECT obs_id, observed_at, source_kind, source_ref, CAST(traits AS VARCHAR) {base} ORDER BY obs_id",
        args,
    )
    flat = _arrow(
        cur,
        f"SELECT obs_id, i.type, i.value FROM (SELECT obs_id, unnest(identifiers) AS i {base}) ORDER BY obs_id",
        args,
    )
    ids_by_obs: dict[int, list[Key]] = {}
    for oid, t, v in zip(
        flat.column(0).to_pylist(), flat.column(1).to_pylist(), flat.column(2).to_pylist(), strict=True
    ):
        if t and v:
            ids_by_obs.setdefault(oid, []).append((t, v))
    out: list[_Obs] = []
    for oid, at, kind, ref, traits in zip(*(meta.column(k).to_pylist() for k in range(5)), strict=True):
        out.append(_Obs(oid, at, kind, ref, ids_by_obs.get(oid, []), _parse_traits(traits)))
    return out


def _load_recent(cur: duckdb.DuckDBPyConnection, brand_id: str, after: int, upto: int) -> list[_Obs]:
    """Observations in (after, upto], in one small query (the incremental path)."""
    rows = cur.execute(
        "SELECT obs_id, observed_at, source_kind, source_ref, CAST(traits AS VARCHAR), identifiers "
        "FROM identity_observations WHERE brand_id = ? AND obs_id > ? AND obs_id <= ? ORDER BY obs_id",
        [brand_id, after, upto],
    ).fetchall()
    return [
        _Obs(oid, at, kind, ref, [(i["type"], i["value"]) for i in ids if i["type"] and i["value"]], _parse_traits(tr))
        for oid, at, kind, ref, tr, ids in rows
    ]


def _count_upto(cur: duckdb.DuckDBPyConnection, brand_id: str, mark: int) -> int:
    row = cur.execute(
        "SELECT count(*) FROM identity_observations WHERE brand_id = ? AND obs_id <= ?", [brand_id, mark]
    ).fetchone()
    return int(row[0]) if row else 0


def _load_splits(cur: duckdb.DuckDBPyConnection, brand_id: str) -> list[tuple[Key, Key]]:
    rows = cur.execute(
        "SELECT a_type, a_value, b_type, b_value FROM identity_splits WHERE brand_id = ?", [brand_id]
    ).fetchall()
    return [((r[0], r[1]), (r[2], r[3])) for r in rows]


def _watermark(cur: duckdb.DuckDBPyConnection, brand_id: str) -> int:
    row = cur.execute("SELECT last_obs_id FROM oneid_state WHERE brand_id = ?", [brand_id]).fetchone()
    return int(row[0]) if row else 0


def _set_watermark(cur: duckdb.DuckDBPyConnection, brand_id: str, obs_id: int) -> None:
    updated = cur.execute(
        "UPDATE oneid_state SET last_obs_id = ?, updated_at = ? WHERE brand_id = ? RETURNING brand_id",
        [obs_id, now(), brand_id],
    ).fetchall()
    if not updated:
        cur.execute("INSERT INTO oneid_state VALUES (?, ?, ?)", [brand_id, obs_id, now()])


# --------------------------------------------------------------------------------------------------- profiles


def _birthday(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


@dataclass
class _Profile:
    traits: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    phone: str | None = None  # latest phone / email identifier, used when traits have none
    email: str | None = None

    def observe(self, obs: _Obs, own: Iterable[Key]) -> None:
        """Apply an observation: newer traits win, older ones only fill gaps.

        ``created_at`` is the first time the person was seen; ``updated_at`` the observed time of the latest
        observation that changed the profile (traits, phone or email)."""
        at = obs.observed_at
        self.created_at = at if self.created_at is None else min(self.created_at, at)
        contacts = [i for i in own if i[0] in ("phone", "email")]
        if not obs.traits and not contacts:
            return
        newer = self.updated_at is None or at >= self.updated_at
        changed = False
        for k, v in obs.traits.items():
            if v is None or v == "":
                continue
            if (newer or k not in self.traits) and self.traits.get(k) != v:
                self.traits[k] = v
                changed = True
        for t, v in contacts:
            if t == "phone" and (newer or self.phone is None) and self.phone != v:
                self.phone = v
                changed = True
            elif t == "email" and (newer or self.email is None) and self.email != v:
                self.email = v
                changed = True
        if changed and newer:
            self.updated_at = at

    def snapshot(self) -> tuple[Any, ...]:
        """Everything ``row`` is made of, cheap to compare (to write only customers that changed)."""
        return (dict(self.traits), self.created_at, self.updated_at, self.phone, self.email)

    def absorb(self, other: _Profile) -> None:
        """Merge another customer's profile into this one (the more recently updated traits win)."""
        first, second = (
            (other, self) if (other.updated_at or _FAR_FUTURE) <= (self.updated_at or _FAR_FUTURE) else (self, other)
        )
        merged = dict(first.traits)
        merged.update(second.traits)
        self.traits = merged
        self.phone = second.phone or first.phone
        self.email = second.email or first.email
        self.updated_at = max((d for d in (self.updated_at, other.updated_at) if d is not None), default=None)
        self.created_at = min((d for d in (self.created_at, other.created_at) if d is not None), default=None)

    def row(self, brand_id: str, customer_id: str) -> dict[str, Any]:
        t = self.traits
        return {
            "brand_id": brand_id,
            "customer_id": customer_id,
            "name": _str(t.get("name")),
            "phone": _str(t.get("phone")) or self.phone,
            "email": _str(t.get("email")) or self.email,
            "gender": _str(t.get("gender")),
            "birthday": _birthday(t.get("birthday")),
            "city": _str(t.get("city")),
            "traits": orjson.dumps(t, default=str).decode(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


_CUSTOMER_SCHEMA = pa.schema(
    [
        ("brand_id", pa.string()),
        ("customer_id", pa.string()),
        ("name", pa.string()),
        ("phone", pa.string()),
        ("email", pa.string()),
        ("gender", pa.string()),
        ("birthday", pa.date32()),
        ("city", pa.string()),
        ("traits", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("updated_at", pa.timestamp("us")),
    ]
)
_IDENTITY_SCHEMA = pa.schema(
    [
        ("brand_id", pa.string()),
        ("id_type", pa.string()),
        ("id_value", pa.string()),
        ("customer_id", pa.string()),
        ("first_seen_at", pa.timestamp("us")),
        ("last_seen_at", pa.timestamp("us")),
    ]
)
_MERGE_COLS = [
    "brand_id",
    "merge_id",
    "customer_id",
    "absorbed_customer_id",
    "rule",
    "id_type",
    "id_value",
    "source_kind",
    "source_ref",
    "merged_at",
    "undone_at",
    "other_type",
    "other_value",
    "obs_id",
]
_CONFLICT_COLS = [
    "brand_id",
    "conflict_id",
    "customer_id",
    "other_customer_id",
    "id_type",
    "id_value",
    "reason",
    "source_kind",
    "source_ref",
    "detected_at",
    "resolved_at",
    "other_type",
    "other_value",
]


def _insert_rows(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[dict[str, Any]] | pa.Table,
    schema: pa.Schema,
    verb: str = "INSERT",
    suffix: str = "",
) -> None:
    """Bulk insert rows (dicts or an Arrow table) through Arrow (no executemany loops)."""
    data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
    if data.num_rows == 0:
        return
    name = f"_oneid_{table}_{uuid.uuid4().hex[:8]}"
    cur.register(name, data)
    try:
        cols = ", ".join(schema.names)
        select = ", ".join("CAST(traits AS JSON)" if c == "traits" else c for c in schema.names)
        cur.execute(f"{verb} INTO {table} ({cols}) SELECT {select} FROM {name} {suffix}")
    finally:
        cur.unregister(name)


def _schema_of(cols: list[str]) -> pa.Schema:
    types = {
        "merged_at": pa.timestamp("us"),
        "undone_at": pa.timestamp("us"),
        "detected_at": pa.timestamp("us"),
        "resolved_at": pa.timestamp("us"),
        "obs_id": pa.int64(),
    }
    return pa.schema([(c, types.get(c, pa.string())) for c in cols])


_MERGE_SCHEMA = _schema_of(_MERGE_COLS)
_CONFLICT_SCHEMA = _schema_of(_CONFLICT_COLS)


Span = tuple[datetime | None, datetime | None]


def _span(a: Span | None, b: Span) -> Span:
    """The union of two (first seen, last seen) ranges."""
    if a is None:
        return b
    firsts = [d for d in (a[0], b[0]) if d is not None]
    lasts = [d for d in (a[1], b[1]) if d is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


_UPSERT_IDENTITY = (
    "ON CONFLICT (brand_id, id_type, id_value) DO UPDATE SET customer_id = excluded.customer_id, "
    "first_seen_at = least(coalesce(identities.first_seen_at, excluded.first_seen_at), "
    "coalesce(excluded.first_seen_at, identities.first_seen_at)), "
    "last_seen_at = greatest(coalesce(identities.last_seen_at, excluded.last_seen_at), "
    "coalesce(excluded.last_seen_at, identities.last_seen_at))"
)


# rule prefix of merges between records that formed a new person in a rebuild (no earlier customer id was
# absorbed: absorbed_customer_id is ''); a rebuild recomputes them, so it replaces the earlier ones
RECORD_MERGE_PREFIX = "record:"


def _merge_row(
    brand_id: str,
    survivor: str,
    absorbed: str,
    absorbed_id: Key | None,
    other_id: Key | None,
    obs: _Obs | None,
) -> dict[str, Any]:
    rule = f"link:{absorbed_id[0]}~{other_id[0]}" if absorbed_id and other_id else "link"
    return {
        "brand_id": brand_id,
        "merge_id": uuid.uuid4().hex,
        "customer_id": survivor,
        "absorbed_customer_id": absorbed,
        "rule": rule,
        "id_type": absorbed_id[0] if absorbed_id else None,
        "id_value": absorbed_id[1] if absorbed_id else None,
        "source_kind": obs.source_kind if obs else None,
        "source_ref": obs.source_ref if obs else None,
        "merged_at": now(),
        "undone_at": None,
        "other_type": other_id[0] if other_id else None,
        "other_value": other_id[1] if other_id else None,
        "obs_id": obs.obs_id if obs else None,
    }


AUDIT_PAIRS = 100  # customer pairs named in one merge audit entry (the count is always exact)


def _audit_merges(ctx: Context, brand_id: str, merges: list[dict[str, Any]], mode: str) -> None:
    """One audit entry for a resolution run that merged customers: how many, and which (survivor, absorbed,
    rule) pairs, the first ``AUDIT_PAIRS`` of them; merges of records into a new person are not customer merges."""
    pairs = [[m["customer_id"], m["absorbed_customer_id"], m["rule"]] for m in merges if m["absorbed_customer_id"]]
    if not pairs:
        return
    from siyu.services import audit

    detail = {"mode": mode, "merges": len(pairs), "pairs": pairs[:AUDIT_PAIRS]}
    audit.record(ctx, brand_id, "oneid", "oneid.merge", f"{len(pairs)} customer merge(s)", detail)


def _conflict_row(
    brand_id: str,
    reason: str,
    ident: Key,
    other: Key | None,
    customer_id: str | None,
    other_customer_id: str | None,
    obs: _Obs | None,
) -> dict[str, Any]:
    return {
        "brand_id": brand_id,
        "conflict_id": uuid.uuid4().hex,
        "customer_id": customer_id,
        "other_customer_id": other_customer_id,
        "id_type": ident[0],
        "id_value": ident[1],
        "reason": reason,
        "source_kind": obs.source_kind if obs else None,
        "source_ref": obs.source_ref if obs else None,
        "detected_at": now(),
        "resolved_at": None,
        "other_type": other[0] if other else None,
        "other_value": other[1] if other else None,
    }


def _limit_reason(id_type: str | None, policy: OneIdPolicy) -> str:
    mx = policy.of(id_type or "").max_per_person
    return f"max_per_person:{id_type}:{mx}"


def _owner(ids: Iterable[Key], cust_of: Callable[[Key], str | None], types: algo.TypeTable) -> str | None:
    """The customer an observation's traits belong to: that of its most trusted resolved identifier."""
    best: tuple[int, str, str] | None = None
    owner: str | None = None
    for i in ids:
        c = cust_of(i)
        if c is None:
            continue
        key = (-types.get(i[0])[0], i[0], i[1])
        if best is None or key < best:
            best, owner = key, c
    return owner


# --------------------------------------------------------------------------------------------------- rebuild


def rebuild(ctx: Context, brand_id: str, progress: Progress | None = None) -> ResolveStats:
    """Recompute the whole partition of a brand from all its observations.

    Customer ids stay stable: an old id stays with the group holding most of its identifiers; when groups of
    several old customers meet, the oldest (smallest created_at) survives and the merge is logged.  Links that
    joined earlier records into one person are logged as ``record:`` merges (recomputed on every rebuild).
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    policy = load_policy(ctx, brand_id)
    types = algo.TypeTable(policy)
    wh = ctx.warehouse
    with wh.write_lock:
        _drop_index(ctx, brand_id)
        cur = wh.cursor()
        hi = _committed_high(ctx, cur)  # later observations are left to resolve_pending
        obs = _load_observations(cur, brand_id, "AND obs_id <= ?", [hi])
        say(f"loaded {len(obs)} observations")
        splits = _load_splits(cur, brand_id)
        old = _arrow(cur, "SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = ?", [brand_id])
        old_map: dict[Key, str] = dict(
            zip(
                zip(old.column(0).to_pylist(), old.column(1).to_pylist(), strict=True),
                old.column(2).to_pylist(),
                strict=True,
            )
        )
        old_created: dict[str, datetime] = {
            c: at or _FAR_FUTURE
            for c, at in cur.execute(
                "SELECT customer_id, created_at FROM customers WHERE brand_id = ?", [brand_id]
            ).fetchall()
        }
        shared = _shared_in_warehouse(cur, brand_id, types, hi)
        res = algo.resolve([o.identifiers for o in obs], policy, splits, shared=shared)
        say(f"resolved {len(res.nodes)} identifiers, {len(res.links)} links, {len(res.blocked)} conflicts")
        comps = res.components()
        nodes = res.nodes

        best: dict[str, tuple[int, int, int]] = {}
        if old_map:
            for root, members in comps.items():
                counts = Counter(c for c in (old_map.get(nodes[m]) for m in members) if c is not None)
                for cid, n in counts.items():
                    cand = (n, -members[0], root)
                    if cid not in best or cand > best[cid]:
                        best[cid] = cand
        claims: dict[int, list[str]] = {}
        for cid, (_n, _m, root) in best.items():
            claims.setdefault(root, []).append(cid)
        cid_of_root: dict[int, str] = {}
        absorbed_of_root: dict[int, list[str]] = {}
        for root in comps:
            claimed = claims.get(root)
            if not claimed:
                cid_of_root[root] = new_customer_id()
                continue
            claimed.sort(key=lambda c: (old_created.get(c, _FAR_FUTURE), c))
            cid_of_root[root] = claimed[0]
            if len(claimed) > 1:
                absorbed_of_root[root] = claimed[1:]

        merges: list[dict[str, Any]] = []
        if absorbed_of_root:
            pending = {(root, a) for root, lst in absorbed_of_root.items() for a in lst}
            for link in res.links:
                if not pending:
                    break
                root = res.root[link.a]
                if root not in absorbed_of_root:
                    continue
                for x, y in ((link.a, link.b), (link.b, link.a)):
                    cx = old_map.get(nodes[x])
                    if cx is not None and (root, cx) in pending and old_map.get(nodes[y]) != cx:
                        merges.append(_merge_row(brand_id, cid_of_root[root], cx, nodes[x], nodes[y], obs[link.obs]))
                        pending.discard((root, cx))
                        break
            for root, cx in sorted(pending):
                merges.append(_merge_row(brand_id, cid_of_root[root], cx, None, None, None))
        # links that joined earlier records' people (evidence kept); links between two old customers are logged
        # above as customer merges
        logged = {
            r[0]
            for r in cur.execute(
                "SELECT obs_id FROM identity_merges WHERE brand_id = ? AND obs_id IS NOT NULL "
                "AND NOT starts_with(rule, ?) AND undone_at IS NULL",
                [brand_id, RECORD_MERGE_PREFIX],
            ).fetchall()
        }
        for link in algo.record_merges(res):
            ca, cb = old_map.get(nodes[link.a]), old_map.get(nodes[link.b])
            if (ca is not None and cb is not None and ca != cb) or obs[link.obs].obs_id in logged:
                continue
            row = _merge_row(brand_id, cid_of_root[res.root[link.a]], "", nodes[link.a], nodes[link.b], obs[link.obs])
            row["rule"] = RECORD_MERGE_PREFIX + row["rule"].split(":", 1)[1]
            merges.append(row)

        cust_of_node = [cid_of_root[r] for r in res.root]
        trust = [types.get(k[0])[0] for k in nodes]
        profiles: dict[str, _Profile] = {c: _Profile() for c in cid_of_root.values()}
        contact_node = [k[0] in ("phone", "email") for k in nodes]
        for oi in sorted(range(len(obs)), key=lambda i: (obs[i].observed_at, obs[i].obs_id)):
            members = res.obs_nodes[oi]
            if not members or not (obs[oi].traits or any(contact_node[m] for m in members)):
                continue  # created_at comes from the identities' first seen; nothing else to learn
            top = min(members, key=lambda m: (-trust[m], m))
            owner = cust_of_node[top]
            profiles[owner].observe(obs[oi], [nodes[m] for m in members if cust_of_node[m] == owner])

        conflicts: list[dict[str, Any]] = []
        for b in res.blocked:
            if b.reason == algo.LIMIT:
                conflicts.append(
                    _conflict_row(
                        brand_id,
                        _limit_reason(b.id_type, policy),
                        nodes[b.b],
                        nodes[b.a],
                        cust_of_node[b.b],
                        cust_of_node[b.a],
                        obs[b.obs],
                    )
                )
        for s in sorted(res.shared):
            mx = policy.of(s[0]).max_people_per_value
            conflicts.append(_conflict_row(brand_id, f"shared:{s[0]}:{mx}", s, None, None, None, None))

        assign = pa.table(
            {
                "t": [k[0] for k in nodes],
                "v": [k[1] for k in nodes],
                "c": cust_of_node,
            }
        )
        cust_rows = [p.row(brand_id, c) for c, p in profiles.items()]
        say(f"writing {len(nodes)} identities, {len(cust_rows)} customers")
        last_obs = max((o.obs_id for o in obs), default=_watermark(cur, brand_id))
        with wh.transaction() as tx:
            _sync_identities(tx, brand_id, assign, hi)
            say("identities written")
            _sync_customers(tx, brand_id, pa.Table.from_pylist(cust_rows, schema=_CUSTOMER_SCHEMA))
            say("customers written")
            tx.execute("DELETE FROM identity_conflicts WHERE brand_id = ? AND resolved_at IS NULL", [brand_id])
            _insert_rows(tx, "identity_conflicts", conflicts, _CONFLICT_SCHEMA)
            tx.execute(
                "DELETE FROM identity_merges WHERE brand_id = ? AND starts_with(rule, ?) AND undone_at IS NULL",
                [brand_id, RECORD_MERGE_PREFIX],
            )
            _insert_rows(tx, "identity_merges", merges, _MERGE_SCHEMA)
            _set_watermark(tx, brand_id, last_obs)
            say("committing")
        say("committed")
        _audit_merges(ctx, brand_id, merges, "rebuild")
    return ResolveStats(
        brand_id=brand_id,
        mode="rebuild",
        observations=len(obs),
        identifiers=len(nodes),
        customers=len(cust_rows),
        merges=len(merges),
        conflicts=len(conflicts),
        shared=len(res.shared),
        last_obs_id=last_obs,
        elapsed_ms=round((time.perf_counter() - t0) * 1000, 2),
    )


def _shared_in_warehouse(cur: duckdb.DuckDBPyConnection, brand_id: str, types: algo.TypeTable, upto: int) -> set[Key]:
    """``siyu.domain.oneid.shared_values`` computed set-based by DuckDB over all of a brand's observations."""
    present = _observed_types(cur, brand_id)
    limits = {t: types.get(t)[2] for t in present if types.get(t)[2] is not None}
    anchors = [t for t in present if types.get(t)[3]]
    if not limits or not anchors:
        return set()
    lim = pa.table({"t": list(limits), "n": [int(v or 0) for v in limits.values()]})
    cur.register("_oneid_limits", lim)
    try:
        rows = cur.execute(
            """WITH f AS (SELECT obs_id, unnest(identifiers) AS i FROM identity_observations
                          WHERE brand_id = ? AND obs_id <= ?),
                    s AS (SELECT obs_id, i.type AS t, i.value AS v FROM f WHERE list_contains(?, i.type)),
                    a AS (SELECT obs_id, i.type AS t, i.value AS v FROM f WHERE list_contains(?, i.type)),
                    c AS (SELECT s.t, s.v, a.t AS at, count(DISTINCT a.v) AS n FROM s JOIN a USING (obs_id)
                          WHERE NOT (s.t = a.t AND s.v = a.v) GROUP BY 1, 2, 3)
               SELECT DISTINCT c.t, c.v FROM c JOIN _oneid_limits l ON c.t = l.t WHERE c.n > l.n""",
            [brand_id, upto, list(limits), anchors],
        ).fetchall()
    finally:
        cur.unregister("_oneid_limits")
    return {(t, v) for t, v in rows}


def _sync_identities(tx: duckdb.DuckDBPyConnection, brand_id: str, assign: pa.Table, upto: int) -> None:
    """Make the brand's identities equal to ``assign`` (t, v, c) with first/last seen aggregated from the
    observations, touching only rows that change (a full delete + insert is slow to commit in DuckDB)."""
    tx.register("_oneid_assign", assign)
    try:
        tx.execute(
            """CREATE OR REPLACE TEMP TABLE _oneid_target AS
               SELECT a.t, a.v, a.c, s.f, s.l FROM _oneid_assign a LEFT JOIN (
                   SELECT i.type AS t, i.value AS v, min(observed_at) AS f, max(observed_at) AS l
                   FROM (SELECT observed_at, unnest(identifiers) AS i FROM identity_observations
                         WHERE brand_id = ? AND obs_id <= ?) GROUP BY 1, 2) s
               ON a.t = s.t AND a.v = s.v""",
            [brand_id, upto],
        )
    finally:
        tx.unregister("_oneid_assign")
    tx.execute(
        """DELETE FROM identities WHERE brand_id = ? AND NOT EXISTS (
               SELECT 1 FROM _oneid_target t WHERE t.t = identities.id_type AND t.v = identities.id_value)""",
        [brand_id],
    )
    tx.execute(
        """UPDATE identities SET customer_id = t.c, first_seen_at = t.f, last_seen_at = t.l FROM _oneid_target t
           WHERE identities.brand_id = ? AND identities.id_type = t.t AND identities.id_value = t.v
             AND (identities.customer_id <> t.c OR identities.first_seen_at IS DISTINCT FROM t.f
                  OR identities.last_seen_at IS DISTINCT FROM t.l)""",
        [brand_id],
    )
    tx.execute(
        """INSERT INTO identities (brand_id, id_type, id_value, customer_id, first_seen_at, last_seen_at)
           SELECT ?, t.t, t.v, t.c, t.f, t.l FROM _oneid_target t WHERE NOT EXISTS (
               SELECT 1 FROM identities i WHERE i.brand_id = ? AND i.id_type = t.t AND i.id_value = t.v)""",
        [brand_id, brand_id],
    )
    tx.execute("DROP TABLE _oneid_target")


def _sync_customers(tx: duckdb.DuckDBPyConnection, brand_id: str, rows: pa.Table) -> None:
    """Make the brand's customers equal to ``rows`` (created_at = first seen of their identifiers), touching only
    rows that change."""
    tx.register("_oneid_cust", rows)
    try:
        tx.execute(
            """CREATE OR REPLACE TEMP TABLE _oneid_ctarget AS
               SELECT r.* REPLACE (coalesce(x.f, r.created_at) AS created_at,
                                   coalesce(r.updated_at, x.f, r.created_at) AS updated_at)
               FROM _oneid_cust r LEFT JOIN (
                   SELECT customer_id, min(first_seen_at) AS f FROM identities WHERE brand_id = ? GROUP BY 1) x
               ON r.customer_id = x.customer_id""",
            [brand_id],
        )
    finally:
        tx.unregister("_oneid_cust")
    tx.execute(
        """DELETE FROM customers WHERE brand_id = ? AND NOT EXISTS (
               SELECT 1 FROM _oneid_ctarget t WHERE t.customer_id = customers.customer_id)""",
        [brand_id],
    )
    cols = [c for c in _CUSTOMER_SCHEMA.names if c not in ("brand_id", "customer_id")]
    sets = ", ".join(f"{c} = {'CAST(t.traits AS JSON)' if c == 'traits' else 't.' + c}" for c in cols)
    differs = " OR ".join(
        "CAST(customers.traits AS VARCHAR) IS DISTINCT FROM t.traits"
        if c == "traits"
        else f"customers.{c} IS DISTINCT FROM t.{c}"
        for c in cols
    )
    tx.execute(
        f"""UPDATE customers SET {sets} FROM _oneid_ctarget t
            WHERE customers.brand_id = ? AND customers.customer_id = t.customer_id AND ({differs})""",
        [brand_id],
    )
    select = ", ".join("CAST(t.traits AS JSON)" if c == "traits" else f"t.{c}" for c in _CUSTOMER_SCHEMA.names)
    tx.execute(
        f"""INSERT INTO customers ({", ".join(_CUSTOMER_SCHEMA.names)})
            SELECT {select} FROM _oneid_ctarget t WHERE NOT EXISTS (
                SELECT 1 FROM customers c WHERE c.brand_id = ? AND c.customer_id = t.customer_id)""",
        [brand_id],
    )
    tx.execute("DROP TABLE _oneid_ctarget")


# --------------------------------------------------------------------------------------------------- incremental


@dataclass
class _Index:
    """A brand's resolved state in memory, for millisecond incremental resolution."""

    types: algo.TypeTable
    watermark: int
    cust_of: dict[Key, str]
    members: dict[str, set[Key]]
    created: dict[str, datetime]
    forb: dict[Key, set[Key]]
    co: dict[Key, dict[str, set[str]]]
    shared: set[Key]
    open_conflicts: set[tuple[str, str, str, str | None, str | None]]
    profiles: dict[str, _Profile] = field(default_factory=dict)  # stored customers' profiles
    below: int = 0  # observations with obs_id <= watermark when last resolved (detects late commits)
    dirty: dict[Key, Span] = field(default_factory=dict)  # deferred first/last seen (defer_last_seen)
    flushed_at: float = field(default_factory=time.monotonic)

    def values(self, cid: str) -> dict[str, set[str]]:
        """The customer's values of each type that has a per-person limit."""
        out: dict[str, set[str]] = {}
        for t, v in self.members[cid]:
            if self.types.get(t)[1] is not None:
                out.setdefault(t, set()).add(v)
        return out


class _Registry(dict[str, _Index]):
    """The per-brand indexes of one Context (in ``ctx.extras``); closing it flushes deferred last-seen times."""

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def close(self) -> None:
        for brand_id in list(self):
            flush_seen(self.ctx, brand_id)


def _indexes(ctx: Context) -> _Registry:
    found = ctx.extras.get("oneid_index")
    if not isinstance(found, _Registry):
        found = _Registry(ctx)
        ctx.extras["oneid_index"] = found
    return found


_MAX_DIRTY = 50_000  # deferred identifiers held in memory at most, per brand


def seen_pending(ctx: Context, brand_id: str) -> int:
    """How many identifiers have deferred first/last-seen times not yet written."""
    idx = _indexes(ctx).get(brand_id)
    return len(idx.dirty) if idx is not None else 0


def defer_last_seen(ctx: Context, seconds: float | None) -> None:
    """Opt in to write-behind of ``identities.first_seen_at/last_seen_at`` for identifiers seen again.

    DuckDB updates of existing rows cost tens of ms; with a delay, incremental resolution only inserts new
    identifiers and writes changed customers, and re-seen times are flushed at most every ``seconds`` (or 2,000
    identifiers, on ``flush_seen``, on split and when the Context closes; ``identifiers_of`` includes them at once).
    ``None`` (default) writes them at once.
    """
    ctx.extras["oneid_seen_delay"] = seconds


def flush_seen(ctx: Context, brand_id: str) -> int:
    """Write deferred first/last-seen times of a brand now; returns how many identifiers were written."""
    with ctx.warehouse.write_lock:
        idx = _indexes(ctx).get(brand_id)
        if idx is None or not idx.dirty:
            return 0
        dirty, idx.dirty = idx.dirty, {}
        idx.flushed_at = time.monotonic()
        table = pa.table(
            {
                "brand_id": [brand_id] * len(dirty),
                "id_type": [k[0] for k in dirty],
                "id_value": [k[1] for k in dirty],
                "customer_id": [idx.cust_of[k] for k in dirty],
                "first_seen_at": pa.array([v[0] for v in dirty.values()], pa.timestamp("us")),
                "last_seen_at": pa.array([v[1] for v in dirty.values()], pa.timestamp("us")),
            }
        )
        with ctx.warehouse.transaction() as tx:
            _insert_rows(tx, "identities", table, _IDENTITY_SCHEMA, suffix=_UPSERT_IDENTITY)
        return len(dirty)


def _drop_index(ctx: Context, brand_id: str) -> None:
    _indexes(ctx).pop(brand_id, None)


def _load_index(ctx: Context, brand_id: str, policy: OneIdPolicy, watermark: int) -> _Index:
    cur = ctx.warehouse.cursor()
    types = algo.TypeTable(policy)
    ids = _arrow(cur, "SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = ?", [brand_id])
    cust_of: dict[Key, str] = {}
    members: dict[str, set[Key]] = {}
    for t, v, c in zip(*(ids.column(k).to_pylist() for k in range(3)), strict=True):
        cust_of[(t, v)] = c
        members.setdefault(c, set()).add((t, v))
    created = {
        c: at or _FAR_FUTURE
        for c, at in cur.execute(
            "SELECT customer_id, created_at FROM customers WHERE brand_id = ?", [brand_id]
        ).fetchall()
    }
    for c in members:
        created.setdefault(c, _FAR_FUTURE)
    forb: dict[Key, set[Key]] = {}
    for a, b in _load_splits(cur, brand_id):
        forb.setdefault(a, set()).add(b)
        forb.setdefault(b, set()).add(a)
    present = observed_types(ctx, brand_id)
    limited = sorted(t for t in present if types.get(t)[2] is not None)
    anchors = sorted(t for t in present if types.get(t)[3])
    co: dict[Key, dict[str, set[str]]] = {}
    if limited and anchors:
        rows = cur.execute(
            """WITH f AS (SELECT obs_id, unnest(identifiers) AS i FROM identity_observations
                          WHERE brand_id = ? AND obs_id <= ?),
                    s AS (SELECT obs_id, i.type AS t, i.value AS v FROM f WHERE list_contains(?, i.type)),
                    a AS (SELECT obs_id, i.type AS t, i.value AS v FROM f WHERE list_contains(?, i.type))
               SELECT DISTINCT s.t, s.v, a.t, a.v FROM s JOIN a USING (obs_id)
               WHERE NOT (s.t = a.t AND s.v = a.v)""",
            [brand_id, watermark, limited, anchors],
        ).fetchall()
        for st, sv, at, av in rows:
            co.setdefault((st, sv), {}).setdefault(at, set()).add(av)
    shared = {s for s in co if algo.is_shared(s, co, types)}
    open_conflicts = {
        (r[0], r[1], r[2], r[3], r[4])
        for r in cur.execute(
            "SELECT reason, id_type, id_value, other_type, other_value FROM identity_conflicts "
            "WHERE brand_id = ? AND resolved_at IS NULL",
            [brand_id],
        ).fetchall()
    }
    profiles: dict[str, _Profile] = {}
    cust = _arrow(
        cur,
        "SELECT customer_id, CAST(traits AS VARCHAR), created_at, updated_at, phone, email FROM customers "
        "WHERE brand_id = ?",
        [brand_id],
    )
    for c, traits, cat, uat, phone, email in zip(*(cust.column(k).to_pylist() for k in range(6)), strict=True):
        profiles[c] = _Profile(_parse_traits(traits), cat, uat, phone, email)
    return _Index(types, watermark, cust_of, members, created, forb, co, shared, open_conflicts, profiles)


def _observed_types(cur: duckdb.DuckDBPyConnection, brand_id: str) -> list[str]:
    rows = cur.execute(
        "SELECT DISTINCT i.type FROM (SELECT unnest(identifiers) AS i FROM identity_observations WHERE brand_id = ?)",
        [brand_id],
    ).fetchall()
    return sorted(r[0] for r in rows)


def observed_types(ctx: Context, brand_id: str) -> list[str]:
    """Identifier types present in a brand's observations."""
    return _observed_types(ctx.warehouse.cursor(), brand_id)


def warm(ctx: Context, brand_id: str) -> None:
    """Load the brand's in-memory index now (so the next ``resolve_pending`` takes milliseconds)."""
    with ctx.warehouse.write_lock:
        mark = _watermark(ctx.warehouse.cursor(), brand_id)
        idx = _indexes(ctx).get(brand_id)
        if idx is None or idx.watermark != mark:
            _indexes(ctx)[brand_id] = _load_index(ctx, brand_id, load_policy(ctx, brand_id), mark)


def resolve_pending(ctx: Context, brand_id: str, seen_delay: float | None = None) -> ResolveStats:
    """Resolve the observations recorded since the last resolution (incremental, milliseconds).

    ``seen_delay`` (seconds) defers first/last-seen updates of identifiers seen again (see ``defer_last_seen``);
    the caller then flushes them with ``flush_seen`` (the ingest trigger does so when ingestion pauses).  Without
    it every pending deferred time is written now.

    Links are applied in canonical order within the batch; a link that would break a limit is recorded as a
    conflict and skipped, one that would break an operator split is skipped.  Without conflicts the resulting
    partition equals ``rebuild``'s.
    """
    t0 = time.perf_counter()
    wh = ctx.warehouse
    with wh.write_lock:
        cur = wh.cursor()
        mark = _watermark(cur, brand_id)
        idx = _indexes(ctx).get(brand_id)
        below = _count_upto(cur, brand_id, mark)
        if idx is None or idx.watermark != mark:
            idx = _load_index(ctx, brand_id, load_policy(ctx, brand_id), mark)
            idx.below = below
            _indexes(ctx)[brand_id] = idx
        elif below != idx.below:
            # an observation with an id under the watermark committed late (its writer held neither
            # write_lock nor observation_lock): the incremental state missed it, so recompute everything
            return rebuild(ctx, brand_id)
        hi = _committed_high(ctx, cur)
        obs = _load_recent(cur, brand_id, mark, hi) if hi > mark else []
        stats = ResolveStats(brand_id=brand_id, mode="incremental", observations=len(obs), last_obs_id=mark)
        if obs:
            try:
                _apply(ctx, brand_id, idx, obs, stats, seen_delay)
                idx.below = below + len(obs)  # every id up to the new watermark had committed (no gaps)
            except BaseException:
                _drop_index(ctx, brand_id)
                raise
    stats.elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
    return stats


# Incremental resolution is pure Python holding the GIL; next to ingestion (whose commit and HTTP threads need
# the GIL between DuckDB calls) it pauses briefly every few dozen observations so they never wait a full switch
# interval (5 ms) for each hand-over.
_YIELD_EVERY = 32
_YIELD_SECONDS = 0.0001


def _breathe() -> None:
    time.sleep(_YIELD_SECONDS)


def _apply(
    ctx: Context, brand_id: str, idx: _Index, obs: list[_Obs], stats: ResolveStats, seen_delay: float | None
) -> None:
    types = idx.types
    policy = types.policy
    conflicts: list[dict[str, Any]] = []

    def conflict(reason: str, a: Key, b: Key | None, ca: str | None, cb: str | None, o: _Obs | None) -> None:
        key = (reason, a[0], a[1], b[0] if b else None, b[1] if b else None)
        if key in idx.open_conflicts:
            return
        idx.open_conflicts.add(key)
        conflicts.append(_conflict_row(brand_id, reason, a, b, ca, cb, o))

    # 1. shared-value detection
    for n, o in enumerate(obs):
        if n % _YIELD_EVERY == 0:
            _breathe()
        for s in algo.add_cooccurrence(idx.co, o.identifiers, types):
            if s not in idx.shared and algo.is_shared(s, idx.co, types):
                idx.shared.add(s)
                stats.shared += 1
                mx = types.get(s[0])[2]
                conflict(f"shared:{s[0]}:{mx}", s, None, idx.cust_of.get(s), None, o)

    # 2. new identifiers become fresh customers; remember when each identifier was seen
    fresh: set[str] = set()
    fresh_since: dict[str, int] = {}  # fresh customer → position of the first observation that created it
    seen: dict[Key, tuple[datetime, datetime]] = {}
    new_ids: set[Key] = set()
    for n, o in enumerate(obs):
        if n % _YIELD_EVERY == 0:
            _breathe()
        at = o.observed_at
        for i in o.identifiers:
            cid = idx.cust_of.get(i)
            if cid is None:
                if types.get(i[0])[0] <= 0 or i in idx.shared:
                    continue
                cid = new_customer_id()
                idx.cust_of[i] = cid
                idx.members[cid] = {i}
                idx.created[cid] = at
                fresh.add(cid)
                fresh_since[cid] = n
                new_ids.add(i)
            f, la = seen.get(i, (at, at))
            seen[i] = (min(f, at), max(la, at))
            if cid in fresh and at < idx.created[cid]:
                idx.created[cid] = at

    # 3. links in canonical order
    pairs: dict[tuple[Key, Key], int] = {}
    cust_of = idx.cust_of
    for oi, o in enumerate(obs):
        if oi % _YIELD_EVERY == 0:
            _breathe()
        linkable = {i for i in o.identifiers if i in cust_of and i not in idx.shared and types.get(i[0])[0] > 0}
        if len(linkable) < 2 or len({cust_of[i] for i in linkable}) == 1:
            continue  # already one customer before this batch's merges (which only join): no link to apply
        ids = sorted(linkable)
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pairs.setdefault((ids[x], ids[y]), oi)

    def order(p: tuple[Key, Key]) -> tuple[int, int, Key, Key]:
        ta, tb = types.get(p[0][0])[0], types.get(p[1][0])[0]
        return (-min(ta, tb), -max(ta, tb), p[0], p[1])

    merges: list[dict[str, Any]] = []
    absorbed_stored: dict[str, Key] = {}  # absorbed stored customer → one of its identifiers
    for a, b in sorted(pairs, key=order):
        ca, cb = idx.cust_of[a], idx.cust_of[b]
        if ca == cb:
            continue
        o = obs[pairs[(a, b)]]
        ma, mb = idx.members[ca], idx.members[cb]
        small, other = (ma, cb) if len(ma) <= len(mb) else (mb, ca)
        if any(idx.cust_of.get(p) == other for m in small for p in idx.forb.get(m, ())):
            continue  # an operator split says these are different people
        va, vb = idx.values(ca), idx.values(cb)
        broken = next((t for t, s in va.items() if t in vb and len(s | vb[t]) > (types.get(t)[1] or 0)), None)
        if broken is not None:
            conflict(_limit_reason(broken, policy), b, a, cb, ca, o)
            continue
        s_id, x_id = sorted((ca, cb), key=lambda c: (c in fresh, idx.created.get(c, _FAR_FUTURE), c))
        absorbed_side, survivor_side = (a, b) if ca == x_id else (b, a)
        moved = idx.members.pop(x_id)
        for m in moved:
            idx.cust_of[m] = s_id
        idx.members[s_id] |= moved
        idx.created[s_id] = min(idx.created[s_id], idx.created.pop(x_id))
        if x_id in fresh:
            fresh.discard(x_id)
            oi = pairs[(a, b)]
            x_since = fresh_since.pop(x_id)
            if x_since < oi and fresh_since.get(s_id, -1) < oi:  # two earlier records' people joined by o
                row = _merge_row(brand_id, s_id, "", absorbed_side, survivor_side, o)
                row["rule"] = RECORD_MERGE_PREFIX + row["rule"].split(":", 1)[1]
                merges.append(row)
            if s_id in fresh_since:
                fresh_since[s_id] = min(fresh_since[s_id], x_since)
        else:
            absorbed_stored[x_id] = absorbed_side
            merges.append(_merge_row(brand_id, s_id, x_id, absorbed_side, survivor_side, o))
    for row in merges:  # a record merge's survivor may itself have joined another customer later in the batch
        if row["absorbed_customer_id"] == "":
            row["customer_id"] = idx.cust_of[(row["other_type"], row["other_value"])]

    # 4. profiles of the affected customers
    affected: set[str] = {idx.cust_of[i] for i in seen}
    stored = {c: idx.profiles[c] for c in (affected - fresh) | set(absorbed_stored) if c in idx.profiles}
    profiles: dict[str, _Profile] = {c: stored.get(c) or _Profile() for c in affected}
    before = {c: p.snapshot() for c, p in stored.items()}
    for x_id, ident in absorbed_stored.items():
        if x_id in stored:
            profiles.setdefault(idx.cust_of[ident], _Profile()).absorb(stored[x_id])
    for n, o in enumerate(sorted(obs, key=lambda o: (o.observed_at, o.obs_id))):
        if n % _YIELD_EVERY == 0:
            _breathe()
        owner = _owner(o.identifiers, idx.cust_of.get, types)
        if owner is not None:
            profiles.setdefault(owner, _Profile()).observe(o, [i for i in o.identifiers if idx.cust_of.get(i) == owner])

    # identities to upsert: new and seen identifiers, and every identifier of an absorbed stored customer
    touched: dict[Key, Span] = dict(seen)
    for ident in absorbed_stored.values():
        for m in idx.members[idx.cust_of[ident]]:
            touched.setdefault(m, (None, None))

    def id_table(keys: list[Key]) -> pa.Table:
        return pa.table(
            {
                "brand_id": [brand_id] * len(keys),
                "id_type": [k[0] for k in keys],
                "id_value": [k[1] for k in keys],
                "customer_id": [idx.cust_of[k] for k in keys],
                "first_seen_at": pa.array([touched[k][0] for k in keys], pa.timestamp("us")),
                "last_seen_at": pa.array([touched[k][1] for k in keys], pa.timestamp("us")),
            }
        )

    delay = seen_delay if seen_delay is not None else ctx.extras.get("oneid_seen_delay")
    flush = True
    if isinstance(delay, int | float):
        moved_keys = {m for ident in absorbed_stored.values() for m in idx.members[idx.cust_of[ident]]}
        for k in [k for k in touched if k not in new_ids and k not in moved_keys]:
            idx.dirty[k] = _span(idx.dirty.get(k), touched.pop(k))
        flush = len(idx.dirty) >= _MAX_DIRTY or time.monotonic() - idx.flushed_at >= delay
        if not flush:
            for k in moved_keys:
                if k in idx.dirty:
                    touched[k] = _span(touched.get(k), idx.dirty.pop(k))
    if flush and idx.dirty:
        for k, sp in idx.dirty.items():
            touched[k] = _span(touched.get(k), sp)
        idx.dirty = {}
    if flush:
        idx.flushed_at = time.monotonic()
    new_rows = id_table([k for k in touched if k in new_ids])
    old_rows = id_table([k for k in touched if k not in new_ids])
    cust_rows = [p.row(brand_id, c) for c, p in profiles.items() if c not in before or p.snapshot() != before[c]]
    last_obs = max(o.obs_id for o in obs)
    with ctx.warehouse.transaction() as tx:
        _insert_rows(tx, "identities", new_rows, _IDENTITY_SCHEMA)
        _insert_rows(
            tx,
            "identities",
            old_rows,
            _IDENTITY_SCHEMA,
            suffix=_UPSERT_IDENTITY,
        )
        for x_id in absorbed_stored:
            tx.execute("DELETE FROM customers WHERE brand_id = ? AND customer_id = ?", [brand_id, x_id])
        _insert_rows(tx, "customers", cust_rows, _CUSTOMER_SCHEMA, verb="INSERT OR REPLACE")
        _insert_rows(tx, "identity_conflicts", conflicts, _CONFLICT_SCHEMA)
        _insert_rows(tx, "identity_merges", merges, _MERGE_SCHEMA)
        _set_watermark(tx, brand_id, last_obs)
    idx.watermark = last_obs
    _audit_merges(ctx, brand_id, merges, "incremental")
    for x_id in absorbed_stored:
        idx.profiles.pop(x_id, None)
    idx.profiles.update(profiles)
    stats.identifiers = len(new_ids)
    stats.customers = len(fresh)
    stats.merges = len(merges)
    stats.conflicts = len(conflicts)
    stats.last_obs_id = last_obs


# --------------------------------------------------------------------------------------------------- look-ups


def customer_of(ctx: Context, brand_id: str, identity: Identity) -> str | None:
    """The customer an identifier belongs to (None when it is unknown or not yet resolved)."""
    idx = _indexes(ctx).get(brand_id)
    if idx is not None and idx.watermark == _watermark(ctx.warehouse.cursor(), brand_id):
        return idx.cust_of.get((identity.type, identity.value))
    rows = ctx.warehouse.fetch(
        "SELECT customer_id FROM identities WHERE brand_id = ? AND id_type = ? AND id_value = ?",
        [brand_id, identity.type, identity.value],
    )
    return rows[0][0] if rows else None


def resolve_customer_id(ctx: Context, brand_id: str, customer_id: str) -> str | None:
    """The live customer id for a possibly old one: follows merges (absorbed → survivor) that were not undone."""
    seen: set[str] = set()
    cid = customer_id
    while cid not in seen:
        seen.add(cid)
        if ctx.warehouse.fetch("SELECT 1 FROM customers WHERE brand_id = ? AND customer_id = ?", [brand_id, cid]):
            return cid
        rows = ctx.warehouse.fetch(
            "SELECT customer_id FROM identity_merges WHERE brand_id = ? AND absorbed_customer_id = ? "
            "AND undone_at IS NULL ORDER BY merged_at DESC LIMIT 1",
            [brand_id, cid],
        )
        if not rows:
            return None
        cid = rows[0][0]
    return None


def identifiers_of(ctx: Context, brand_id: str, customer_id: str) -> list[dict[str, Any]]:
    """The identifiers of a customer, with first/last seen."""
    rows = ctx.warehouse.fetch(
        "SELECT id_type, id_value, first_seen_at, last_seen_at FROM identities WHERE brand_id = ? AND customer_id = ? "
        "ORDER BY id_type, id_value",
        [brand_id, customer_id],
    )
    idx = _indexes(ctx).get(brand_id)
    dirty = dict(idx.dirty) if idx is not None else {}
    out = []
    for t, v, f, la in rows:
        if (t, v) in dirty:
            f, la = _span((f, la), dirty[(t, v)])
        out.append({"type": t, "value": v, "first_seen_at": f, "last_seen_at": la})
    return out


def _dicts(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    res = cur.execute(sql, params)
    cols = [d[0] for d in res.description or []]
    return [dict(zip(cols, row, strict=True)) for row in res.fetchall()]


def merge_history(ctx: Context, brand_id: str, customer_id: str) -> list[dict[str, Any]]:
    """Merges in which the customer survived or was absorbed, oldest first, with their evidence."""
    return _dicts(
        ctx.warehouse.cursor(),
        f"SELECT {', '.join(_MERGE_COLS[1:])} FROM identity_merges WHERE brand_id = ? "
        "AND (customer_id = ? OR absorbed_customer_id = ?) ORDER BY merged_at, merge_id",
        [brand_id, customer_id, customer_id],
    )


def list_conflicts(ctx: Context, brand_id: str, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Conflicts OneID refused to merge silently (newest first)."""
    where = "" if include_resolved else "AND resolved_at IS NULL"
    return _dicts(
        ctx.warehouse.cursor(),
        f"SELECT {', '.join(_CONFLICT_COLS[1:])} FROM identity_conflicts WHERE brand_id = ? {where} "
        "ORDER BY detected_at DESC, conflict_id",
        [brand_id],
    )


# --------------------------------------------------------------------------------------------------- split


def split(
    ctx: Context,
    brand_id: str,
    customer_id: str,
    identifiers: list[Identity],
    reason: str,
    actor: User | str = "system",
) -> str:
    """Undo a wrong merge: the named identifiers leave the customer and get a new customer id.

    Records must-not-link constraints (identity_splits) between them and the identifiers that stay, recomputes
    that customer's group, and marks merges whose evidence now spans two customers as undone; ``actor`` (the user,
    or ``"cli"``) is written to the audit log with both customers.  Returns the new customer id of the split-off
    identifiers.
    """
    if not identifiers:
        raise SiyuError("name at least one identifier to split off (type:value)", field="identifiers")
    if not reason.strip():
        raise SiyuError("give a reason for the split (kept in the audit trail)", field="reason")
    resolve_pending(ctx, brand_id)
    flush_seen(ctx, brand_id)
    customer_id = resolve_customer_id(ctx, brand_id, customer_id) or customer_id  # an absorbed id still works
    policy = load_policy(ctx, brand_id)
    wh = ctx.warehouse
    with wh.write_lock:
        cur = wh.cursor()
        members: set[Key] = {
            (t, v)
            for t, v in cur.execute(
                "SELECT id_type, id_value FROM identities WHERE brand_id = ? AND customer_id = ?",
                [brand_id, customer_id],
            ).fetchall()
        }
        if not members:
            raise NotFound(f"customer {customer_id!r} does not exist in brand {brand_id!r}", field="customer_id")
        off: set[Key] = {(i.type, i.value) for i in identifiers}
        for i in sorted(off):
            if i not in members:
                raise SiyuError(
                    f"{i[0]}:{i[1]} is not an identifier of customer {customer_id}; "
                    f"see `siyu oneid show {brand_id} <type:value>`",
                    field="identifiers",
                )
        stay = members - off
        if not stay:
            raise SiyuError("at least one identifier must stay with the customer", field="identifiers")
        at = now()
        split_rows = [(brand_id, a[0], a[1], b[0], b[1], at, reason) for a in sorted(off) for b in sorted(stay)]
        reg = pa.table({"t": [m[0] for m in members], "v": [m[1] for m in members]})
        cur.register("_oneid_members", reg)
        try:
            obs = _load_observations(
                cur,
                brand_id,
                "AND obs_id IN (SELECT obs_id FROM (SELECT obs_id, unnest(identifiers) AS i FROM identity_observations "
                "WHERE brand_id = ?) f JOIN _oneid_members m ON f.i.type = m.t AND f.i.value = m.v)",
                [brand_id],
            )
        finally:
            cur.unregister("_oneid_members")
        constraints = [c for c in _load_splits(cur, brand_id) if c[0] in members and c[1] in members]
        constraints += [((r[1], r[2]), (r[3], r[4])) for r in split_rows]
        res = algo.resolve([o.identifiers for o in obs], policy, constraints, restrict_to=members)
        _check_splittable(brand_id, off, set(res.nodes))
        comps = res.components()
        # the group holding most staying identifiers keeps the id; every other group gets a new one
        keep_root = max(
            comps,
            key=lambda r: (sum(1 for m in comps[r] if res.nodes[m] in stay), -comps[r][0]),
        )
        cid_of_root = {r: (customer_id if r == keep_root else new_customer_id()) for r in comps}
        cust_of: dict[Key, str] = {res.nodes[k]: cid_of_root[r] for k, r in enumerate(res.root)}
        # identifiers of the customer that are no longer nodes (e.g. now shared) go with the staying group
        for m in members:
            cust_of.setdefault(m, customer_id)
        profiles: dict[str, _Profile] = {c: _Profile() for c in cid_of_root.values()}
        for o in sorted(obs, key=lambda o: (o.observed_at, o.obs_id)):
            owner = _owner(o.identifiers, cust_of.get, algo.TypeTable(policy))
            if owner is not None:
                profiles[owner].observe(o, [i for i in o.identifiers if cust_of.get(i) == owner])
        moved = [{"t": i[0], "v": i[1], "c": c} for i, c in cust_of.items() if c != customer_id]
        history = merge_history(ctx, brand_id, customer_id)
        undo = [
            h["merge_id"]
            for h in history
            if h["undone_at"] is None
            and h["id_type"] is not None
            and h["other_type"] is not None
            and cust_of.get((h["id_type"], h["id_value"]), "?") != cust_of.get((h["other_type"], h["other_value"]), "?")
        ]
        new_id = cust_of[sorted(off)[0]]
        if new_id == customer_id:  # nothing that stays is linked by an observation: the split would change nothing
            raise SiyuError(
                f"no identifier staying with customer {customer_id} has an observation OneID can link, so the split "
                "would change nothing; split off the other identifiers instead",
                field="identifiers",
            )
        with wh.transaction() as tx:
            _insert_splits(tx, split_rows)
            t = pa.Table.from_pylist(moved)
            tx.register("_oneid_moved", t)
            tx.execute(
                "UPDATE identities SET customer_id = m.c FROM _oneid_moved m "
                "WHERE identities.brand_id = ? AND identities.id_type = m.t AND identities.id_value = m.v",
                [brand_id],
            )
            tx.unregister("_oneid_moved")
            tx.execute(
                "DELETE FROM customers WHERE brand_id = ? AND list_contains(?, customer_id)", [brand_id, list(profiles)]
            )
            _insert_rows(tx, "customers", [p.row(brand_id, c) for c, p in profiles.items()], _CUSTOMER_SCHEMA)
            tx.execute(
                """UPDATE customers SET created_at = x.f, updated_at = coalesce(updated_at, x.f)
                   FROM (SELECT customer_id, min(first_seen_at) AS f FROM identities
                         WHERE brand_id = ? AND list_contains(?, customer_id) GROUP BY 1) x
                   WHERE customers.brand_id = ? AND customers.customer_id = x.customer_id""",
                [brand_id, list(profiles), brand_id],
            )
            if undo:
                tx.execute(
                    "UPDATE identity_merges SET undone_at = ? WHERE brand_id = ? AND list_contains(?, merge_id)",
                    [at, brand_id, undo],
                )
        _drop_index(ctx, brand_id)
    from siyu.services import audit

    detail = {
        "new_customer_id": new_id,
        "identifiers": [f"{t}:{v}" for t, v in sorted(off)],
        "merges_undone": len(undo),
        "reason": reason,
    }
    audit.record(ctx, brand_id, actor, "oneid.split", customer_id, detail)
    return new_id


def _check_splittable(brand_id: str, off: set[Key], nodes: set[Key]) -> None:
    """Refuse to split identifiers that no observation links (none recorded, trust 0 in the brand's policy now, or
    shared by too many people): OneID holds no evidence to move, so a split would change nothing."""
    for t, v in sorted(off - nodes):
        raise SiyuError(
            f"{t}:{v} has no observation OneID can link (none recorded, or its type now has trust 0 or the value is "
            f"shared), so there is nothing to split off; name an identifier with observations "
            f"(`siyu oneid show {brand_id} {t}:{v}`), or run `siyu oneid rebuild {brand_id}` to drop stale ones",
            field="identifiers",
        )


def _insert_splits(tx: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> None:
    cols = ["brand_id", "a_type", "a_value", "b_type", "b_value", "created_at", "reason"]
    data = pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in rows])
    tx.register("_oneid_splits", data)
    tx.execute(f"INSERT INTO identity_splits ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _oneid_splits")
    tx.unregister("_oneid_splits")


# --------------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Observation:
    """Identifiers seen together in one record, ready for ``identity_observations``."""

    source_kind: str
    source_ref: str
    observed_at: datetime
    identifiers: tuple[Identity, ...]
    traits: dict[str, Any] = field(default_factory=dict)


_OBS_SCHEMA = pa.schema(
    [
        ("brand_id", pa.string()),
        ("source_kind", pa.string()),
        ("source_ref", pa.string()),
        ("observed_at", pa.timestamp("us")),
        ("identifiers", pa.list_(pa.struct([("type", pa.string()), ("value", pa.string())]))),
        ("traits", pa.string()),
    ]
)
OBSERVATION_SCHEMA = _OBS_SCHEMA  # the columns of ``add_observation_table``


def add_observations(tx: duckdb.DuckDBPyConnection, brand_id: str, observations: Iterable[Observation]) -> int:
    """Bulk-insert observations inside the caller's transaction (obs_id comes from the sequence).

    Hold ``ctx.warehouse.write_lock`` around that transaction, or use ``observation_transaction`` (short lock,
    for writers that must not wait for a OneID run), so OneID never sees an obs_id gap below its watermark (a late
    commit under the watermark is detected and forces a full rebuild)."""
    rows = [
        {
            "brand_id": brand_id,
            "source_kind": o.source_kind,
            "source_ref": o.source_ref,
            "observed_at": o.observed_at,
            "identifiers": [{"type": i.type, "value": i.value} for i in o.identifiers],
            "traits": orjson.dumps(o.traits, default=str).decode() if o.traits else None,
        }
        for o in observations
    ]
    if not rows:
        return 0
    return add_observation_table(tx, pa.Table.from_pylist(rows, schema=_OBS_SCHEMA))


def add_observation_table(tx: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """``add_observations`` for rows already in Arrow (``OBSERVATION_SCHEMA``: bulk writers skip the Python rows)."""
    if not table.num_rows:
        return 0
    name = f"_oneid_obs_{uuid.uuid4().hex[:8]}"
    tx.register(name, table.cast(_OBS_SCHEMA))
    try:
        tx.execute(
            "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
            f"SELECT brand_id, source_kind, source_ref, observed_at, identifiers, CAST(traits AS JSON) FROM {name}"
        )
    finally:
        tx.unregister(name)
    return table.num_rows
