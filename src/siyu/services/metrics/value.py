"""Customer value use cases: RFM, AIPL (stages and flow), new/old lifecycle, cohorts — executed and shaped.

Every per-customer result is computed brand-wide (RFM means, AIPL stages, cohorts are properties of the brand)
and then restricted to the customers the user may see (a guide: their own), before anything is counted.
As everywhere in ``siyu.analytics``, "as of D" means the instant D 00:00 (data of day D itself is not included);
``as_of`` defaults to the day after the brand's last day with data (``data_end`` + 1), so every record counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from pydantic import ValidationError

from siyu.analytics import aipl, cohorts, lifecycle, rfm
from siyu.analytics.aipl import AiplConfig
from siyu.domain.customer_classes import LIFECYCLE_STAGES
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import data_end, fetch_arrows, fetch_frame, fetch_scalar, restrict, scope, tables

MAX_PAGE_SIZE = 500
RFM_SORTS = ("monetary", "frequency", "recency_days", "customer_id")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: dates as ISO text, numpy scalars as Python numbers, NaN as None."""
    out: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        clean: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, pd.Timestamp):
                v = v.date().isoformat() if v == v.normalize() else v.isoformat()
            elif isinstance(v, date):
                v = v.isoformat()
            elif hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and math.isnan(v):
                v = None
            clean[str(k)] = v
        out.append(clean)
    return out


def _as_of(ctx: Context, brand_id: str, value: str | date | None, name: str = "as_of") -> date:
    from siyu.services.metrics import parse_day

    if value is None or value == "":
        return data_end(ctx, brand_id) + timedelta(days=1)
    return parse_day(value, name)


def _positive(value: int | None, name: str, allow_none: bool = True) -> int | None:
    if value is None:
        if allow_none:
            return None
        raise SiyuError(f"{name} is required; send a number of days such as 30", name)
    if value <= 0:
        raise SiyuError(f"{name} must be a positive number of days (got {value}); e.g. 365", name)
    return value


def _paging(page: int, page_size: int) -> tuple[int, int]:
    if page < 1:
        raise SiyuError(f"page must be 1 or more (got {page})", "page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SiyuError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})", "page_size")
    return page, page_size


def aipl_config(
    a_days: int | None = None,
    i_days: int | None = None,
    p_days: int | None = None,
    l_days: int | None = None,
    l_min_orders: int | None = None,
    a_events: list[str] | None = None,
    i_events: list[str] | None = None,
    l_events: list[str] | None = None,
) -> AiplConfig:
    """An ``AiplConfig`` from optional overrides, with errors naming the field."""
    given: dict[str, Any] = {
        k: v
        for k, v in {
            "a_days": a_days,
            "i_days": i_days,
            "p_days": p_days,
            "l_days": l_days,
            "l_min_orders": l_min_orders,
            "a_events": tuple(a_events) if a_events is not None else None,
            "i_events": tuple(i_events) if i_events is not None else None,
            "l_events": tuple(l_events) if l_events is not None else None,
        }.items()
        if v is not None
    }
    try:
        return AiplConfig(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err.get("loc") else "config"
        raise SiyuError(f"{name}: {err['msg']} (windows are days ≥ 1, l_min_orders ≥ 2)", name) from None


@dataclass
class Scoped:
    """A brand's tables and the customers the user may see."""

    t: Any
    allowed: ir.Table | None
    brand_id: str


def _scoped(ctx: Context, user: User) -> Scoped:
    return Scoped(tables(ctx, user.brand_id), scope(ctx, user), user.brand_id)


# --- RFM ---------------------------------------------------------------------------------------------------


@dataclass
class RfmReport:
    as_of: date
    window_days: int | None
    customers: int
    monetary: float
    means: dict[str, float | None]
    classes: pd.DataFrame
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "window_days": self.window_days,
            "customers": self.customers,
            "monetary": self.monetary,
            "means": self.means,
            "classes": records(self.classes),
            "scores": {k: records(v) for k, v in self.scores.items()},
        }


def _rfm_expr(
    ctx: Context, user: User, as_of: str | date | None, window_days: int | None
) -> tuple[ir.Table, ir.Table, date]:
    """(brand-wide RFM, RFM of the customers the user may see, as-of day)."""
    s = _scoped(ctx, user)
    day = _as_of(ctx, s.brand_id, as_of)
    window = _positive(window_days, "window_days")
    whole = rfm.rfm_customers(s.t, day, window)
    return whole, restrict(whole, s.allowed), day


def rfm_report(ctx: Context, user: User, as_of: str | date | None = None, window_days: int | None = None) -> RfmReport:
    """Class counts and value shares, quintile distributions and the means behind the split.

    ``means`` are the brand's (the thresholds the classes were split by), also for a guide; the counts are the
    user's customers."""
    whole, expr, day = _rfm_expr(ctx, user, as_of, window_days)
    split = whole.aggregate(r=whole.recency_days.mean(), f=whole.frequency.mean(), m=whole.monetary.mean())
    queries = [
        expr.aggregate(customers=expr.count(), monetary=expr.monetary.sum()),
        split,
        rfm.rfm_class_summary(expr),
        *(rfm.rfm_score_distribution(expr, k) for k in ("r", "f", "m")),
    ]
    results = fetch_arrows(ctx, queries)  # side by side on a small brand (the same figures either way)
    tot = results[0].to_pylist()[0]
    tot.update(results[1].to_pylist()[0])
    n = int(tot["customers"] or 0)
    total_m = float(tot["monetary"] or 0.0)
    got = results[2].to_pandas()
    classes = pd.DataFrame({"rfm_class": list(rfm.RFM_CLASSES)}).merge(got, on="rfm_class", how="left")
    classes = classes.fillna({"customers": 0, "monetary": 0.0, "customer_share": 0.0, "value_share": 0.0})
    classes["customers"] = classes["customers"].astype("int64")
    classes.insert(1, "rfm_class_zh", classes["rfm_class"].map(rfm.RFM_CLASS_ZH))
    scores: dict[str, pd.DataFrame] = {}
    for k, tab in zip(("r", "f", "m"), results[3:], strict=True):
        sc = tab.to_pandas().set_index("score")
        sc = sc.reindex(range(1, 6)).fillna({"customers": 0, "monetary": 0.0})
        sc["customers"] = sc["customers"].astype("int64")
        scores[k] = sc.rename_axis("score").reset_index()
    means = {k: (float(tot[k]) if tot[k] is not None else None) for k in ("r", "f", "m")}
    return RfmReport(day, window_days, n, total_m, means, classes, scores)


def rfm_customer_page(
    ctx: Context,
    user: User,
    as_of: str | date | None = None,
    window_days: int | None = None,
    rfm_class: str | None = None,
    page: int = 1,
    page_size: int = 50,
    sort: str = "monetary",
) -> dict[str, Any]:
    """Drill-down: the customers (optionally of one class) with R/F/M, scores, name and their active guides."""
    page, page_size = _paging(page, page_size)
    if rfm_class and rfm_class not in rfm.RFM_CLASSES:
        raise SiyuError(f"rfm_class {rfm_class!r} is unknown; use one of {', '.join(rfm.RFM_CLASSES)}", "rfm_class")
    if sort not in RFM_SORTS:
        raise SiyuError(f"sort {sort!r} is not supported; use one of {', '.join(RFM_SORTS)}", "sort")
    _, expr, day = _rfm_expr(ctx, user, as_of, window_days)
    if rfm_class:
        expr = expr.filter(expr.rfm_class == rfm_class)
    total = int(fetch_scalar(ctx, expr.count()))
    key = ibis.desc(expr[sort]) if sort in ("monetary", "frequency") else expr[sort]
    rows = expr.order_by([key, expr.customer_id]).limit(page_size, offset=(page - 1) * page_size)
    df = fetch_frame(ctx, rows)
    df["monetary"] = df["monetary"].round(2)
    df = _with_people(ctx, user.brand_id, df)
    return {"as_of": day.isoformat(), "total": total, "page": page, "page_size": page_size, "items": records(df)}


def _with_people(ctx: Context, brand_id: str, df: pd.DataFrame) -> pd.DataFrame:
    """Add the customer's name and the guides they have an active relation with (``guides``, comma-separated)."""
    if df.empty:
        return df.assign(name=pd.Series(dtype=object), guides=pd.Series(dtype=object))
    from siyu.analytics.base import customer_relations

    t = tables(ctx, brand_id)
    ids = list(df["customer_id"])
    c = t.customers
    names = c.filter(c.customer_id.isin(ids)).select("customer_id", "name").to_pyarrow().to_pandas()
    r = customer_relations(t)
    r = r.filter(r.customer_id.isin(ids) & (r.state == "active")).select("customer_id", "guide_id")
    rel = r.to_pyarrow().to_pandas()
    guides = rel.groupby("customer_id")["guide_id"].agg(lambda s: ",".join(sorted(set(s)))).rename("guides")
    out = df.merge(names, on="customer_id", how="left").merge(guides, on="customer_id", how="left")
    return out


# --- AIPL --------------------------------------------------------------------------------------------------


def _stage_frame(codes: tuple[str, ...], counts: pd.DataFrame, zh: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame({"stage": list(codes)}).merge(counts, on="stage", how="left").fillna({"customers": 0})
    out["customers"] = out["customers"].astype("int64")
    total = int(out["customers"].sum())
    out.insert(1, "stage_zh", out["stage"].map(zh))
    out["share"] = out["customers"] / total if total else 0.0
    return out


def aipl_report(
    ctx: Context, user: User, as_of: str | date | None = None, config: AiplConfig | None = None
) -> dict[str, Any]:
    """People per AIPL stage on ``as_of`` (each at their highest stage)."""
    s = _scoped(ctx, user)
    day = _as_of(ctx, s.brand_id, as_of)
    st = restrict(aipl.aipl_stage(s.t, day, config), s.allowed)
    counts = fetch_frame(ctx, aipl.aipl_counts(st))
    frame = _stage_frame(aipl.STAGES, counts, aipl.STAGE_ZH)
    cfg = config or AiplConfig()
    return {"as_of": day.isoformat(), "config": cfg.model_dump(), "stages": records(frame)}


def aipl_flow_report(
    ctx: Context,
    user: User,
    date1: str | date | None = None,
    date2: str | date | None = None,
    config: AiplConfig | None = None,
) -> dict[str, Any]:
    """People per (stage on date1 → stage on date2), ``none`` = no stage (entries and drop-outs).

    date2 defaults to ``data_end`` + 1 (everything counted), date1 to 30 days earlier.
    """
    from datetime import timedelta

    s = _scoped(ctx, user)
    d2 = _as_of(ctx, s.brand_id, date2, "date2")
    d1 = parse_or(date1, "date1", d2 - timedelta(days=30))
    if d1 >= d2:
        raise SiyuError(f"date1 ({d1}) must be before date2 ({d2})", "date1")
    tr_ = restrict(aipl.aipl_transitions(s.t, d1, d2, config), s.allowed)
    flow = fetch_frame(ctx, aipl.aipl_flow(tr_))
    flow["customers"] = flow["customers"].astype("int64")
    order = {code: i for i, code in enumerate((*aipl.STAGES, "none"))}
    flow = flow.sort_values(["from_stage", "to_stage"], key=lambda col: col.map(order)).reset_index(drop=True)
    return {"date1": d1.isoformat(), "date2": d2.isoformat(), "links": records(flow)}


def parse_or(value: str | date | None, name: str, default: date) -> date:
    """A date from ``value`` or ``default`` when it is empty (errors name the field)."""
    from siyu.services.metrics import parse_day

    return parse_day(value, name, default)


def aipl_customer_page(
    ctx: Context,
    user: User,
    as_of: str | date | None = None,
    stage: str | None = None,
    page: int = 1,
    page_size: int = 50,
    config: AiplConfig | None = None,
) -> dict[str, Any]:
    """Drill-down: the customers of one AIPL stage (or all), with name and active guides."""
    page, page_size = _paging(page, page_size)
    if stage and stage not in aipl.STAGES:
        raise SiyuError(f"stage {stage!r} is unknown; use one of A, I, P, L", "stage")
    s = _scoped(ctx, user)
    day = _as_of(ctx, s.brand_id, as_of)
    st = restrict(aipl.aipl_stage(s.t, day, config), s.allowed)
    if stage:
        st = st.filter(st.stage == stage)
    return _customer_page(ctx, user, st, day, page, page_size)


def _customer_page(ctx: Context, user: User, expr: ir.Table, day: date, page: int, page_size: int) -> dict[str, Any]:
    total = int(fetch_scalar(ctx, expr.count()))
    rows = expr.order_by("customer_id").limit(page_size, offset=(page - 1) * page_size)
    df = _with_people(ctx, user.brand_id, fetch_frame(ctx, rows))
    return {"as_of": day.isoformat(), "total": total, "page": page, "page_size": page_size, "items": records(df)}


# --- lifecycle ---------------------------------------------------------------------------------------------


def lifecycle_report(ctx: Context, user: User, as_of: str | date | None = None, new_days: int = 30) -> dict[str, Any]:
    """Customers per new/old lifecycle stage on ``as_of``."""
    s = _scoped(ctx, user)
    day = _as_of(ctx, s.brand_id, as_of)
    nd = _positive(new_days, "new_days", allow_none=False)
    assert nd is not None
    st = restrict(lifecycle.lifecycle_stage(s.t, day, nd), s.allowed)
    counts = fetch_frame(ctx, lifecycle.lifecycle_counts(st))
    frame = _stage_frame(LIFECYCLE_STAGES, counts, lifecycle.LIFECYCLE_ZH)
    return {"as_of": day.isoformat(), "new_days": nd, "stages": records(frame)}


def lifecycle_customer_page(
    ctx: Context,
    user: User,
    as_of: str | date | None = None,
    stage: str | None = None,
    new_days: int = 30,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    """Drill-down: the customers of one lifecycle stage (or all), with name and active guides."""
    page, page_size = _paging(page, page_size)
    if stage and stage not in LIFECYCLE_STAGES:
        raise SiyuError(f"stage {stage!r} is unknown; use one of {', '.join(LIFECYCLE_STAGES)}", "stage")
    s = _scoped(ctx, user)
    day = _as_of(ctx, s.brand_id, as_of)
    nd = _positive(new_days, "new_days", allow_none=False)
    assert nd is not None
    st = restrict(lifecycle.lifecycle_stage(s.t, day, nd), s.allowed)
    if stage:
        st = st.filter(st.stage == stage)
    return _customer_page(ctx, user, st, day, page, page_size)


# --- cohorts -----------------------------------------------------------------------------------------------


def cohort_report(
    ctx: Context,
    user: User,
    as_of: str | date | None = None,
    basis: str = "joined",
    by_channel: bool = False,
) -> dict[str, Any]:
    """Retention and cumulative revenue by cohort month × months since (optionally by channel)."""
    if basis not in ("joined", "first_order"):
        raise SiyuError(f"basis {basis!r} is not supported; use joined or first_order", "basis")
    s = _scoped(ctx, user)
    day = _as_of(ctx, s.brand_id, as_of)
    b: cohorts.Basis = "joined" if basis == "joined" else "first_order"
    members = restrict(cohorts.cohort_members(s.t, day, b), s.allowed)
    grid = fetch_frame(ctx, cohorts.cohort_table(s.t, day, b, by_channel, members=members))
    return {"as_of": day.isoformat(), "basis": basis, "by_channel": by_channel, "cells": records(grid)}
