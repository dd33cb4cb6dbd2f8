"""WeCom over HTTP: the callback URL WeCom calls (no login: signed and encrypted) and the admin endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.errors import Forbidden
from siyu.services import audit
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom import callbacks
from siyu.services.wecom.config import REPLAY_WINDOW, WeComConfig, get_config, set_config
from siyu.stores.state.wecom_models import WeComCallbackRow, WeComRejectionRow

router = APIRouter(prefix="/api/wecom", tags=["wecom"])


def _remote(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get("/callback/{brand_id}", response_class=PlainTextResponse)
async def verify_url(
    brand_id: str, request: Request, msg_signature: str, timestamp: str, nonce: str, echostr: str
) -> PlainTextResponse:
    """URL verification: answers the bare plaintext of ``echostr`` (403 when the signature is wrong)."""
    ctx: Context = get_ctx(request)
    plain = await run_in_threadpool(
        callbacks.verify_url, ctx, brand_id, msg_signature, timestamp, nonce, echostr, _remote(request)
    )
    return PlainTextResponse(plain)


@router.post("/callback/{brand_id}", response_class=PlainTextResponse)
async def receive(brand_id: str, request: Request, msg_signature: str, timestamp: str, nonce: str) -> PlainTextResponse:
    """A callback: verified, decrypted, stored and queued; answers ``success`` at once (also for WeCom's retries)."""
    ctx: Context = get_ctx(request)
    size = int(request.headers.get("content-length") or 0)
    if size > callbacks.MAX_BODY:
        raise callbacks.reject(ctx, brand_id, "size", f"Content-Length {size} exceeds {callbacks.MAX_BODY}")
    body = await request.body()
    await run_in_threadpool(callbacks.receive, ctx, brand_id, msg_signature, timestamp, nonce, body, _remote(request))
    return PlainTextResponse("success")


def _admin(user: User = Depends(current_user)) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("only an admin of the brand may manage the WeCom connection", "role")
    return user


class ConfigBody(BaseModel):
    """Body of ``PUT /api/wecom/config``."""

    corp_id: str
    token: str
    encoding_aes_key: str
    secret: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    replay_window_seconds: int = REPLAY_WINDOW


@router.get("/config")
def show_config(user: User = Depends(_admin), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The brand's WeCom configuration (secrets masked) and its callback path."""
    cfg = get_config(ctx, user.brand_id)
    return {**cfg.public(), "callback_path": f"/api/wecom/callback/{user.brand_id}"}


@router.put("/config")
def put_config(body: ConfigBody, user: User = Depends(_admin), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    cfg = set_config(ctx, user.brand_id, WeComConfig(**body.model_dump()))
    audit.record(ctx, user.brand_id, user, "wecom.config", cfg.corp_id, {"fields": sorted(body.model_fields_set)})
    return {**cfg.public(), "callback_path": f"/api/wecom/callback/{user.brand_id}"}


@router.get("/callbacks")
def list_callbacks(
    status: str = "", limit: int = 50, user: User = Depends(_admin), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Recent callbacks (newest first, ≤ 500), counts by status, and recent rejections."""
    limit = max(1, min(limit, 500))
    with ctx.sessions() as s:
        q = select(WeComCallbackRow).where(WeComCallbackRow.brand_id == user.brand_id)
        if status:
            q = q.where(WeComCallbackRow.status == status)
        rows = s.scalars(q.order_by(WeComCallbackRow.id.desc()).limit(limit)).all()
        counts = dict(
            s.execute(
                select(WeComCallbackRow.status, func.count())
                .where(WeComCallbackRow.brand_id == user.brand_id)
                .group_by(WeComCallbackRow.status)
            ).all()
        )
        rejected = s.scalars(
            select(WeComRejectionRow)
            .where(WeComRejectionRow.brand_id == user.brand_id)
            .order_by(WeComRejectionRow.id.desc())
            .limit(limit)
        ).all()
    return {
        "counts": counts,
        "items": [
            {
                "id": r.id,
                "event": r.event,
                "change_type": r.change_type,
                "user_id": r.user_id,
                "external_user_id": r.external_user_id,
                "create_time": r.create_time,
                "status": r.status,
                "attempts": r.attempts,
                "result": r.result,
                "received_at": r.received_at.isoformat(),
            }
            for r in rows
        ],
        "rejections": [
            {
                "id": r.id,
                "reason": r.reason,
                "detail": r.detail,
                "remote": r.remote,
                "received_at": r.received_at.isoformat(),
            }
            for r in rejected
        ],
    }
