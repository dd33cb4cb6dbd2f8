"""Customer value metrics over HTTP: RFM, AIPL (+ flow), lifecycle, cohorts, and the metric definitions.

All under ``/api/metrics``; the brand is the user's; a guide user gets their own customers only. Dates are
``YYYY-MM-DD`` (default: the brand's last day with data); bad input is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from siyu.analytics.aipl import AiplConfig
from siyu.analytics.definitions import all_definitions
from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.validation import MAX_DAYS, MAX_ID
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.metrics import value as service

router = APIRouter(prefix="/api/metrics", tags=["metrics"])


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def aipl_params(
    a_days: int | None = Query(None, le=MAX_DAYS),
    i_days: int | None = Query(None, le=MAX_DAYS),
    p_days: int | None = Query(None, le=MAX_DAYS),
    l_days: int | None = Query(None, le=MAX_DAYS),
    l_min_orders: int | None = Query(None, le=MAX_ID),
    a_events: str | None = Query(None, description="comma-separated event names counting as A"),
    i_events: str | None = Query(None, description="comma-separated event names counting as I"),
    l_events: str | None = Query(None, description="comma-separated event names counting as L"),
) -> AiplConfig:
    """The AIPL configuration from query parameters (unset = the documented defaults)."""
    return service.aipl_config(
        a_days, i_days, p_days, l_days, l_min_orders, _split(a_events), _split(i_events), _split(l_events)
    )


@router.get("/definitions")
def definitions(user: User = Depends(current_user)) -> dict[str, Any]:
    """Every metric definition (name, formula, unit) in Chinese and English."""
    return {"items": [d.as_dict() for d in all_definitions()]}


@router.get("/rfm")
def rfm(
    as_of: str | None = None,
    window_days: int | None = Query(None, le=MAX_DAYS),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """RFM class counts and value shares, quintile score distributions and the means of the split."""
    return service.rfm_report(ctx, user, as_of, window_days).as_dict()


@router.get("/rfm/customers")
def rfm_customers(
    as_of: str | None = None,
    window_days: int | None = Query(None, le=MAX_DAYS),
    rfm_class: str | None = None,
    sort: str = "monetary",
    page: int = 1,
    page_size: int = 50,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """RFM drill-down: customers (optionally of one class) with R/F/M, scores, name and guides; paged."""
    return service.rfm_customer_page(ctx, user, as_of, window_days, rfm_class, page, page_size, sort)


@router.get("/aipl")
def aipl(
    as_of: str | None = None,
    config: AiplConfig = Depends(aipl_params),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """People per AIPL stage on the date (highest stage that applies)."""
    return service.aipl_report(ctx, user, as_of, config)


@router.get("/aipl/flow")
def aipl_flow(
    date1: str | None = None,
    date2: str | None = None,
    config: AiplConfig = Depends(aipl_params),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Stage-to-stage flow between two dates, ``none`` for entries and drop-outs (Sankey links)."""
    return service.aipl_flow_report(ctx, user, date1, date2, config)


@router.get("/aipl/customers")
def aipl_customers(
    as_of: str | None = None,
    stage: str | None = None,
    page: int = 1,
    page_size: int = 50,
    config: AiplConfig = Depends(aipl_params),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """AIPL drill-down: the customers of a stage; paged."""
    return service.aipl_customer_page(ctx, user, as_of, stage, page, page_size, config)


@router.get("/lifecycle")
def lifecycle(
    as_of: str | None = None,
    new_days: int = 30,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Customers per new/old lifecycle stage (新客未购 … 老客复购)."""
    return service.lifecycle_report(ctx, user, as_of, new_days)


@router.get("/lifecycle/customers")
def lifecycle_customers(
    as_of: str | None = None,
    stage: str | None = None,
    new_days: int = 30,
    page: int = 1,
    page_size: int = 50,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Lifecycle drill-down: the customers of a stage; paged."""
    return service.lifecycle_customer_page(ctx, user, as_of, stage, new_days, page, page_size)


@router.get("/cohorts")
def cohorts(
    as_of: str | None = None,
    basis: str = "joined",
    by_channel: bool = False,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Retention and cumulative revenue by cohort month × months since (optionally by channel)."""
    return service.cohort_report(ctx, user, as_of, basis, by_channel)
