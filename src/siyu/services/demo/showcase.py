"""The demo brand's showcase: after the base seed, every capability gets believable data through its services
(campaigns, scripts, follow-ups, pool, Moments, journeys, channel codes). Idempotent: each part is skipped when
its data exists already. Run by ``siyu demo up`` (``siyu demo seed --showcase``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir
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


def _stable_keys(ctx: Context, brand_id: str) -> ir.Table:
    """``(customer_id, k)``. A customer's id is new on every build (OneID makes it), its identifiers are not: the
    showcase picks people by ``k``, a hash of their smallest identifier, so every `siyu demo up` shows the same
    people (a hash: a spread-out sample, not the first phones)."""
    ids = ctx.warehouse.table("identities")
    mine = ids.filter(ids.brand_id == brand_id)
    return mine.group_by("customer_id").aggregate(k=(mine.id_type + ":" + mine.id_value).min().hash())


def _own_customers(ctx: Context, guides: list[User], n: int = 60) -> dict[str, list[str]]:
    """Up to ``n`` of each of the first three guides' own customers, the same people on every build."""
    out: dict[str, list[str]] = {}
    for g in guides[:3]:
        scope = guide_scope(ctx, g)
        assert scope is not None
        picked = scope.join(_stable_keys(ctx, g.brand_id), "customer_id").order_by(["k", "customer_id"]).limit(n)
        out[g.guide_id or ""] = [str(x) for x in picked.execute()["customer_id"]]
    return out


def _phones(ctx: Context, brand_id: str, n: int) -> list[str]:
    """One phone each of ``n`` customers, the same on every build."""
    ids = ctx.warehouse.table("identities")
    ph = ids.filter((ids.brand_id == brand_id) & (ids.id_type == "phone"))
    per = ph.group_by("customer_id").aggregate(phone=ph.id_value.min())
    picked = per.join(_stable_keys(ctx, brand_id), "customer_id").order_by(["k", "phone"]).limit(n)
    return [str(x) for x in picked.execute()["phone"]]


def _unrelated(ctx: Context, brand_id: str, n: int) -> list[str]:
    """Customers no guide reaches (no active WeCom relation, in no customer group): pool leads, the same on every
    build."""
    wh = ctx.warehouse
    c = wh.table("customers")
    c = c.filter(c.brand_id == brand_id)
    ids = wh.table("identities")
    ids = ids.filter(ids.brand_id == brand_id)
    r = wh.table("relations")
    r = r.filter((r.brand_id == brand_id) & (r.state == "active"))
    contact = ids.filter(ids.id_type == "external_userid")
    related = r.join(contact, r.external_userid == contact.id_value).select(contact.customer_id)
    m = wh.table("group_members")
    m = m.filter((m.brand_id == brand_id) & m.left_at.isnull())
    members = m.join(ids, (m.id_type == ids.id_type) & (m.id_value == ids.id_value)).select(ids.customer_id)
    alone = c.filter(~c.customer_id.isin(related.customer_id) & ~c.customer_id.isin(members.customer_id))
    picked = alone.join(_stable_keys(ctx, brand_id), "customer_id").order_by(["k", "customer_id"]).limit(n)
    return [str(x) for x in picked.execute()["customer_id"]]


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
