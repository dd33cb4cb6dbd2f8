"""Calibration / holdout validation of a model on a brand's orders (not stored).

Split at a calibration end (default: two thirds of the way from the first order to the last day with data, i.e.
the holdout is the last third), fit on the calibration period, then compare with what happened in the holdout:
mean holdout purchases by calibration frequency (actual vs predicted) and the weekly cumulative repeat purchases
of the customers born by the calibration end (actual vs predicted, ``siyu.clv.validation.tracking``).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np

from siyu.analytics.base import customer_orders
from siyu.analytics.clv_summary import repeat_days_by_week
from siyu.clv import validation
from siyu.clv.models import transaction_model
from siyu.services.clv.fitting import UNIT_DAYS, FitOptions, first_order_day, fit_summary, order_summary
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import data_end, parse_day, tables

MAX_WEEKS = 520


def default_split(first: date, last: date) -> date:
    """Calibration end leaving the last third of [first, last] as holdout."""
    return first + timedelta(days=(last - first).days * 2 // 3)


def validate(
    ctx: Context,
    brand_id: str,
    model: str = "bgnbd",
    calibration_end: str | date | None = None,
    holdout_end: str | date | None = None,
) -> dict[str, Any]:
    """Fit on the calibration period and compare predictions with the holdout (by frequency and weekly tracking)."""
    transaction_model(model)
    first = first_order_day(ctx, brand_id)
    if first is None:
        raise SiyuError(f"brand {brand_id!r} has no orders: import orders before validating CLV", "brand_id")
    last = data_end(ctx, brand_id)
    h_end = parse_day(holdout_end, "holdout_end", last)
    c_end = parse_day(calibration_end, "calibration_end", default_split(first, h_end))
    if c_end <= first:
        raise SiyuError(
            f"calibration_end {c_end} is not after the first order ({first}); choose a later date", "calibration_end"
        )
    if h_end <= c_end:
        raise SiyuError(f"holdout_end {h_end} must be after calibration_end {c_end}", "holdout_end")
    weeks = math.ceil(((h_end - first).days + 1) / 7)
    if weeks > MAX_WEEKS:
        raise SiyuError(
            f"the data spans {weeks} weeks; validate at most {MAX_WEEKS} (set a later start)", "holdout_end"
        )
    s = order_summary(ctx, brand_id, c_end, h_end)
    s = s[s["T"] > 0]
    pred = fit_summary(s, FitOptions(model=model, calibration_end=c_end))
    fit = pred.transactions
    holdout_weeks = ((h_end - c_end).days) / UNIT_DAYS
    x, t_x, T, hx = (s[c].to_numpy(dtype=np.float64) for c in ("x", "t_x", "T", "holdout_x"))
    rows = validation.by_frequency(fit, x, t_x, T, hx, holdout_weeks)
    predicted_each = transaction_model(model).conditional_expected_purchases(fit, holdout_weeks, x, t_x, T)

    births = np.array([(d - first).days / UNIT_DAYS for d in s["first_day"]], dtype=np.float64)
    expected = validation.tracking(fit, births, weeks)
    # the cohort the model was fitted on: born before the calibration end (T > 0)
    cohort_end = c_end - timedelta(days=1)
    weekly = repeat_days_by_week(customer_orders(tables(ctx, brand_id)), first, weeks, first, cohort_end)
    actual_rows = weekly.to_pyarrow().to_pandas()
    actual = np.zeros(weeks)
    for w, n in zip(actual_rows["week"], actual_rows["repeats"], strict=True):
        actual[int(w) - 1] = n
    cumulative = np.cumsum(actual)
    calib_week = (c_end - first).days / 7
    tracking: list[dict[str, Any]] = [
        {
            "week": w + 1,
            "start": (first + timedelta(days=7 * w)).isoformat(),
            "actual": float(cumulative[w]),
            "predicted": float(expected[w]),
            "holdout": w + 1 > calib_week,
        }
        for w in range(weeks)
    ]
    total_actual = float(hx.sum())
    total_predicted = float(np.sum(predicted_each))
    hold = [w for w in range(weeks) if w + 1 > calib_week and cumulative[w] > 0]
    mape = float(np.mean([abs(expected[w] - cumulative[w]) / cumulative[w] for w in hold])) if hold else None
    return {
        "model": model,
        "first_order": first.isoformat(),
        "calibration_end": c_end.isoformat(),
        "holdout_end": h_end.isoformat(),
        "holdout_weeks": holdout_weeks,
        "fit": fit.as_dict(),
        "spend_fit": pred.spend.as_dict(),
        "by_frequency": [r.__dict__ for r in rows],
        "tracking": tracking,
        "errors": {
            "customers": len(s),
            "holdout_actual": total_actual,
            "holdout_predicted": total_predicted,
            "holdout_error_pct": (total_predicted - total_actual) / total_actual * 100 if total_actual else None,
            "mae_by_frequency": float(np.mean([abs(r.predicted - r.actual) for r in rows])) if rows else None,
            "customer_mae": float(np.mean(np.abs(predicted_each - hx))),
            "tracking_mape_holdout": mape,
        },
    }
