"""Channel codes (渠道活码) over HTTP (``/api/wecom/codes``): create / update / delete 联系我 codes, QR images, stats
and the onboarding log (welcome, tag, invite per add).

Admins and operators manage codes; a guide sees only the codes they are on, and only their own adds in the stats.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.validation import MAX_DAYS, RowId
from siyu.domain.models import Role
from siyu.errors import Forbidden
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom import channel_codes as svc

router = APIRouter(prefix="/api/wecom/codes", tags=["wecom"])


class GuideIn(BaseModel):
    guide_id: str = Field(..., min_length=1, max_length=64)
    cap: int | None = Field(None, description="new contacts per day (China time); empty = no cap")


class CouponIn(BaseModel):
    id: str = Field(..., min_length=1, max_length=64)
    title: str = Field("", max_length=100)


class WelcomeIn(BaseModel):
    text: str = Field("", max_length=4000, description="variables: {name} {guide} {coupon}")
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=9)
    coupon: CouponIn | None = None


class RuleIn(BaseModel):
    chat_ids: list[str] = Field(..., min_length=1, max_length=5)
    attribute: str = Field("", max_length=64, description="city, or a trait such as interests; empty = everyone")
    values: list[str] = Field(default_factory=list, max_length=100)
    name: str = Field("", max_length=64)


class CodeIn(BaseModel):
    """Body of ``POST /api/wecom/codes``."""

    name: str = Field(..., min_length=1, max_length=100)
    channel_id: str = Field(..., min_length=1, max_length=64)
    campaign: str = Field("", max_length=64)
    guides: list[GuideIn] = Field(..., min_length=1, max_length=100)
    fallback_guide_id: str | None = Field(None, max_length=64)
    welcome: WelcomeIn = WelcomeIn(text="", attachments=[], coupon=None)
    tag_channel: bool = True
    group_rules: list[RuleIn] = Field(default_factory=list, max_length=20)


class CodePatch(BaseModel):
    """Body of ``PATCH /api/wecom/codes/{id}`` (only the fields given change)."""

    name: str | None = Field(None, min_length=1, max_length=100)
    campaign: str | None = Field(None, max_length=64)
    guides: list[GuideIn] | None = Field(None, min_length=1, max_length=100)
    fallback_guide_id: str | None = Field(None, max_length=64)
    welcome: WelcomeIn | None = None
    tag_channel: bool | None = None
    group_rules: list[RuleIn] | None = Field(None, max_length=20)


def _manager(user: User = Depends(current_user)) -> User:
    if user.role == Role.GUIDE:
        raise Forbidden("channel codes are managed by admins and operators", "role")
    return user


def _scope(user: User) -> str | None:
    """None for managers; a guide's own guide_id (a guide user without one sees nothing)."""
    return (user.guide_id or "-") if user.role == Role.GUIDE else None


def _dump(body: CodePatch) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if body.welcome is not None:  # the welcome is replaced as a whole
        changes["welcome"] = body.welcome.model_dump()
    return changes


@router.get("")
def list_codes(
    include_deleted: bool = False, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The brand's codes, newest first (a guide: the codes they are on)."""
    return {"items": svc.list_codes(ctx, user.brand_id, _scope(user), include_deleted)}


@router.post("", status_code=201)
def create(body: CodeIn, user: User = Depends(_manager), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Make the code in WeCom (add_contact_way) and store it; 400 names the field when something is wrong."""
    spec = svc.CodeSpec(**body.model_dump())
    return svc.create_code(ctx, user.brand_id, spec, user.username)


@router.post("/refresh")
def refresh(user: User = Depends(_manager), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Re-point every code at today's guides under their cap (after midnight, capped guides come back)."""
    return {"changed": svc.refresh_all(ctx, user.brand_id)}


@router.get("/{code_id}")
def get(code_id: RowId, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return svc.get_code(ctx, user.brand_id, code_id, _scope(user))


@router.patch("/{code_id}")
def patch(
    code_id: RowId, body: CodePatch, user: User = Depends(_manager), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return svc.update_code(ctx, user.brand_id, code_id, _dump(body))


@router.delete("/{code_id}")
def delete(code_id: RowId, user: User = Depends(_manager), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Delete the code in WeCom; it stays listed as deleted with its stats."""
    return svc.delete_code(ctx, user.brand_id, code_id)


@router.get("/{code_id}/qr")
def qr(
    code_id: RowId,
    format: str = "png",
    scale: int = 8,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> Response:
    """The code's QR image (``format`` png | svg, ``scale`` 1..40) as a download."""
    svc.get_code(ctx, user.brand_id, code_id, _scope(user))
    data = svc.qr_image(ctx, user.brand_id, code_id, format, scale)
    headers = {"Content-Disposition": f'attachment; filename="channel-code-{code_id}.{format}"'}
    return Response(data, media_type=svc.QR_FORMATS[format], headers=headers)


@router.get("/{code_id}/stats")
def stats(
    code_id: RowId,
    days: int = Query(30, le=MAX_DAYS),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Adds, losses by customer / by guide, net: in total, per guide, per day (a guide: their own adds)."""
    return svc.stats(ctx, user.brand_id, code_id, _scope(user), days)


@router.get("/{code_id}/adds")
def adds(
    code_id: RowId, limit: int = 100, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The latest adds (≤ 1000) with what onboarding did: welcome, tag, invite."""
    svc.get_code(ctx, user.brand_id, code_id, _scope(user))
    return {"items": svc.adds_log(ctx, user.brand_id, code_id, _scope(user), limit)}
