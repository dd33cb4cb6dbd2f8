"""Predicted CLV next to CAC per channel, guide and campaign.

CAC and the acquisition attribution come from ``siyu.services.metrics.acquisition`` (same period, same credited
customers; nothing is recomputed here).  For each group of acquired customers:

- ``clv_mean`` = Σ predicted CLV of the group's customers ÷ the group's customers (customers without a prediction —
  no order before the fit's calibration end — count as 0);
- ``clv_cac`` = clv_mean ÷ CAC (predicted future value per customer over the horizon per unit of acquisition cost);
- ``ltv_total`` = realised LTV (revenue to date per customer) + clv_mean, and ``ltv_total_cac`` = ltv_total ÷ CAC.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from siyu.analytics import acquisition as analytics
from siyu.services.brands import User
from siyu.services.clv.fitting import latest_fit
from siyu.services.clv.predictions import table
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import acquisition, tables
from siyu.services.metrics.acquisition import records, resolve_period

BY_VALUES: tuple[str, ...] = ("channel", "guide", "campaign")


def attributed(ctx: Context, brand_id: str, by: str, start: date, end: date) -> pd.DataFrame:
    """(group key, customer_id) of the customers acquired in the period, attributed like the CAC report."""
    t = tables(ctx, brand_id)
    acq = analytics.acquired(t, start, end)
    if by == "channel":
        frame: pd.DataFrame = analytics.credits(acq).to_pyarrow().to_pandas()
        return frame
    key = f"{by}_id"
    return acq.select("customer_id", key).to_pyarrow().to_pandas()


def report(
    ctx: Context,
    user: User,
    by: str = "channel",
    start: str | date | None = None,
    end: str | date | None = None,
    as_of: str | date | None = None,
) -> dict[str, Any]:
    """Rows of the CAC report (``by`` = channel, guide or campaign) with clv_mean, clv_cac, ltv_total(_cac)."""
    if by not in BY_VALUES:
        raise SiyuError(f"by {by!r} is not known; use one of {', '.join(BY_VALUES)}", "by")
    cac = acquisition.cac_report(ctx, user, by, start, end, as_of)  # enforces the guide rule (by=guide only)
    key = cac["key"]
    p = resolve_period(ctx, user.brand_id, start, end, as_of)
    groups = attributed(ctx, user.brand_id, by, p.start, p.end)
    pred = table(ctx, user.brand_id).select("customer_id", "clv").to_pyarrow().to_pandas()
    merged = groups.merge(pred, on="customer_id", how="left")
    merged["clv"] = merged["clv"].fillna(0.0)
    merged["predicted"] = merged["customer_id"].isin(pred["customer_id"])
    agg = merged.groupby(key, dropna=False).agg(
        clv_sum=("clv", "sum"), clv_customers=("customer_id", "nunique"), predicted_customers=("predicted", "sum")
    )
    rows = pd.DataFrame(cac["rows"])
    if rows.empty:
        rows = pd.DataFrame(columns=[key, "cac", "customers", "ltv_realised"])
    stats = agg.reset_index()
    rows = rows.merge(stats, on=key, how="left")
    rows["clv_sum"] = rows["clv_sum"].fillna(0.0)
    rows["predicted_customers"] = rows["predicted_customers"].fillna(0).astype(int)
    customers = rows["customers"].astype(float).where(rows["customers"].astype(float) > 0)
    rows["clv_mean"] = rows["clv_sum"] / customers
    cac_values = pd.to_numeric(rows["cac"], errors="coerce")
    cac_values = cac_values.where(cac_values > 0)
    rows["clv_cac"] = rows["clv_mean"] / cac_values
    rows["ltv_total"] = pd.to_numeric(rows["ltv_realised"], errors="coerce") + rows["clv_mean"]
    rows["ltv_total_cac"] = rows["ltv_total"] / cac_values
    rows = rows.drop(columns=["clv_customers", "ltv_predicted", "ltv_predicted_cac"], errors="ignore")
    return {
        "by": by,
        "key": key,
        "period": cac["period"],
        "fit": latest_fit(ctx, user.brand_id),
        "rows": records(rows),
        "total": cac["total"],
    }
