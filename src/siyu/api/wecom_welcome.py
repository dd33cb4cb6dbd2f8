"""Welcome messages (欢迎语) over HTTP (``/api/wecom/welcome``): every channel code's welcome with its send counts,
a preview filled for a sample customer, and the latest sends.  A guide sees the codes they are on and only their
own sends."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.validation import RowId
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom import welcome_overview as svc

router = APIRouter(prefix="/api/wecom/welcome", tags=["wecom"])


def _scope(user: User) -> str | None:
    return (user.guide_id or "-") if user.role == Role.GUIDE else None


@router.get("")
def messages(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One row per channel code: welcome text, attachments, coupon and the sends by status."""
    return {"items": svc.messages(ctx, user.brand_id, _scope(user)), "statuses": list(svc.STATUSES)}


@router.get("/sends")
def sends(
    limit: int = Query(50, ge=1, le=svc.MAX_SENDS),
    status: str | None = Query(None, pattern="^(" + "|".join(svc.STATUSES) + ")$"),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The latest welcome outcomes across codes, newest first."""
    return {"items": svc.latest_sends(ctx, user.brand_id, _scope(user), limit, status)}


@router.get("/{code_id}/preview")
def preview(
    code_id: RowId,
    name: str = Query(svc.SAMPLE_NAME, min_length=1, max_length=30, description="the sample customer's WeChat name"),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The code's welcome with {name}/{guide}/{coupon} filled for a sample customer."""
    return svc.preview(ctx, user.brand_id, code_id, name, _scope(user))
