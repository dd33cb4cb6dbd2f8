"""Reading a brand's stored CLV predictions: pages with filters, one customer, the distribution of CLV and the
P(alive) matrix over recency × frequency.  A guide sees only their own customers (``siyu.services.metrics.scope``).
"""

from __future__ import annotations

import math
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from siyu.clv.mle import Fit
from siyu.clv.models import transaction_model
from siyu.services.brands import User
from siyu.services.clv.fitting import latest_fit
from siyu.services.context import Context
from siyu.services.customers import resolve_customer
from siyu.services.errors import NotFound, SiyuError
from siyu.services.metrics import restrict, scope
from siyu.services.metrics.acquisition import records

MAX_PAGE_SIZE = 500
SORTS: tuple[str, ...] = ("clv", "p_alive", "expected_purchases", "expected_spend", "x", "customer_id")
NUMBER_FIELDS: tuple[str, ...] = ("p_alive", "clv", "expected_purchases", "expected_spend")


def table(ctx: Context, brand_id: str) -> ir.Table:
    """The brand's rows of ``clv_predictions`` (Ibis, this thread's backend)."""
    p = ctx.warehouse.ibis.table("clv_predictions")
    return p.filter(p.brand_id == brand_id)


def scoped(ctx: Context, user: User) -> ir.Table:
    """The predictions the user may see (a guide: their own customers)."""
    return restrict(table(ctx, user.brand_id), scope(ctx, user))


def _bounds(value: float | None, field: str) -> None:
    if value is not None and not math.isfinite(value):
        raise SiyuError(f"{field} must be a finite number", field)


def page(
    ctx: Context,
    user: User,
    page_no: int = 1,
    page_size: int = 50,
    sort: str = "clv",
    descending: bool = True,
    min_p_alive: float | None = None,
    max_p_alive: float | None = None,
    min_clv: float | None = None,
    max_clv: float | None = None,
) -> dict[str, Any]:
    """A page of predictions with filters; ``total`` counts every matching row."""
    if page_no < 1:
        raise SiyuError(f"page must be ≥ 1 (got {page_no})", "page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SiyuError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})", "page_size")
    if sort not in SORTS:
        raise SiyuError(f"sort {sort!r} is not known; use one of {', '.join(SORTS)}", "sort")
    expr = scoped(ctx, user)
    for value, field, cond in (
        (min_p_alive, "min_p_alive", lambda e, v: e.p_alive >= v),
        (max_p_alive, "max_p_alive", lambda e, v: e.p_alive <= v),
        (min_clv, "min_clv", lambda e, v: e.clv >= v),
        (max_clv, "max_clv", lambda e, v: e.clv <= v),
    ):
        _bounds(value, field)
        if value is not None:
            expr = expr.filter(cond(expr, value))
    total = int(expr.count().to_pyarrow().as_py())
    key = ibis.desc(expr[sort]) if descending else ibis.asc(expr[sort])
    rows = expr.order_by([key, expr.customer_id]).limit(page_size, offset=(page_no - 1) * page_size)
    frame = rows.drop("brand_id").to_pyarrow().to_pandas()
    fit = latest_fit(ctx, user.brand_id)
    return {
        "fit": fit,
        "total": total,
        "page": page_no,
        "page_size": page_size,
        "items": records(frame),
    }


def customer(ctx: Context, user: User, customer_id: str) -> dict[str, Any]:
    """One customer's prediction (NotFound when they have none or are outside a guide's scope)."""
    cid = resolve_customer(ctx, user, customer_id)
    p = table(ctx, user.brand_id)
    frame = p.filter(p.customer_id == cid).drop("brand_id").to_pyarrow().to_pandas()
    if frame.empty:
        raise NotFound(
            f"customer {cid!r} has no CLV prediction (no order before the last fit's calibration end, or no fit yet)",
            "customer_id",
        )
    return {"fit": latest_fit(ctx, user.brand_id), **records(frame)[0]}


def overview(ctx: Context, user: User, bins: int = 20) -> dict[str, Any]:
    """The latest fit, totals, the histogram of CLV and the P(alive) matrix (for the console and the API)."""
    if not 2 <= bins <= 100:
        raise SiyuError(f"bins must be between 2 and 100 (got {bins})", "bins")
    fit = latest_fit(ctx, user.brand_id)
    expr = scoped(ctx, user)
    frame = expr.select("x", "t_x", "T", "p_alive", "clv", "expected_purchases").to_pyarrow().to_pandas()
    totals = {
        "customers": len(frame),
        "clv_total": float(frame["clv"].sum()) if len(frame) else 0.0,
        "clv_mean": float(frame["clv"].mean()) if len(frame) else None,
        "p_alive_mean": float(frame["p_alive"].mean()) if len(frame) else None,
        "at_risk": int((frame["p_alive"] < 0.3).sum()),
        "expected_purchases": float(frame["expected_purchases"].sum()) if len(frame) else 0.0,
    }
    return {
        "fit": fit,
        "totals": totals,
        "histogram": histogram(frame["clv"].to_numpy(dtype=np.float64), bins),
        "alive_matrix": alive_matrix(fit, frame) if fit is not None and len(frame) else None,
    }


def histogram(values: np.ndarray, bins: int = 20) -> list[dict[str, Any]]:
    """Equal-width bins of CLV from 0 (or the minimum) to the 99th percentile; the last bin holds the rest."""
    if len(values) == 0:
        return []
    lo = float(min(0.0, values.min()))
    hi = float(np.quantile(values, 0.99))
    if hi <= lo:
        hi = float(values.max()) if values.max() > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(np.clip(values, lo, hi), bins=edges)
    return [
        {"low": float(edges[i]), "high": float(edges[i + 1]), "customers": int(counts[i]), "last": i == bins - 1}
        for i in range(bins)
    ]


def alive_matrix(fit: dict[str, Any], frame: pd.DataFrame, cells: int = 12) -> dict[str, Any]:
    """P(alive) from the fitted model over frequency x (rows) × recency t_x (columns) for a customer of the
    brand's longest age T (the classic probability-alive matrix); cells with t_x > T are None."""
    model = transaction_model(fit["model"])
    f = Fit(fit["model"], fit["params"], fit["se"], fit["log_likelihood"] or 0.0, fit["customers"] or 0, 0, True, 0.0)
    age = float(frame["T"].max())
    max_x = int(max(1, min(np.quantile(frame["x"], 0.99), 50)))
    xs = np.unique(np.linspace(0, max_x, min(cells, max_x + 1)).round()).astype(int)
    ts = np.linspace(0, age, cells)
    values: list[list[float | None]] = []
    for x in xs:
        row: list[float | None] = []
        for t in ts:
            if x == 0 and t > 0:  # without repeat purchases t_x is 0
                row.append(None)
                continue
            p = model.p_alive(f, np.array([float(x)]), np.array([float(t)]), np.array([age]))
            row.append(round(float(np.asarray(p).reshape(-1)[0]), 4))
        values.append(row)
    return {"T": age, "x": [int(x) for x in xs], "t_x": [round(float(t), 2) for t in ts], "p_alive": values}
