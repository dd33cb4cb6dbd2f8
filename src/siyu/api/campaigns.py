"""Operator API of fission campaigns (/api/campaigns): CRUD, validate, pilot / launch / end, participants, helps
with reasons, the invite tree, per-guide target progress, a guide's promotion link (``/guide-link``). A guide user
may read only: their own participants, helps and tree nodes, their own target row and their own link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.campaign import CampaignError
from siyu.errors import Forbidden, SiyuError
from siyu.services import campaigns as service
from siyu.services import campaigns_stats, pii
from siyu.services.brands import Role, User
from siyu.services.campaigns.attribution import guide_link as make_guide_link
from siyu.services.context import Context

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
MAX_BODY_KEYS = 40


def _editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides may view campaigns but not change them; ask an operator or admin", "role")


def _mine(user: User) -> str | None:
    """The guide filter: a guide sees only their own participants / helps."""
    return user.guide_id or "" if user.role == Role.GUIDE else None


@router.get("")
def list_(
    status: str | None = Query(None, max_length=16),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The brand's campaigns with participant counts."""
    return {"items": service.list_campaigns(ctx, user.brand_id, status)}


@router.post("/validate")
def validate(
    body: dict[str, Any] = Body(...), user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Check a definition without saving: ``{"ok": true}`` or ``{"ok": false, "errors": [{field, message}]}``."""
    try:
        service.validate(ctx, user.brand_id, body)
    except CampaignError as err:
        return {"ok": False, "errors": err.errors}
    return {"ok": True, "errors": []}


@router.post("", status_code=201)
def create(
    body: dict[str, Any] = Body(...), user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Create a draft campaign (400 with the field and the fix when invalid)."""
    _editor(user)
    return service.create(ctx, user.brand_id, body, user.username)


@router.get("/{campaign_id}")
def show(campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return service.get(ctx, user.brand_id, campaign_id)


@router.put("/{campaign_id}")
def update(
    campaign_id: str,
    body: dict[str, Any] = Body(...),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Save a new version of the definition."""
    _editor(user)
    return service.update(ctx, user.brand_id, campaign_id, body, user.username)


@router.get("/{campaign_id}/versions")
def versions(campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return {"items": service.versions(ctx, user.brand_id, campaign_id)}


@router.post("/{campaign_id}/pilot")
def pilot(campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Open to the pilot audience only (前期验证)."""
    _editor(user)
    return service.pilot(ctx, user.brand_id, campaign_id)


@router.post("/{campaign_id}/launch")
def launch(campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Open to everyone (live)."""
    _editor(user)
    return service.launch(ctx, user.brand_id, campaign_id)


@router.post("/{campaign_id}/end")
def end(campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Close the campaign (final)."""
    _editor(user)
    return service.end(ctx, user.brand_id, campaign_id)


@router.get("/{campaign_id}/participants")
def participants(
    campaign_id: str,
    page: int = Query(1, ge=1, le=100_000),
    size: int = Query(50, ge=1, le=500),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    return service.participants(ctx, user.brand_id, campaign_id, guide_id=_mine(user), page=page, size=size)


@router.get("/{campaign_id}/helps")
def helps(
    campaign_id: str,
    state: str | None = Query(None, max_length=20),
    page: int = Query(1, ge=1, le=100_000),
    size: int = Query(50, ge=1, le=500),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Help attempts with their state and reason, and counts by state / reason (helpers' identifiers masked)."""
    found = service.helps(ctx, user.brand_id, campaign_id, state=state, guide_id=_mine(user), page=page, size=size)
    return {**found, "items": pii.masked_rows(ctx, user, found["items"], False, "helps")}


@router.get("/{campaign_id}/tree")
def tree(
    campaign_id: str,
    root: str | None = Query(None, max_length=32),
    depth: int = Query(3, ge=0, le=10),
    page: int = Query(1, ge=1, le=100_000),
    size: int = Query(50, ge=1, le=500),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The invite tree (nested JSON, ``depth`` levels, seeds paged)."""
    return service.tree(
        ctx, user.brand_id, campaign_id, root=root, max_depth=depth, page=page, size=size, guide_id=_mine(user)
    )


@router.get("/{campaign_id}/guides")
def guides(campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Per-guide targets and actuals — the campaign leaderboard (``campaigns_stats.leaderboard``: conversions and
    GMV from orders after joining); a guide sees their own row."""
    return {"items": campaigns_stats.leaderboard(ctx, user, campaign_id[:64])["items"]}


@router.get("/{campaign_id}/guide-link")
def guide_link(
    request: Request,
    campaign_id: str,
    guide_id: str | None = Query(None, min_length=1, max_length=64),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, str]:
    """A guide's own promotion link of the campaign (``g=`` signed with the campaign): people who join through it
    are credited to the guide. A guide user gets their own link; an operator names ``guide_id``."""
    if user.role == Role.GUIDE:
        if guide_id not in (None, user.guide_id):
            raise Forbidden("a guide may get only their own campaign link", "guide_id")
        guide_id = user.guide_id
    if not guide_id:
        raise SiyuError("guide_id is required: the guide whose promotion link you want", "guide_id")
    got = make_guide_link(ctx, user.brand_id, campaign_id[:64], guide_id)
    return {**got, "url": str(request.base_url).rstrip("/") + got["path"]}
