"""CAC / ROI, guide KPIs with drill-down, and baselines/anomalies over HTTP (all under ``/api/metrics``).

The brand is the user's. A guide user gets CAC/ROI of their own row (``by=guide``), the leaderboard, and the
drill-down into their own customers only; baselines and anomalies are for admins and operators. Dates are
``YYYY-MM-DD``; bad input is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.services import brand_webhooks
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden
from siyu.services.metrics import acquisition, anomalies, guides
from siyu.services.metrics.anomalies import BandConfig

router = APIRouter(prefix="/api/metrics", tags=["metrics"])


@router.get("/cac")
def cac(
    by: str = "channel",
    start: str | None = None,
    end: str | None = None,
    as_of: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """CAC, realised LTV, LTV/CAC and ROI per channel | platform | campaign | guide, plus the brand total."""
    return acquisition.cac_report(ctx, user, by, start, end, as_of)


@router.get("/roi")
def roi(
    by: str = "channel",
    start: str | None = None,
    end: str | None = None,
    as_of: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The same report as ``/cac`` (ROI = (realised revenue − spend) / spend is one of its columns)."""
    return acquisition.cac_report(ctx, user, by, start, end, as_of)


@router.get("/guides")
def guide_leaderboard(
    start: str | None = None,
    end: str | None = None,
    as_of: str | None = None,
    store_id: str | None = None,
    sort: str = "gmv",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Guide leaderboard: reachable (客群资产数), new customers, conversions, orders, GMV, task completion."""
    return guides.leaderboard(ctx, user, start, end, as_of, store_id, sort)


@router.get("/guides/{guide_id}/customers")
def guide_customers(
    guide_id: str,
    start: str | None = None,
    end: str | None = None,
    as_of: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Drill-down: the guide's reachable customers with orders, GMV and last order (a guide: only their own)."""
    return guides.guide_customers(ctx, user, guide_id, start, end, as_of)


@router.get("/anomalies")
def anomaly_list(
    day: str | None = None,
    weeks: int = anomalies.DEFAULT_WEEKS,
    threshold: float = anomalies.DEFAULT_THRESHOLD,
    by_channel: bool = True,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Steps outside their baseline band on ``day`` (default: the last complete day), with how far out."""
    return anomalies.anomalies(ctx, user, day, BandConfig(weeks, threshold).check(), by_channel)


@router.get("/anomalies/band")
def anomaly_band(
    step: str = "orders",
    start: str | None = None,
    end: str | None = None,
    channel_id: str | None = None,
    weeks: int = anomalies.DEFAULT_WEEKS,
    threshold: float = anomalies.DEFAULT_THRESHOLD,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """One step's daily actuals with the baseline (median) and band, flagged days marked."""
    return anomalies.band_series(ctx, user, step, start, end, channel_id, BandConfig(weeks, threshold))


class WebhookBody(BaseModel):
    """The anomalies webhook: where to POST, and optionally the signing secret (default: a new random one)."""

    url: str
    secret: str | None = None


@router.put("/anomalies/webhook")
def set_anomaly_webhook(
    body: WebhookBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Set the brand's anomalies webhook (admins); the answer holds the secret (shown this once)."""
    if user.role != Role.ADMIN:
        raise Forbidden("only an admin sets the brand's webhook", "role")
    hook = brand_webhooks.set_webhook(ctx, user.brand_id, anomalies.TOPIC, body.url, body.secret)
    return {"topic": hook.topic, "url": hook.url, "secret": hook.secret}


@router.get("/anomalies/deliveries")
def anomaly_deliveries(
    limit: int = 50, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The brand's webhook delivery log (admins)."""
    if user.role != Role.ADMIN:
        raise Forbidden("the webhook delivery log is for admins", "role")
    hook = brand_webhooks.get_webhook(ctx, user.brand_id, anomalies.TOPIC)
    return {
        "webhook_url": hook.url if hook else None,
        "items": brand_webhooks.deliveries(ctx, user.brand_id, max(1, min(limit, 500))),
    }
