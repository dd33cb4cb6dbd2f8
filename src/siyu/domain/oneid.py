"""OneID resolution algorithm (pure, no I/O).

Observations are sets of identifiers seen together.  Every pair of linkable identifiers in one observation is a
candidate link.  Links are processed in a canonical order — trust of the weaker end descending, then trust of the
stronger end descending, then the identifiers themselves — never in arrival order, so the resulting partition only
depends on the *set* of observations.  A union-find with per-component value sets enforces ``max_per_person``;
identifiers shared by too many people (``max_people_per_value``) and types with trust 0 never link; operator splits
are must-not-link constraints.  A link that would break a limit is returned as ``Blocked`` (a conflict).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from siyu.domain.identity import OneIdPolicy
from siyu.domain.models import Identity

MUST_NOT_LINK = "must_not_link"
LIMIT = "limit"


class Link(NamedTuple):
    """An accepted link between nodes ``a`` and ``b``, first evidenced by observation number ``obs``."""

    a: int
    b: int
    obs: int


class Blocked(NamedTuple):
    """A candidate link that was refused: ``reason`` is LIMIT (``id_type`` over its limit) or MUST_NOT_LINK."""

    a: int
    b: int
    obs: int
    reason: str
    id_type: str | None = None


Key = tuple[str, str]  # (type, value): an identifier as a plain tuple (cheap to hash in bulk)


def key_of(identity: Identity) -> Key:
    """The tuple form of an Identity."""
    return (identity.type, identity.value)


@dataclass
class Resolution:
    """The result of ``resolve``: nodes (identifiers, canonical order) and the component root of each."""

    nodes: list[Key]
    root: list[int]
    links: list[Link] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    shared: set[Key] = field(default_factory=set)
    index: dict[Key, int] = field(default_factory=dict)
    obs_nodes: list[list[int]] = field(default_factory=list)  # per observation: its nodes, ascending

    def components(self) -> dict[int, list[int]]:
        """Component root → member node numbers (ascending)."""
        out: dict[int, list[int]] = {}
        for i, r in enumerate(self.root):
            out.setdefault(r, []).append(i)
        return out

    def partition(self) -> set[frozenset[Key]]:
        """The partition as a set of identifier sets (what order-independence is about)."""
        return {frozenset(self.nodes[i] for i in members) for members in self.components().values()}


class TypeTable:
    """Per-type policy numbers, cached (policy look-ups are hot in bulk resolution)."""

    def __init__(self, policy: OneIdPolicy) -> None:
        self.policy = policy
        self._cache: dict[str, tuple[int, int | None, int | None, bool]] = {}

    def get(self, id_type: str) -> tuple[int, int | None, int | None, bool]:
        """(trust, max_per_person, max_people_per_value, is_anchor) of a type."""
        row = self._cache.get(id_type)
        if row is None:
            p = self.policy.of(id_type)
            row = (p.trust, p.max_per_person, p.max_people_per_value, p.trust > 0 and p.max_per_person is not None)
            self._cache[id_type] = row
        return row


def linkable(id_type: str, policy: OneIdPolicy) -> bool:
    """Whether an identifier type may ever link two identifiers (trust > 0)."""
    return policy.of(id_type).trust > 0


def is_anchor(id_type: str, policy: OneIdPolicy) -> bool:
    """Anchor types are person-bound (they have a per-person limit); shared-value detection counts them."""
    p = policy.of(id_type)
    return p.trust > 0 and p.max_per_person is not None


def add_cooccurrence(co: dict[Key, dict[str, set[str]]], ids: Sequence[Key], types: TypeTable) -> list[Key]:
    """Record which anchor values each limited identifier of one observation was seen with; return the limited
    identifiers of the observation."""
    limited = [k for k in ids if types.get(k[0])[2] is not None]
    if limited:
        anchors = [k for k in ids if types.get(k[0])[3]]
        for s in limited:
            d = co.setdefault(s, {})
            for a in anchors:
                if a != s:
                    d.setdefault(a[0], set()).add(a[1])
    return limited


def is_shared(key: Key, co: dict[Key, dict[str, set[str]]], types: TypeTable) -> bool:
    """Whether a limited identifier co-occurs with more distinct anchor values of one type than allowed."""
    limit = types.get(key[0])[2]
    d = co.get(key)
    return limit is not None and bool(d) and max(len(v) for v in d.values()) > limit  # type: ignore[union-attr]


def shared_values(observations: Iterable[Sequence[Key]], policy: OneIdPolicy) -> set[Key]:
    """Identifiers whose type has ``max_people_per_value`` and that co-occur with more distinct anchor values
    of one type (e.g. more than 3 different user_ids) than that limit: they are shared, not a person's own."""
    types = TypeTable(policy)
    co: dict[Key, dict[str, set[str]]] = {}
    for ids in observations:
        add_cooccurrence(co, ids, types)
    return {s for s in co if is_shared(s, co, types)}


def resolve(
    observations: Sequence[Sequence[Key]],
    policy: OneIdPolicy,
    must_not_link: Iterable[tuple[Key, Key]] = (),
    restrict_to: set[Key] | None = None,
    shared: set[Key] | None = None,
) -> Resolution:
    """Partition the identifiers of ``observations`` into people.

    ``restrict_to`` limits the nodes (and links) to those identifiers; shared-value detection still counts
    every observation given (unless the caller passes ``shared``, e.g. computed set-based by the warehouse).
    Evidence of a link is the first observation (by position) that shows it.
    """
    types = TypeTable(policy)
    if shared is None:
        shared = shared_values(observations, policy)
    trust_of = {t: types.get(t)[0] for t in {k[0] for ids in observations for k in ids}}
    # intern identifiers; -1 marks identifiers that never link (trust 0, shared, outside restrict_to)
    raw: dict[Key, int] = {}
    raw_nodes: list[Key] = []
    obs_raw: list[list[int]] = []
    for ids in observations:
        row: list[int] = []
        for k in ids:
            j = raw.get(k)
            if j is None:
                if k in shared or trust_of[k[0]] <= 0 or (restrict_to is not None and k not in restrict_to):
                    j = -1
                else:
                    j = len(raw_nodes)
                    raw_nodes.append(k)
                raw[k] = j
            if j >= 0:
                row.append(j)
        obs_raw.append(row)
    n = len(raw_nodes)
    order = sorted(range(n), key=raw_nodes.__getitem__)
    rank = [0] * n
    for r, j in enumerate(order):
        rank[j] = r
    nodes = [raw_nodes[j] for j in order]
    index = {k: i for i, k in enumerate(nodes)}
    trust = [trust_of[k[0]] for k in nodes]
    obs_nodes = [sorted({rank[j] for j in row}) for row in obs_raw]

    pairs: dict[int, int] = {}
    for oi, idx in enumerate(obs_nodes):
        m = len(idx)
        if m < 2:
            continue
        for x in range(m):
            base = idx[x] * n
            for y in range(x + 1, m):
                pairs.setdefault(base + idx[y], oi)
    nn = n * n
    top = max(trust, default=0) + 1
    keyed: list[int] = []
    for p in pairs:
        ta, tb = trust[p // n], trust[p % n]
        lo, hi = (ta, tb) if ta <= tb else (tb, ta)
        keyed.append(((top - lo) * (top + 1) + (top - hi)) * nn + p)
    keyed.sort()

    parent = list(range(n))
    size = [1] * n
    limits: dict[str, int] = {}
    for t in {k[0] for k in nodes}:
        mx = types.get(t)[1]
        if mx is not None:
            limits[t] = mx
    # per-root number of distinct values of each limited type (values are nodes, so components are disjoint)
    vals: dict[int, dict[str, int]] = {}

    def vals_of(r: int) -> dict[str, int] | None:
        v = vals.get(r)
        if v is None and size[r] == 1 and nodes[r][0] in limits:
            v = {nodes[r][0]: 1}
            vals[r] = v
        return v

    forb: dict[int, set[int]] = {}
    for x_id, y_id in must_not_link:
        ia, ib = index.get(x_id), index.get(y_id)
        if ia is None or ib is None or ia == ib:
            continue
        forb.setdefault(ia, set()).add(ib)
        forb.setdefault(ib, set()).add(ia)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    res = Resolution(nodes=nodes, root=[], shared=shared, index=index, obs_nodes=obs_nodes)
    for kv in keyed:
        p = kv % nn
        a, b = divmod(p, n)
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        oi = pairs[p]
        fa, fb = forb.get(ra), forb.get(rb)
        if fa and fb:
            small, other = (fa, rb) if len(fa) <= len(fb) else (fb, ra)
            if any(find(x) == other for x in small):
                res.blocked.append(Blocked(a, b, oi, MUST_NOT_LINK))
                continue
        va, vb = vals_of(ra), vals_of(rb)
        broken: str | None = None
        if va and vb:
            for t, na in va.items():
                nb = vb.get(t)
                if nb is not None and na + nb > limits[t]:
                    broken = t
                    break
        if broken is not None:
            res.blocked.append(Blocked(a, b, oi, LIMIT, broken))
            continue
        if size[ra] < size[rb]:
            ra, rb = rb, ra
            va, vb = vb, va
            fa, fb = fb, fa
        parent[rb] = ra
        size[ra] += size[rb]
        if vb:
            if va is None:
                vals[ra] = vb
            else:
                for t, nb in vb.items():
                    va[t] = va.get(t, 0) + nb
        vals.pop(rb, None)
        if fb:
            if fa is None:
                forb[ra] = fb
            else:
                fa.update(fb)
            forb.pop(rb, None)
        res.links.append(Link(a, b, oi))
    res.root = [find(i) for i in range(n)]
    return res


def record_merges(res: Resolution, roots: set[int] | None = None) -> list[Link]:
    """The accepted links that joined two groups of identifiers each already seen in an earlier observation.

    Replays the observations in position (arrival) order over the accepted links: a link whose two ends were
    both known before its evidence observation, and not yet in one group, is a merge of two records' people
    (what an incremental run would have logged had the records arrived one by one).  Returned as
    ``Link(absorbed_end, surviving_end, obs)``: the surviving end is the one of the group first seen earlier.
    ``roots`` limits the replay to those components of ``res``.
    """
    n = len(res.nodes)
    first = [-1] * n
    for oi, members in enumerate(res.obs_nodes):
        for m in members:
            if first[m] < 0:
                first[m] = oi
    by_obs: dict[int, list[Link]] = {}
    for link in res.links:
        if roots is None or res.root[link.a] in roots:
            by_obs.setdefault(link.obs, []).append(link)
    parent = list(range(n))
    since = first[:]  # per group root: the earliest observation of any member

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    out: list[Link] = []
    for oi in sorted(by_obs):
        for link in by_obs[oi]:
            ra, rb = find(link.a), find(link.b)
            if ra == rb:
                continue
            if first[link.a] < oi and first[link.b] < oi:
                older_a = (since[ra], ra) <= (since[rb], rb)
                out.append(Link(link.b, link.a, oi) if older_a else Link(link.a, link.b, oi))
            parent[rb] = ra
            since[ra] = min(since[ra], since[rb])
    return out
