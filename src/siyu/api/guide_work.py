"""The guide workspace over HTTP: follow-ups and sales stages (``/api/followups``), Moments tasks
(``/api/moments``), the customer pool (``/api/pool``) and the guide scorecard, targets, inbox and personal page
(``/api/guides``). The brand is the user's; a guide works on their own customers only (404 otherwise) and cannot
change settings, publish Moments, add or assign leads (403). Bad input is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.validation import RowId
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import followups, inbox, kpis, moments, pool
from siyu.services.guide_work import settings as gw

followups_router = APIRouter(prefix="/api/followups", tags=["guide work"])
moments_router = APIRouter(prefix="/api/moments", tags=["guide work"])
pool_router = APIRouter(prefix="/api/pool", tags=["guide work"])
guides_router = APIRouter(prefix="/api/guides", tags=["guide work"])
routers = (followups_router, moments_router, pool_router, guides_router)

MAX_IDS = pool.MAX_BATCH


# -- follow-ups ------------------------------------------------------------------------------------------------
class FollowupIn(BaseModel):
    customer_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    content: str = Field(default="", max_length=followups.MAX_CONTENT)
    next_at: str | None = Field(default=None, max_length=40)
    stage: str | None = Field(default=None, max_length=64)
    guide_id: str | None = Field(default=None, max_length=64)


class StageIn(BaseModel):
    customer_id: str = Field(max_length=128)
    stage: str = Field(max_length=64)


@followups_router.post("")
def record_followup(
    body: FollowupIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Record a follow-up (type call/visit/message/other, content, next follow-up date, optional stage)."""
    return followups.record(
        ctx, user, body.customer_id, body.kind, body.content, body.next_at, body.stage, body.guide_id
    )


@followups_router.get("")
def list_followups(
    customer_id: str | None = None,
    page: int = 1,
    page_size: int = 50,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Follow-ups newest first (a guide: their own), with the customer's stage when ``customer_id`` is given."""
    return followups.list_followups(ctx, user, customer_id, page, page_size)


@followups_router.put("/stage")
def set_stage(body: StageIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return followups.set_stage(ctx, user, body.customer_id, body.stage)


@followups_router.get("/stages")
def stage_counts(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Customers per sales stage (a guide: their own customers)."""
    return followups.stage_counts(ctx, user)


@followups_router.post("/{followup_id}/close")
def close_reminder(
    followup_id: RowId, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return followups.close_reminder(ctx, user, followup_id)


# -- Moments ---------------------------------------------------------------------------------------------------
class MomentIn(BaseModel):
    title: str = Field(max_length=200)
    content: str = Field(default="", max_length=moments.MAX_TEXT)
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=moments.MAX_ATTACHMENTS)
    guide_ids: list[str] | None = Field(default=None, max_length=5000)
    segment_id: str | None = Field(default=None, max_length=64)
    tag_ids: list[str] | None = Field(default=None, max_length=100)


def _client(ctx: Context, user: User) -> Any:
    from siyu.services.wecom.config import client_for, get_config

    return client_for(get_config(ctx, user.brand_id))


@moments_router.post("")
def publish_moment(
    body: MomentIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Publish a Moments task through WeCom (admins and operators)."""
    gw.require_manager(user, "publish Moments tasks")
    client = _client(ctx, user)
    try:
        return moments.publish(
            ctx, user, client, body.title, body.content, body.attachments, body.guide_ids, body.segment_id, body.tag_ids
        )
    finally:
        client.close()


@moments_router.get("")
def list_moments(
    limit: int = 100, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return {
        "items": moments.list_tasks(ctx, user, limit),
        "suggested_times": moments.suggested_times(ctx, user.brand_id),
    }


@moments_router.get("/{task_id}")
def get_moment(task_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return moments.get_task(ctx, user, task_id)


@moments_router.post("/{task_id}/refresh")
def refresh_moment(task_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Read the job result / who posted from WeCom now (admins and operators)."""
    gw.require_manager(user, "refresh Moments tasks")
    client = _client(ctx, user)
    try:
        return moments.refresh(ctx, user, task_id, client)
    finally:
        client.close()


# -- pool ------------------------------------------------------------------------------------------------------
class LeadsIn(BaseModel):
    customer_ids: list[str] = Field(max_length=MAX_IDS)
    source: str = Field(default="import", max_length=32)
    store_id: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=500)


class AssignIn(BaseModel):
    rule: str = Field(max_length=32)
    customer_ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    guide_ids: list[str] | None = Field(default=None, max_length=5000)
    reason: str = Field(default="", max_length=500)


class ClaimIn(BaseModel):
    customer_ids: list[str] = Field(max_length=MAX_IDS)


class ReleaseIn(BaseModel):
    customer_id: str = Field(max_length=128)
    reason: str = Field(max_length=500)


@pool_router.get("")
def list_pool(
    status: str = "pool",
    guide_id: str | None = None,
    page: int = 1,
    page_size: int = 100,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Leads in the pool / owned / all (a guide: the pool and their own leads), with open leads per guide."""
    return pool.list_leads(ctx, user, status, guide_id, page, page_size)


@pool_router.post("/leads")
def add_leads(body: LeadsIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return pool.add(ctx, user, body.customer_ids, body.source, body.store_id, body.region, body.reason)


@pool_router.post("/unowned")
def add_unowned(
    limit: int = pool.MAX_BATCH, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Every customer without an active WeCom relation into the pool (up to ``limit``)."""
    if not 1 <= limit <= pool.MAX_BATCH:
        raise SiyuError(f"limit must be 1..{pool.MAX_BATCH}", "limit")
    return pool.add_unowned(ctx, user, limit=limit)


@pool_router.post("/assign")
def assign(body: AssignIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return pool.assign(ctx, user, body.rule, body.customer_ids, body.guide_ids, body.reason)


@pool_router.post("/claim")
def claim(body: ClaimIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return pool.claim(ctx, user, body.customer_ids)


@pool_router.post("/release")
def release(body: ReleaseIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return pool.release(ctx, user, body.customer_id, body.reason)


@pool_router.get("/moves")
def moves(
    customer_id: str | None = None,
    limit: int = 200,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> list[dict[str, Any]]:
    return pool.moves(ctx, user, customer_id, limit)


# -- guides: settings, inbox, scorecard, targets, me -------------------------------------------------------------
class SettingsIn(BaseModel):
    stages: list[str] | None = Field(default=None, max_length=50)
    claim_limit: int | None = None
    return_days: int | None = None
    moment_windows: list[str] | None = Field(default=None, max_length=10)


class TargetIn(BaseModel):
    guide_id: str = Field(max_length=64)
    period: str = Field(max_length=7)
    metric: str = Field(max_length=32)
    value: float


@guides_router.get("/work-settings")
def get_settings(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return gw.get_settings(ctx, user.brand_id).as_dict()


@guides_router.put("/work-settings")
def put_settings(
    body: SettingsIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Sales stages, claim limit per day, days before unworked leads return, Moments posting windows."""
    return gw.set_settings(ctx, user, body.stages, body.claim_limit, body.return_days, body.moment_windows).as_dict()


@guides_router.get("/inbox")
def get_inbox(
    guide_id: str | None = None, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """One list of journey tasks, follow-up reminders, Moments and campaign tasks (a guide: their own)."""
    return inbox.inbox(ctx, user, guide_id)


@guides_router.get("/scorecard")
def scorecard(
    start: str | None = None,
    end: str | None = None,
    as_of: str | None = None,
    store_id: str | None = None,
    sort: str = "gmv",
    period: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Per guide: 客群资产数, adds, losses, reply time, conversions, GMV, tasks (on time), Moments, targets."""
    return kpis.scorecard(ctx, user, start, end, as_of, store_id, sort, period)


@guides_router.put("/targets")
def put_target(body: TargetIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return kpis.set_target(ctx, user, body.guide_id, body.period, body.metric, body.value)


@guides_router.get("/targets")
def get_targets(period: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    gw.require_manager(user, "read every guide's targets")
    month = kpis.check_period(period)
    return {"period": month, "targets": kpis.targets(ctx, user.brand_id, month)}


@guides_router.get("/me")
def me(
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A guide's own page: their scorecard row with targets, rank and inbox counts."""
    return kpis.me(ctx, user, start, end, period)
