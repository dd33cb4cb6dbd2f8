"""Customer lifetime value over HTTP (``/api/clv``): fit a brand, list fits, read predictions (a guide: their own
customers only), validate on a holdout, and CLV next to CAC per channel / guide / campaign.

Fitting and validation are for admins and operators; bad input is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.clv import fitting, ltv_cac, predictions, validation
from siyu.services.context import Context
from siyu.services.errors import Forbidden

router = APIRouter(prefix="/api/clv", tags=["clv"])


class FitRequest(BaseModel):
    """Options of a fit (every field optional)."""

    model: str = Field(fitting.DEFAULT_MODEL, max_length=32, description="bgnbd | mbgnbd | pareto_nbd")
    calibration_end: str | None = Field(None, max_length=10, description="YYYY-MM-DD; default: the last day with data")
    months: int = Field(12, description="CLV horizon in months (1..120)")
    discount_rate: float = Field(0.1, description="annual discount rate (0.1 = 10 %)")
    wait: bool = Field(True, description="false: queue the fit in the background and return at once")


def _editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("fitting and validating CLV models is for admins and operators", "role")


@router.post("/fits")
def fit(req: FitRequest, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Fit the brand's orders and replace its predictions (``wait=false``: returns the running fit at once)."""
    _editor(user)
    opts = fitting.FitOptions(req.model, req.calibration_end, req.months, req.discount_rate)
    fit_id = fitting.start_fit(ctx, user.brand_id, opts, user.username)
    if not req.wait:
        from siyu.workers.tasks import enqueue_call

        enqueue_call(ctx, "siyu.services.clv.fitting:run_fit_job", fit_id)
        return fitting.get_fit(ctx, user.brand_id, fit_id)
    return fitting.run_fit(ctx, fit_id)


@router.get("/fits")
def fits(limit: int = 20, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The brand's fits, newest first (``limit`` 1..200), and the one whose predictions are stored."""
    return {"items": fitting.list_fits(ctx, user.brand_id, limit), "current": fitting.latest_fit(ctx, user.brand_id)}


@router.get("/fits/{fit_id}")
def one_fit(fit_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One fit: estimates, standard errors, log-likelihood, status and progress."""
    return fitting.get_fit(ctx, user.brand_id, fit_id)


@router.get("/predictions")
def prediction_page(
    page: int = 1,
    page_size: int = 50,
    sort: str = "clv",
    descending: bool = True,
    min_p_alive: float | None = None,
    max_p_alive: float | None = None,
    min_clv: float | None = None,
    max_clv: float | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Per-customer predictions of the current fit; paged (``page_size`` ≤ 500), filtered, sorted."""
    return predictions.page(ctx, user, page, page_size, sort, descending, min_p_alive, max_p_alive, min_clv, max_clv)


@router.get("/overview")
def overview(bins: int = 20, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Current fit, totals, histogram of CLV (``bins`` 2..100) and the P(alive) recency × frequency matrix."""
    return predictions.overview(ctx, user, bins)


@router.get("/customers/{customer_id}")
def customer(customer_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One customer's CLV prediction (the customer 360's value panel)."""
    return predictions.customer(ctx, user, customer_id)


@router.get("/validation")
def validate(
    model: str = fitting.DEFAULT_MODEL,
    calibration_end: str | None = None,
    holdout_end: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Fit on the calibration period, compare with the holdout: by frequency, weekly tracking, summary errors."""
    _editor(user)
    return validation.validate(ctx, user.brand_id, model, calibration_end, holdout_end)


@router.get("/ltv-cac")
def ltv_vs_cac(
    by: str = "channel",
    start: str | None = None,
    end: str | None = None,
    as_of: str | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Predicted CLV per acquired customer next to CAC and LTV/CAC, ``by`` channel | guide | campaign."""
    return ltv_cac.report(ctx, user, by, start, end, as_of)
