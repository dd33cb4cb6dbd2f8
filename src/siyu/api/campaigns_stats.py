"""Live statistics of fission campaigns over HTTP: the figures (totals, by variant / channel / guide, depth,
daily, funnel, A/B), the per-guide leaderboard against targets, and the physical-gift fulfilment list with
shipping. Definitions: ``docs/campaigns.md`` (## 指标 Metrics). A guide sees only their own participants' rows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.pii import PiiMode, masked_page
from siyu.services import campaigns_stats as service
from siyu.services.brands import User
from siyu.services.context import Context

router = APIRouter(prefix="/api/campaigns", tags=["campaign stats"])
ID = {"min_length": 1, "max_length": 64}


class ShipBody(BaseModel):
    carrier: str = Field(min_length=1, max_length=64, description="the courier, e.g. 顺丰")
    tracking_no: str = Field(min_length=1, max_length=64)


@router.get("/{campaign_id}/stats")
def campaign_stats(
    campaign_id: str,
    retention: bool = Query(True, description="include the warehouse figures (retention, conversions, GMV)"),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Every figure of the campaign in the user's scope, with the formulas."""
    return service.campaign_stats(ctx, user, campaign_id[:64], warehouse=retention)


@router.get("/{campaign_id}/leaderboard")
def leaderboard(
    campaign_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Per guide: participants, new customers, conversions, GMV against the campaign's targets, ranked."""
    return service.leaderboard(ctx, user, campaign_id[:64])


@router.get("/{campaign_id}/fulfilment")
def fulfilment(
    campaign_id: str,
    status: str | None = Query(None, max_length=20, description="awaiting_address | to_ship | shipped | clawed_back"),
    pii_mode: PiiMode = "masked",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The campaign's physical gifts: address (masked unless ``pii=clear``, an audited reveal), status, carrier,
    tracking number."""
    found = service.fulfilment(ctx, user, campaign_id[:64], status)
    target = f"campaign:{campaign_id[:64]}:fulfilment"
    return masked_page(ctx, user, found, pii_mode, target)


@router.post("/{campaign_id}/fulfilment/{grant_id}/ship")
def ship(
    campaign_id: str,
    grant_id: str,
    body: ShipBody,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Mark a gift shipped with the courier and tracking number."""
    return service.ship(ctx, user, campaign_id[:64], grant_id[:64], body.carrier, body.tracking_no)
