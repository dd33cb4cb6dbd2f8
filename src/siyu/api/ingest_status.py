"""Admin view of the ingest log in the warehouse process: ``GET /api/ingest/status``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden
from siyu.services.ingest.status import log_status

router = APIRouter(prefix="/api/ingest", tags=["ingestion"])


@router.get("/status", summary="The brand's stored events; ingest log segments, their writers and how far loaded")
def status(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    if user.role != Role.ADMIN:
        raise Forbidden("only an admin may see the ingest log status", "role")
    return log_status(ctx, user.brand_id)
