"""The audit log over HTTP: ``GET /api/audit`` (admins of the brand only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.services import audit
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden

router = APIRouter(prefix="/api/audit", tags=["audit"])


def _admin(user: User = Depends(current_user)) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("only an admin of the brand may read the audit log", "role")
    return user


@router.get("")
def list_entries(
    action: str | None = Query(None, description="one of " + ", ".join(audit.ACTIONS)),
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=audit.MAX_LIMIT),
    user: User = Depends(_admin),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Sensitive actions of the brand, newest first: who, what, on what, when."""
    items = audit.entries(ctx, user.brand_id, action, since.replace(tzinfo=None) if since else None, limit)
    return {"items": items, "count": len(items)}
