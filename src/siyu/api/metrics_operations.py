"""Private-domain assets and operations over HTTP (under ``/api/metrics``): reachable customers, the asset
statement, the performance formula and its LMDI change, the WeCom funnel and the early-stage KPIs.

The brand is the user's; a guide user's figures count only their own customers. Dates are ``YYYY-MM-DD``
(default: the 30 days ending on the brand's last data day); bad input is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.metrics import operations as ops

router = APIRouter(prefix="/api/metrics", tags=["metrics"])


@router.get("/reachable")
def reachable(
    as_of: str | None = None, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """客群资产数 at the end of ``as_of``: brand total, per store, per guide."""
    return ops.reachable(ctx, user, as_of).as_dict()


@router.get("/asset-statement")
def asset_statement(
    start: str | None = None,
    end: str | None = None,
    by: str = "brand",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """用户资产表 per brand | store | guide | touchpoint | lifecycle, with acquisitions by channel."""
    return ops.asset_statement(ctx, user, start, end, by).as_dict()


@router.get("/performance")
def performance(
    start: str | None = None,
    end: str | None = None,
    by: str = "brand",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """私域业绩 = reachable × delivery rate × scenario conversion × order value, per brand | store | guide."""
    return ops.performance(ctx, user, start, end, by).as_dict()


@router.get("/performance/change")
def performance_change(
    start: str | None = None,
    end: str | None = None,
    prev_start: str | None = None,
    prev_end: str | None = None,
    by: str = "brand",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """ΔGMV against the previous period split into the four factors' contributions (LMDI)."""
    return ops.performance_change(ctx, user, start, end, prev_start, prev_end, by).as_dict()


@router.get("/funnel")
def funnel(
    start: str | None = None,
    end: str | None = None,
    by: str = "brand",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """引流 / 服务 / 变现 success per brand | channel | guide | store, with the reference bands."""
    return ops.funnel(ctx, user, start, end, by).as_dict()


@router.get("/kpis")
def kpis(
    start: str | None = None,
    end: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """加粉率 per channel, 删粉率 and 互动率 for the brand and per guide."""
    return ops.kpis(ctx, user, start, end).as_dict()
