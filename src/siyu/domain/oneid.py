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

from siyu.domain.identity import OneIdPolicy
from siyu.domain.models import Identity

MUST_NOT_LINK = "must_not_link"
LIMIT = "limit"


@dataclass(frozen=True)
class Link:
    """An accepted link between nodes ``a`` and ``b``, first evidenced by observation number ``obs``."""

    a: int
    b: int
    obs: int


@dataclass(frozen=True)
class Blocked:
    """A candidate link that was refused: ``reason`` is LIMIT (``id_type`` over its limit) or MUST_NOT_LINK."""

    a: int
    b: int
    obs: int
    reason: str
    id_type: str | None = None


@dataclass
class Resolution:
    """The result of ``resolve``: nodes (identifiers, canonical order) and the component root of each."""

    nodes: list[Identity]
    root: list[int]
    links: list[Link] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    shared: set[Identity] = field(default_factory=set)
    index: dict[Identity, int] = field(default_factory=dict)

    def components(self) -> dict[int, list[int]]:
        """Component root → member node numbers (ascending)."""
        out: dict[int, list[int]] = {}
        for i, r in enumerate(self.root):
            out.setdefault(r, []).append(i)
        return out

    def partition(self) -> set[frozenset[Identity]]:
        """The partition as a set of identifier sets (what order-independence is about)."""
        return {frozenset(self.nodes[i] for i in members) for members in self.components().values()}


def linkable(identity: Identity, policy: OneIdPolicy) -> bool:
    """Whether an identifier's type may ever link two identifiers (trust > 0)."""
    return policy.of(identity.type).trust > 0


def is_anchor(id_type: str, policy: OneIdPolicy) -> bool:
    """Anchor types are person-bound (they have a per-person limit); shared-value detection counts them."""
    p = policy.of(id_type)
    return p.trust > 0 and p.max_per_person is not None


def shared_values(observations: Iterable[Sequence[Identity]], policy: OneIdPolicy) -> set[Identity]:
    """Identifiers whose type has ``max_people_per_value`` and that co-occur with more distinct anchor values
    of one type (e.g. more than 3 different user_ids) than that limit: they are shared, not a person's own."""
    co: dict[Identity, dict[str, set[str]]] = {}
    for ids in observations:
        limited = [i for i in ids if policy.of(i.type).max_people_per_value is not None]
        if not limited:
            continue
        anchors = [i for i in ids if is_anchor(i.type, policy)]
        for s in limited:
            d = co.setdefault(s, {})
            for a in anchors:
                if a != s:
                    d.setdefault(a.type, set()).add(a.value)
    out: set[Identity] = set()
    for s, d in co.items():
        limit = policy.of(s.type).max_people_per_value
        if limit is not None and d and max(len(v) for v in d.values()) > limit:
            out.add(s)
    return out


def resolve(
    observations: Sequence[Sequence[Identity]],
    policy: OneIdPolicy,
    must_not_link: Iterable[tuple[Identity, Identity]] = (),
    restrict_to: set[Identity] | None = None,
) -> Resolution:
    """Partition the identifiers of ``observations`` into people.

    ``restrict_to`` limits the nodes (and links) to those identifiers; shared-value detection still counts
    every observation given.  Evidence of a link is the first observation (by position) that shows it.
    """
    shared = shared_values(observations, policy)
    uniq: set[Identity] = set()
    for ids in observations:
        uniq.update(ids)
    uniq -= shared
    uniq = {i for i in uniq if linkable(i, policy)}
    if restrict_to is not None:
        uniq &= restrict_to
    nodes = sorted(uniq, key=lambda i: (i.type, i.value))
    index = {n: k for k, n in enumerate(nodes)}
    n = len(nodes)
    trust = [policy.of(x.type).trust for x in nodes]

    pairs: dict[tuple[int, int], int] = {}
    for oi, ids in enumerate(observations):
        idx = sorted({index[i] for i in ids if i in index})
        for x in range(len(idx)):
            ax = idx[x]
            for y in range(x + 1, len(idx)):
                p = (ax, idx[y])
                if p not in pairs:
                    pairs[p] = oi

    def key(p: tuple[int, int]) -> tuple[int, int, int, int]:
        ta, tb = trust[p[0]], trust[p[1]]
        return (-min(ta, tb), -max(ta, tb), p[0], p[1])

    order = sorted(pairs, key=key)

    parent = list(range(n))
    size = [1] * n
    # per-root values of limited types: {type: {value}}
    limits: dict[str, int] = {}
    vals: dict[int, dict[str, set[str]]] = {}
    for k, node in enumerate(nodes):
        mx = policy.of(node.type).max_per_person
        if mx is not None:
            limits[node.type] = mx
            vals[k] = {node.type: {node.value}}
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

    res = Resolution(nodes=nodes, root=[], shared=shared, index=index)
    for a, b in order:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        oi = pairs[(a, b)]
        fa, fb = forb.get(ra), forb.get(rb)
        if fa and fb:
            small, other = (fa, rb) if len(fa) <= len(fb) else (fb, ra)
            if any(find(x) == other for x in small):
                res.blocked.append(Blocked(a, b, oi, MUST_NOT_LINK))
                continue
        va, vb = vals.get(ra), vals.get(rb)
        broken: str | None = None
        if va and vb:
            for t, sa in va.items():
                sb = vb.get(t)
                if sb is not None and len(sa | sb) > limits[t]:
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
                for t, s in vb.items():
                    va.setdefault(t, set()).update(s)
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
