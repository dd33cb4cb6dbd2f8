"""The demo brand's showcase: after the base seed, every capability gets believable data through its services
(campaigns, scripts, follow-ups, pool, Moments, journeys, channel codes). Idempotent: each part is skipped when
its data exists already. Run by ``siyu demo up`` (``siyu demo seed --showcase``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from siyu.connectors.wecom.client import WeComClient
from siyu.domain.models import Role
from siyu.services.brands import User, get_user
from siyu.services.context import Context
from siyu.services.customers import guide_scope
from siyu.services.demo import showcase_campaigns as camp
from siyu.services.demo import showcase_work as work
from siyu.services.demo.seed import demo_logins
from siyu.stores.state.models import UserRow

PARTS = ("assist", "group_buy", "scripts", "followups", "pool", "journeys", "moments", "codes", "behavior", "clv")


@dataclass
class ShowcaseResult:
    """What each part created (empty when it existed already) and how long the showcase took."""

    brand_id: str
    parts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def created(self) -> bool:
        return any(bool(v) for v in self.parts.values())


def _users(ctx: Context, brand_id: str) -> tuple[User, list[User]]:
    names = [x.username for x in demo_logins(brand_id)]
    with ctx.sessions() as s:
        rows = {r.username: r.id for r in s.scalars(select(UserRow).where(UserRow.username.in_(names)))}
    users = [get_user(ctx, rows[n]) for n in names if n in rows]
    operator = next(u for u in users if u.role == Role.OPERATOR)
    return operator, [u for u in users if u.role == Role.GUIDE]


# A customer's id is new on every build (OneID makes it), its identifiers are not: the showcase picks people by a
# key made of them, so every `siyu demo up` shows the same people (hash: a spread-out sample, not the first phones).
_STABLE_KEY = (
    "SELECT customer_id, hash(min(id_type || ':' || id_value)) AS k FROM identities WHERE brand_id = ? "
    "GROUP BY customer_id"
)


def _own_customers(ctx: Context, guides: list[User], n: int = 60) -> dict[str, list[str]]:
    """Up to ``n`` of each of the first three guides' own customers, the same people on every build."""
    out: dict[str, list[str]] = {}
    ids = ctx.warehouse.table("identities")
    for g in guides[:3]:
        scope = guide_scope(ctx, g)
        assert scope is not None
        mine = ids.filter(ids.brand_id == g.brand_id)
        keys = mine.group_by("customer_id").aggregate(k=(mine.id_type + ":" + mine.id_value).min().hash())
        picked = scope.join(keys, "customer_id").order_by(["k", "customer_id"]).limit(n)
        out[g.guide_id or ""] = [str(x) for x in picked.execute()["customer_id"]]
    return out


def _phones(ctx: Context, brand_id: str, n: int) -> list[str]:
    """One phone each of ``n`` customers, the same on every build."""
    rows = ctx.warehouse.fetch(
        "SELECT min(id_value) FROM identities i JOIN (" + _STABLE_KEY + ") s USING (customer_id) "
        "WHERE i.brand_id = ? AND i.id_type = 'phone' GROUP BY i.customer_id ORDER BY min(s.k), min(id_value) "
        "LIMIT ?",
        [brand_id, brand_id, n],
    )
    return [str(r[0]) for r in rows]


def _unrelated(ctx: Context, brand_id: str, n: int) -> list[str]:
    """Customers no guide reaches (no active WeCom relation, in no customer group): pool leads, the same on every
    build."""
    rows = ctx.warehouse.fetch(
        "SELECT c.customer_id FROM customers c JOIN (" + _STABLE_KEY + ") s USING (customer_id) "
        "WHERE c.brand_id = ? AND c.customer_id NOT IN ("
        " SELECT i.customer_id FROM relations r JOIN identities i ON i.brand_id = r.brand_id"
        " AND i.id_type = 'external_userid' AND i.id_value = r.external_userid"
        " WHERE r.brand_id = ? AND r.state = 'active') AND c.customer_id NOT IN ("
        " SELECT i.customer_id FROM group_members m JOIN identities i ON i.brand_id = m.brand_id"
        " AND i.id_type = m.id_type AND i.id_value = m.id_value WHERE m.brand_id = ? AND m.left_at IS NULL)"
        " ORDER BY s.k, c.customer_id LIMIT ?",
        [brand_id, brand_id, brand_id, brand_id, n],
    )
    return [str(r[0]) for r in rows]


def run_showcase(ctx: Context, brand_id: str = "demo", client: WeComClient | None = None) -> ShowcaseResult:
    """Create the showcase data of a seeded demo brand; Moments and channel codes need a WeCom ``client``."""
    started = time.perf_counter()
    operator, guides = _users(ctx, brand_id)
    own = _own_customers(ctx, guides)
    phones = _phones(ctx, brand_id, 400)
    res = ShowcaseResult(brand_id)

    def part(name: str, make: Callable[[], Any]) -> None:
        t = time.perf_counter()
        res.parts[name] = make()
        res.timings[name] = round(time.perf_counter() - t, 2)

    camp.ensure_rewards(ctx, brand_id)
    part("assist", lambda: camp.assist_campaign(ctx, brand_id, phones[:260]))
    part("group_buy", lambda: camp.group_campaign(ctx, brand_id, phones[260:]))
    part("scripts", lambda: work.scripts_library(ctx, operator, guides, own))
    part("followups", lambda: work.followup_records(ctx, guides, own))
    part("pool", lambda: work.customer_pool(ctx, operator, _unrelated(ctx, brand_id, 40)))
    part("journeys", lambda: work.journeys(ctx, operator))
    if client is not None:
        part("moments", lambda: work.moments_task(ctx, operator, client))
        part("codes", lambda: work.channel_code_set(ctx, brand_id, client))
        part("behavior", lambda: work.guide_behavior(ctx, brand_id, client))
    part("clv", lambda: clv_fit(ctx, brand_id, operator))  # last: it reads the campaign's orders too
    res.seconds = time.perf_counter() - started
    return res


def clv_fit(ctx: Context, brand_id: str, operator: User) -> dict[str, Any]:
    """A first CLV fit (BG/NBD + Gamma-Gamma, 12 months, the brand's last day as calibration end) when the brand
    has none: the CLV page, LTV vs CAC and each customer's 360 then show predictions (the weekly refit only
    refits brands fitted before). Returns the fit's customers (empty when one existed)."""
    from siyu.services.clv import fitting

    if fitting.latest_fit(ctx, brand_id) is not None:
        return {}
    done = fitting.fit_brand(ctx, brand_id, fitting.FitOptions(), operator.username)
    return {"customers": done["customers"], "repeat_customers": done["repeat_customers"], "status": done["status"]}
