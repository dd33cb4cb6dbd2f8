"""A brand's guide-workspace settings (sales stages, pool claim limit and return days, Moments posting windows)
and the lookups every part shares: the brand's guides (with store and region) and whether customers exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from siyu.domain import brand_time
from siyu.domain import guide_work as rules
from siyu.domain.brand_time import DEFAULT_TIMEZONE
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError
from siyu.stores.state.guide_work_models import GuideWorkSettingsRow
from siyu.stores.state.models import utcnow

TZ = ZoneInfo(DEFAULT_TIMEZONE)
MAX_CLAIM_LIMIT = 500
MAX_RETURN_DAYS = 365


@dataclass(frozen=True)
class Settings:
    """The settings of one brand (defaults until an operator changes them)."""

    stages: list[str]
    claim_limit: int = 20
    return_days: int = 7
    moment_windows: tuple[str, ...] = rules.DEFAULT_WINDOWS

    def as_dict(self) -> dict[str, Any]:
        return {
            "stages": list(self.stages),
            "claim_limit": self.claim_limit,
            "return_days": self.return_days,
            "moment_windows": list(self.moment_windows),
        }


def get_settings(ctx: Context, brand_id: str) -> Settings:
    """The brand's settings (defaults when none are stored)."""
    with ctx.sessions() as s:
        r = s.get(GuideWorkSettingsRow, brand_id)
    if r is None:
        return Settings(list(rules.DEFAULT_STAGES))
    return Settings(
        list(r.stages) or list(rules.DEFAULT_STAGES),
        r.claim_limit,
        r.return_days,
        tuple(r.moment_windows or rules.DEFAULT_WINDOWS),
    )


def require_manager(user: User, what: str) -> None:
    """Admins and operators only (Forbidden for guides)."""
    if user.role == Role.GUIDE:
        raise Forbidden(f"only admins and operators can {what}", "role")


def set_settings(
    ctx: Context,
    user: User,
    stages: list[str] | None = None,
    claim_limit: int | None = None,
    return_days: int | None = None,
    moment_windows: list[str] | None = None,
) -> Settings:
    """Change the brand's settings (admins and operators); unchanged fields keep their value."""
    require_manager(user, "change the guide workspace settings")
    cur = get_settings(ctx, user.brand_id)
    if claim_limit is not None and not 1 <= claim_limit <= MAX_CLAIM_LIMIT:
        raise SiyuError(f"claim_limit must be 1..{MAX_CLAIM_LIMIT} leads per guide and day", "claim_limit")
    if return_days is not None and not 1 <= return_days <= MAX_RETURN_DAYS:
        raise SiyuError(f"return_days must be 1..{MAX_RETURN_DAYS} days without a follow-up", "return_days")
    new = Settings(
        rules.check_stages(stages) if stages is not None else cur.stages,
        claim_limit if claim_limit is not None else cur.claim_limit,
        return_days if return_days is not None else cur.return_days,
        tuple(rules.check_windows(moment_windows)) if moment_windows is not None else cur.moment_windows,
    )
    with ctx.sessions() as s, s.begin():
        r = s.get(GuideWorkSettingsRow, user.brand_id)
        if r is None:
            r = GuideWorkSettingsRow(brand_id=user.brand_id, rr_cursor=0)
            s.add(r)
        r.stages, r.claim_limit, r.return_days = list(new.stages), new.claim_limit, new.return_days
        r.moment_windows, r.updated_at = list(new.moment_windows), utcnow()
    return new


@dataclass(frozen=True)
class Guide:
    guide_id: str
    name: str
    store_id: str | None
    region: str | None
    wecom_userid: str | None


def guides(ctx: Context, brand_id: str) -> list[Guide]:
    """The brand's active guides with their store and the store's city (region), by guide_id."""
    g, st = ctx.warehouse.table("guides"), ctx.warehouse.table("stores")
    g = g.filter(g.brand_id == brand_id, g.active.fill_null(True))
    st = st.filter(st.brand_id == brand_id).select(s_store_id=st.store_id, region=st.city)
    x = g.left_join(st, g.store_id == st.s_store_id).select(g.guide_id, g.name, g.store_id, st.region, g.wecom_userid)
    rows = x.order_by("guide_id").to_pyarrow().to_pylist()
    return [Guide(r["guide_id"], r["name"], r["store_id"], r["region"], r["wecom_userid"]) for r in rows]


def guide_map(ctx: Context, brand_id: str) -> dict[str, Guide]:
    return {g.guide_id: g for g in guides(ctx, brand_id)}


def existing_customers(ctx: Context, brand_id: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` are customers of the brand."""
    found: set[str] = set()
    c = ctx.warehouse.table("customers")
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        q = c.filter(c.brand_id == brand_id, c.customer_id.isin(chunk)).select("customer_id")
        found |= {str(r["customer_id"]) for r in q.to_pyarrow().to_pylist()}
    return found


def local_day(at: datetime | None = None) -> date:
    """The brand-local (Asia/Shanghai) day of a naive-UTC instant (now when None)."""
    return brand_time.local_day(at or utcnow())


def visible(ctx: Context, user: User, ids: list[str]) -> set[str]:
    """Which of ``ids`` the user may see: customers of the brand, and for a guide only their own
    (``siyu.services.customers.guide_scope``: an active WeCom relation, a member of a group they own, or a pool
    lead they own)."""
    from siyu.services.customers import guide_scope

    known = existing_customers(ctx, user.brand_id, ids)
    scope = guide_scope(ctx, user)
    if scope is None or not known:
        return known
    q = scope.filter(scope.customer_id.isin(sorted(known)))
    return {str(r["customer_id"]) for r in q.to_pyarrow().to_pylist()}


def require_visible(ctx: Context, user: User, customer_id: str) -> None:
    """NotFound unless the user may see the customer (a guide: one of their own)."""
    from siyu.services.errors import NotFound

    if customer_id not in visible(ctx, user, [customer_id]):
        raise NotFound(f"customer {customer_id!r} not found (or not one of your customers)", "customer_id")
