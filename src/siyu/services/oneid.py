"""OneID: resolve identity observations into customers (incremental, full rebuild, split, look-ups).

Records never store a customer id: they keep raw identifiers and join ``identities``.  This module maintains
``identities`` / ``customers`` / ``identity_merges`` / ``identity_conflicts`` / ``identity_splits`` and the
per-brand watermark ``oneid_state``.  Partitioning is done by ``siyu.domain.oneid.resolve`` (rebuild, split) and
by an in-memory per-brand index for incremental resolution (``resolve_pending``).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from siyu.domain import oneid as algo
from siyu.domain.identity import IdentifierError, OneIdPolicy
from siyu.domain.models import Identity
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError

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
    identifiers: list[Identity]
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
    ids_by_obs: dict[int, list[Identity]] = {}
    for oid, t, v in zip(
        flat.column(0).to_pylist(), flat.column(1).to_pylist(), flat.column(2).to_pylist(), strict=True
    ):
        if t and v:
            ids_by_obs.setdefault(oid, []).append(Identity(t, v))
    out: list[_Obs] = []
    for oid, at, kind, ref, traits in zip(*(meta.column(k).to_pylist() for k in range(5)), strict=True):
        out.append(_Obs(oid, at, kind, ref, ids_by_obs.get(oid, []), _parse_traits(traits)))
    return out


def _load_splits(cur: duckdb.DuckDBPyConnection, brand_id: str) -> list[tuple[Identity, Identity]]:
    rows = cur.execute(
        "SELECT a_type, a_value, b_type, b_value FROM identity_splits WHERE brand_id = ?", [brand_id]
    ).fetchall()
    return [(Identity(r[0], r[1]), Identity(r[2], r[3])) for r in rows]


def _watermark(cur: duckdb.DuckDBPyConnection, brand_id: str) -> int:
    row = cur.execute("SELECT last_obs_id FROM oneid_state WHERE brand_id = ?", [brand_id]).fetchone()
    return int(row[0]) if row else 0


def _set_watermark(cur: duckdb.DuckDBPyConnection, brand_id: str, obs_id: int) -> None:
    cur.execute("INSERT OR REPLACE INTO oneid_state VALUES (?, ?, ?)", [brand_id, obs_id, now()])


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

    def observe(self, obs: _Obs, own: Iterable[Identity]) -> None:
        """Apply an observation: newer traits win, older ones only fill gaps."""
        newer = self.updated_at is None or obs.observed_at >= self.updated_at
        for k, v in obs.traits.items():
            if v is None or v == "":
                continue
            if newer or k not in self.traits:
                self.traits[k] = v
        for ident in own:
            if ident.type == "phone" and (newer or self.phone is None):
                self.phone = ident.value
            elif ident.type == "email" and (newer or self.email is None):
                self.email = ident.value
        self.see(obs.observed_at)

    def see(self, at: datetime) -> None:
        self.created_at = at if self.created_at is None else min(self.created_at, at)
        self.updated_at = at if self.updated_at is None else max(self.updated_at, at)

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
        for at in (other.created_at, other.updated_at):
            if at is not None:
                self.see(at)

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


def _insert_rows(cur: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """Bulk insert dict rows through an Arrow table (no executemany loops)."""
    if not rows:
        return
    data = pa.Table.from_pylist(rows, schema=schema)
    name = f"_oneid_{table}_{uuid.uuid4().hex[:8]}"
    cur.register(name, data)
    try:
        cols = ", ".join(schema.names)
        select = ", ".join("CAST(traits AS JSON)" if c == "traits" else c for c in schema.names)
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {select} FROM {name}")
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


def _merge_row(
    brand_id: str,
    survivor: str,
    absorbed: str,
    absorbed_id: Identity | None,
    other_id: Identity | None,
    obs: _Obs | None,
) -> dict[str, Any]:
    rule = f"link:{absorbed_id.type}~{other_id.type}" if absorbed_id and other_id else "link"
    return {
        "brand_id": brand_id,
        "merge_id": uuid.uuid4().hex,
        "customer_id": survivor,
        "absorbed_customer_id": absorbed,
        "rule": rule,
        "id_type": absorbed_id.type if absorbed_id else None,
        "id_value": absorbed_id.value if absorbed_id else None,
        "source_kind": obs.source_kind if obs else None,
        "source_ref": obs.source_ref if obs else None,
        "merged_at": now(),
        "undone_at": None,
        "other_type": other_id.type if other_id else None,
        "other_value": other_id.value if other_id else None,
        "obs_id": obs.obs_id if obs else None,
    }


def _conflict_row(
    brand_id: str,
    reason: str,
    ident: Identity,
    other: Identity | None,
    customer_id: str | None,
    other_customer_id: str | None,
    obs: _Obs | None,
) -> dict[str, Any]:
    return {
        "brand_id": brand_id,
        "conflict_id": uuid.uuid4().hex,
        "customer_id": customer_id,
        "other_customer_id": other_customer_id,
        "id_type": ident.type,
        "id_value": ident.value,
        "reason": reason,
        "source_kind": obs.source_kind if obs else None,
        "source_ref": obs.source_ref if obs else None,
        "detected_at": now(),
        "resolved_at": None,
        "other_type": other.type if other else None,
        "other_value": other.value if other else None,
    }


def _limit_reason(id_type: str | None, policy: OneIdPolicy) -> str:
    mx = policy.of(id_type or "").max_per_person
    return f"max_per_person:{id_type}:{mx}"


def _owner(ids: Iterable[Identity], cust_of: Callable[[Identity], str | None], policy: OneIdPolicy) -> str | None:
    """The customer an observation's traits belong to: that of its most trusted resolved identifier."""
    best: tuple[int, str, str] | None = None
    owner: str | None = None
    for i in ids:
        c = cust_of(i)
        if c is None:
            continue
        key = (-policy.of(i.type).trust, i.type, i.value)
        if best is None or key < best:
            best, owner = key, c
    return owner


# --------------------------------------------------------------------------------------------------- rebuild


def rebuild(ctx: Context, brand_id: str, progress: Progress | None = None) -> ResolveStats:
    """Recompute the whole partition of a brand from all its observations (keeps customer ids stable:
    an old id stays with the group holding most of its identifiers; when old customers meet, the oldest wins)."""
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    policy = load_policy(ctx, brand_id)
    wh = ctx.warehouse
    with wh.write_lock:
        _drop_index(ctx, brand_id)
        cur = wh.cursor()
        obs = _load_observations(cur, brand_id)
        say(f"loaded {len(obs)} observations")
        splits = _load_splits(cur, brand_id)
        old_map: dict[Identity, str] = {
            Identity(t, v): c
            for t, v, c in cur.execute(
                "SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = ?", [brand_id]
            ).fetchall()
        }
        old_created: dict[str, datetime] = {
            c: at or _FAR_FUTURE
            for c, at in cur.execute(
                "SELECT customer_id, created_at FROM customers WHERE brand_id = ?", [brand_id]
            ).fetchall()
        }
        res = algo.resolve([o.identifiers for o in obs], policy, splits)
        say(f"resolved {len(res.nodes)} identifiers, {len(res.links)} links, {len(res.blocked)} conflicts")
        comps = res.components()
        nodes = res.nodes

        best: dict[str, tuple[int, int, int]] = {}
        for root, members in comps.items():
            counts = Counter(old_map[nodes[m]] for m in members if nodes[m] in old_map)
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
            for root, cx in pending:
                merges.append(_merge_row(brand_id, cid_of_root[root], cx, None, None, None))

        cust_of_node = [cid_of_root[r] for r in res.root]
        index = res.index
        first: list[datetime | None] = [None] * len(nodes)
        last: list[datetime | None] = [None] * len(nodes)
        for o in obs:
            at = o.observed_at
            for i in o.identifiers:
                k = index.get(i)
                if k is None:
                    continue
                f = first[k]
                if f is None or at < f:
                    first[k] = at
                la = last[k]
                if la is None or at > la:
                    last[k] = at
        profiles: dict[str, _Profile] = {c: _Profile() for c in cid_of_root.values()}

        def cust(i: Identity) -> str | None:
            k = index.get(i)
            return None if k is None else cust_of_node[k]

        for o in sorted(obs, key=lambda o: (o.observed_at, o.obs_id)):
            owner = _owner(o.identifiers, cust, policy)
            if owner is not None:
                profiles[owner].observe(o, [i for i in o.identifiers if cust(i) == owner])

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
        for s in sorted(res.shared, key=lambda i: (i.type, i.value)):
            mx = policy.of(s.type).max_people_per_value
            conflicts.append(_conflict_row(brand_id, f"shared:{s.type}:{mx}", s, None, None, None, None))

        id_rows = [
            {
                "brand_id": brand_id,
                "id_type": n.type,
                "id_value": n.value,
                "customer_id": cust_of_node[k],
                "first_seen_at": first[k],
                "last_seen_at": last[k],
            }
            for k, n in enumerate(nodes)
        ]
        cust_rows = [p.row(brand_id, c) for c, p in profiles.items()]
        say(f"writing {len(id_rows)} identities, {len(cust_rows)} customers")
        last_obs = max((o.obs_id for o in obs), default=_watermark(cur, brand_id))
        with wh.transaction() as tx:
            tx.execute("DELETE FROM identities WHERE brand_id = ?", [brand_id])
            _insert_rows(tx, "identities", id_rows, _IDENTITY_SCHEMA)
            tx.execute("DELETE FROM customers WHERE brand_id = ?", [brand_id])
            _insert_rows(tx, "customers", cust_rows, _CUSTOMER_SCHEMA)
            tx.execute("DELETE FROM identity_conflicts WHERE brand_id = ? AND resolved_at IS NULL", [brand_id])
            _insert_rows(tx, "identity_conflicts", conflicts, _CONFLICT_SCHEMA)
            _insert_rows(tx, "identity_merges", merges, _MERGE_SCHEMA)
            _set_watermark(tx, brand_id, last_obs)
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


# --------------------------------------------------------------------------------------------------- incremental


@dataclass
class _Index:
    """A brand's resolved state in memory, for millisecond incremental resolution."""

    policy: OneIdPolicy
    watermark: int
    cust_of: dict[Identity, str]
    members: dict[str, set[Identity]]
    created: dict[str, datetime]
    forb: dict[Identity, set[Identity]]
    co: dict[Identity, dict[str, set[str]]]
    shared: set[Identity]
    open_conflicts: set[tuple[str, str, str, str | None, str | None]]

    def values(self, cid: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for m in self.members[cid]:
            if self.policy.of(m.type).max_per_person is not None:
                out.setdefault(m.type, set()).add(m.value)
        return out


def _indexes(ctx: Context) -> dict[str, _Index]:
    return ctx.extras.setdefault("oneid_index", {})  # type: ignore[no-any-return]


def _drop_index(ctx: Context, brand_id: str) -> None:
    _indexes(ctx).pop(brand_id, None)


def _load_index(ctx: Context, brand_id: str, policy: OneIdPolicy, watermark: int) -> _Index:
    cur = ctx.warehouse.cursor()
    cust_of: dict[Identity, str] = {}
    members: dict[str, set[Identity]] = {}
    for t, v, c in cur.execute(
        "SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = ?", [brand_id]
    ).fetchall():
        i = Identity(t, v)
        cust_of[i] = c
        members.setdefault(c, set()).add(i)
    created = {
        c: at or _FAR_FUTURE
        for c, at in cur.execute(
            "SELECT customer_id, created_at FROM customers WHERE brand_id = ?", [brand_id]
        ).fetchall()
    }
    for c in members:
        created.setdefault(c, _FAR_FUTURE)
    forb: dict[Identity, set[Identity]] = {}
    for a, b in _load_splits(cur, brand_id):
        forb.setdefault(a, set()).add(b)
        forb.setdefault(b, set()).add(a)
    limited = sorted({t for t in cust_of_types(cur, brand_id) if policy.of(t).max_people_per_value is not None})
    anchors = sorted({t for t in cust_of_types(cur, brand_id) if algo.is_anchor(t, policy)})
    co: dict[Identity, dict[str, set[str]]] = {}
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
            co.setdefault(Identity(st, sv), {}).setdefault(at, set()).add(av)
    shared = set()
    for s, d in co.items():
        mx = policy.of(s.type).max_people_per_value
        if mx is not None and d and max(len(v) for v in d.values()) > mx:
            shared.add(s)
    open_conflicts = {
        (r[0], r[1], r[2], r[3], r[4])
        for r in cur.execute(
            "SELECT reason, id_type, id_value, other_type, other_value FROM identity_conflicts "
            "WHERE brand_id = ? AND resolved_at IS NULL",
            [brand_id],
        ).fetchall()
    }
    return _Index(policy, watermark, cust_of, members, created, forb, co, shared, open_conflicts)


def cust_of_types(cur: duckdb.DuckDBPyConnection, brand_id: str) -> list[str]:
    """Identifier types present in a brand's observations."""
    rows = cur.execute(
        "SELECT DISTINCT i.type FROM (SELECT unnest(identifiers) AS i FROM identity_observations WHERE brand_id = ?)",
        [brand_id],
    ).fetchall()
    return [r[0] for r in rows]


def resolve_pending(ctx: Context, brand_id: str) -> ResolveStats:
    """Resolve the observations recorded since the last resolution (incremental, milliseconds).

    Links are applied in canonical order within the batch; a link that would break a limit or an operator split
    is recorded as a conflict and skipped.  Without conflicts the result equals ``rebuild``.
    """
    t0 = time.perf_counter()
    wh = ctx.warehouse
    with wh.write_lock:
        cur = wh.cursor()
        mark = _watermark(cur, brand_id)
        idx = _indexes(ctx).get(brand_id)
        if idx is None or idx.watermark != mark:
            idx = _load_index(ctx, brand_id, load_policy(ctx, brand_id), mark)
            _indexes(ctx)[brand_id] = idx
        obs = _load_observations(cur, brand_id, "AND obs_id > ?", [mark])
        stats = ResolveStats(brand_id=brand_id, mode="incremental", observations=len(obs), last_obs_id=mark)
        if not obs:
            stats.elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
            return stats
        try:
            _apply(ctx, brand_id, idx, obs, stats)
        except BaseException:
            _drop_index(ctx, brand_id)
            raise
    stats.elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
    return stats


def _apply(ctx: Context, brand_id: str, idx: _Index, obs: list[_Obs], stats: ResolveStats) -> None:
    policy = idx.policy
    conflicts: list[dict[str, Any]] = []

    def conflict(reason: str, a: Identity, b: Identity | None, ca: str | None, cb: str | None, o: _Obs | None) -> None:
        key = (reason, a.type, a.value, b.type if b else None, b.value if b else None)
        if key in idx.open_conflicts:
            return
        idx.open_conflicts.add(key)
        conflicts.append(_conflict_row(brand_id, reason, a, b, ca, cb, o))

    # 1. shared-value detection
    for o in obs:
        limited = [i for i in o.identifiers if policy.of(i.type).max_people_per_value is not None]
        if not limited:
            continue
        anchors = [i for i in o.identifiers if algo.is_anchor(i.type, policy)]
        for s in limited:
            d = idx.co.setdefault(s, {})
            for a in anchors:
                if a != s:
                    d.setdefault(a.type, set()).add(a.value)
            mx = policy.of(s.type).max_people_per_value
            if s not in idx.shared and mx is not None and d and max(len(v) for v in d.values()) > mx:
                idx.shared.add(s)
                stats.shared += 1
                conflict(f"shared:{s.type}:{mx}", s, None, idx.cust_of.get(s), None, o)

    # 2. new identifiers become fresh customers; remember when each identifier was seen
    fresh: set[str] = set()
    seen: dict[Identity, tuple[datetime, datetime]] = {}
    new_ids: set[Identity] = set()
    for o in obs:
        for i in o.identifiers:
            if i not in idx.cust_of:
                if not algo.linkable(i, policy) or i in idx.shared:
                    continue
                cid = new_customer_id()
                idx.cust_of[i] = cid
                idx.members[cid] = {i}
                idx.created[cid] = o.observed_at
                fresh.add(cid)
                new_ids.add(i)
            f, la = seen.get(i, (o.observed_at, o.observed_at))
            seen[i] = (min(f, o.observed_at), max(la, o.observed_at))
            if idx.cust_of[i] in fresh:
                idx.created[idx.cust_of[i]] = min(idx.created[idx.cust_of[i]], o.observed_at)

    # 3. links in canonical order
    pairs: dict[tuple[Identity, Identity], int] = {}
    for oi, o in enumerate(obs):
        ids = sorted(
            {i for i in o.identifiers if i in idx.cust_of and i not in idx.shared and algo.linkable(i, policy)},
            key=lambda i: (i.type, i.value),
        )
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pairs.setdefault((ids[x], ids[y]), oi)

    def key(p: tuple[Identity, Identity]) -> tuple[int, int, str, str, str, str]:
        ta, tb = policy.of(p[0].type).trust, policy.of(p[1].type).trust
        return (-min(ta, tb), -max(ta, tb), p[0].type, p[0].value, p[1].type, p[1].value)

    merges: list[dict[str, Any]] = []
    absorbed_persisted: dict[str, Identity] = {}  # absorbed stored customer → one of its identifiers
    for a, b in sorted(pairs, key=key):
        ca, cb = idx.cust_of[a], idx.cust_of[b]
        if ca == cb:
            continue
        o = obs[pairs[(a, b)]]
        ma, mb = idx.members[ca], idx.members[cb]
        small, other = (ma, cb) if len(ma) <= len(mb) else (mb, ca)
        if any(idx.cust_of.get(p) == other for m in small for p in idx.forb.get(m, ())):
            continue  # an operator split says these people are different
        va, vb = idx.values(ca), idx.values(cb)
        broken = next(
            (t for t, s in va.items() if t in vb and len(s | vb[t]) > (policy.of(t).max_per_person or 0)), None
        )
        if broken is not None:
            conflict(_limit_reason(broken, policy), b, a, cb, ca, o)
            continue
        s_id, x_id = sorted((ca, cb), key=lambda c: (c in fresh, idx.created.get(c, _FAR_FUTURE), c))
        absorbed_side, survivor_side = (a, b) if ca == x_id else (b, a)
        for m in idx.members[x_id]:
            idx.cust_of[m] = s_id
        idx.members[s_id] |= idx.members.pop(x_id)
        idx.created[s_id] = min(idx.created[s_id], idx.created.pop(x_id))
        if x_id in fresh:
            fresh.discard(x_id)
        else:
            absorbed_persisted[x_id] = absorbed_side
            merges.append(_merge_row(brand_id, s_id, x_id, absorbed_side, survivor_side, o))

    # 4. profiles of the affected customers
    affected: set[str] = {idx.cust_of[i] for i in seen if i in idx.cust_of}
    stored_ids = sorted((affected - fresh) | set(absorbed_persisted))
    cur = ctx.warehouse.cursor()
    profiles: dict[str, _Profile] = {}
    stored: dict[str, _Profile] = {}
    if stored_ids:
        for row in cur.execute(
            "SELECT customer_id, CAST(traits AS VARCHAR), created_at, updated_at, phone, email FROM customers "
            "WHERE brand_id = ? AND list_contains(?, customer_id)",
            [brand_id, stored_ids],
        ).fetchall():
            stored[row[0]] = _Profile(_parse_traits(row[1]), row[2], row[3], row[4], row[5])
    for c in affected:
        profiles[c] = stored.get(c) or _Profile()
    for x_id, ident in absorbed_persisted.items():
        final = idx.cust_of[ident]
        if x_id in stored:
            profiles.setdefault(final, _Profile()).absorb(stored[x_id])

    def cust(i: Identity) -> str | None:
        return idx.cust_of.get(i)

    for o in sorted(obs, key=lambda o: (o.observed_at, o.obs_id)):
        owner = _owner(o.identifiers, cust, policy)
        if owner is not None:
            profiles.setdefault(owner, _Profile()).observe(o, [i for i in o.identifiers if cust(i) == owner])

    remap = [{"old": x, "new": idx.cust_of[ident]} for x, ident in absorbed_persisted.items()]
    id_rows = [
        {
            "brand_id": brand_id,
            "id_type": i.type,
            "id_value": i.value,
            "customer_id": idx.cust_of[i],
            "first_seen_at": seen[i][0],
            "last_seen_at": seen[i][1],
        }
        for i in new_ids
    ]
    seen_rows = [
        {"id_type": i.type, "id_value": i.value, "f": f, "l": la} for i, (f, la) in seen.items() if i not in new_ids
    ]
    cust_rows = [p.row(brand_id, c) for c, p in profiles.items()]
    last_obs = max(o.obs_id for o in obs)
    with ctx.warehouse.transaction() as tx:
        if remap:
            t = pa.Table.from_pylist(remap)
            tx.register("_oneid_remap", t)
            tx.execute(
                "UPDATE identities SET customer_id = m.new FROM _oneid_remap m "
                "WHERE identities.brand_id = ? AND identities.customer_id = m.old",
                [brand_id],
            )
            tx.unregister("_oneid_remap")
        _insert_rows(tx, "identities", id_rows, _IDENTITY_SCHEMA)
        if seen_rows:
            t = pa.Table.from_pylist(seen_rows)
            tx.register("_oneid_seen", t)
            tx.execute(
                "UPDATE identities SET first_seen_at = least(coalesce(first_seen_at, s.f), s.f), "
                "last_seen_at = greatest(coalesce(last_seen_at, s.l), s.l) FROM _oneid_seen s "
                "WHERE identities.brand_id = ? AND identities.id_type = s.id_type AND identities.id_value = s.id_value",
                [brand_id],
            )
            tx.unregister("_oneid_seen")
        gone = sorted(set(profiles) | set(absorbed_persisted))
        tx.execute("DELETE FROM customers WHERE brand_id = ? AND list_contains(?, customer_id)", [brand_id, gone])
        _insert_rows(tx, "customers", cust_rows, _CUSTOMER_SCHEMA)
        _insert_rows(tx, "identity_conflicts", conflicts, _CONFLICT_SCHEMA)
        _insert_rows(tx, "identity_merges", merges, _MERGE_SCHEMA)
        _set_watermark(tx, brand_id, last_obs)
    idx.watermark = last_obs
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
        return idx.cust_of.get(identity)
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
    return [{"type": r[0], "value": r[1], "first_seen_at": r[2], "last_seen_at": r[3]} for r in rows]


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


def split(ctx: Context, brand_id: str, customer_id: str, identifiers: list[Identity], reason: str) -> str:
    """Undo a wrong merge: the named identifiers leave the customer and get a new customer id.

    Records must-not-link constraints (identity_splits) between them and the identifiers that stay, recomputes
    that customer's group, and marks merges whose evidence now spans two customers as undone.  Returns the new
    customer id of the split-off identifiers.
    """
    if not identifiers:
        raise SiyuError("name at least one identifier to split off (type:value)", field="identifiers")
    if not reason.strip():
        raise SiyuError("give a reason for the split (kept in the audit trail)", field="reason")
    resolve_pending(ctx, brand_id)
    policy = load_policy(ctx, brand_id)
    wh = ctx.warehouse
    with wh.write_lock:
        cur = wh.cursor()
        members = {
            Identity(t, v)
            for t, v in cur.execute(
                "SELECT id_type, id_value FROM identities WHERE brand_id = ? AND customer_id = ?",
                [brand_id, customer_id],
            ).fetchall()
        }
        if not members:
            raise NotFound(f"customer {customer_id!r} does not exist in brand {brand_id!r}", field="customer_id")
        off = set(identifiers)
        for i in sorted(off, key=lambda i: (i.type, i.value)):
            if i not in members:
                raise SiyuError(
                    f"{i.type}:{i.value} is not an identifier of customer {customer_id}; "
                    f"see `siyu oneid show {brand_id} <type:value>`",
                    field="identifiers",
                )
        stay = members - off
        if not stay:
            raise SiyuError("at least one identifier must stay with the customer", field="identifiers")
        at = now()
        split_rows = [
            (brand_id, a.type, a.value, b.type, b.value, at, reason)
            for a in sorted(off, key=lambda i: (i.type, i.value))
            for b in sorted(stay, key=lambda i: (i.type, i.value))
        ]
        reg = pa.table({"t": [m.type for m in members], "v": [m.value for m in members]})
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
        constraints += [(Identity(r[1], r[2]), Identity(r[3], r[4])) for r in split_rows]
        res = algo.resolve([o.identifiers for o in obs], policy, constraints, restrict_to=members)
        comps = res.components()
        # the group holding most staying identifiers keeps the id; every other group gets a new one
        keep_root = max(
            comps,
            key=lambda r: (sum(1 for m in comps[r] if res.nodes[m] in stay), -comps[r][0]),
        )
        cid_of_root = {r: (customer_id if r == keep_root else new_customer_id()) for r in comps}
        cust_of = {res.nodes[k]: cid_of_root[r] for k, r in enumerate(res.root)}
        # identifiers of the customer that are no longer nodes (e.g. now shared) go with the staying group
        for m in members:
            cust_of.setdefault(m, customer_id)
        profiles: dict[str, _Profile] = {c: _Profile() for c in cid_of_root.values()}
        for o in sorted(obs, key=lambda o: (o.observed_at, o.obs_id)):
            owner = _owner(o.identifiers, cust_of.get, policy)
            if owner is not None:
                profiles[owner].observe(o, [i for i in o.identifiers if cust_of.get(i) == owner])
        moved = [{"t": i.type, "v": i.value, "c": c} for i, c in cust_of.items() if c != customer_id]
        history = merge_history(ctx, brand_id, customer_id)
        undo = [
            h["merge_id"]
            for h in history
            if h["undone_at"] is None
            and h["id_type"] is not None
            and h["other_type"] is not None
            and cust_of.get(Identity(h["id_type"], h["id_value"]), "?")
            != cust_of.get(Identity(h["other_type"], h["other_value"]), "?")
        ]
        new_id = cust_of[sorted(off, key=lambda i: (i.type, i.value))[0]]
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
            if undo:
                tx.execute(
                    "UPDATE identity_merges SET undone_at = ? WHERE brand_id = ? AND list_contains(?, merge_id)",
                    [at, brand_id, undo],
                )
        _drop_index(ctx, brand_id)
    return new_id


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


def add_observations(tx: duckdb.DuckDBPyConnection, brand_id: str, observations: Iterable[Observation]) -> int:
    """Bulk-insert observations inside the caller's transaction (obs_id comes from the sequence)."""
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
    name = f"_oneid_obs_{uuid.uuid4().hex[:8]}"
    tx.register(name, pa.Table.from_pylist(rows, schema=_OBS_SCHEMA))
    try:
        tx.execute(
            "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
            f"SELECT brand_id, source_kind, source_ref, observed_at, identifiers, CAST(traits AS JSON) FROM {name}"
        )
    finally:
        tx.unregister(name)
    return len(rows)
