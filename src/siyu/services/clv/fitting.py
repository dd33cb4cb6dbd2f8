"""Fit a brand: summary of its orders up to a calibration end → purchase-count model + Gamma-Gamma → per-customer
predictions, stored atomically in ``clv_predictions`` (the brand's previous predictions are replaced in one
transaction) and the fit's estimates in the state table ``clv_fits``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from siyu.analytics.base import customer_orders
from siyu.analytics.clv_summary import summary
from siyu.clv import gamma_gamma
from siyu.clv.mle import Fit
from siyu.clv.models import TRANSACTION_MODELS, transaction_model
from siyu.clv.value import expected_purchases_in, lifetime_value, monthly_rate
from siyu.domain.brand_time import local_day
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.metrics import data_end, parse_day, tables
from siyu.stores.state.clv_models import ClvFitRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = tuple(TRANSACTION_MODELS)
DEFAULT_MODEL = "bgnbd"
UNIT_DAYS = 7.0
RUNNING_TIMEOUT = timedelta(
    hours=1
)  # a fit still "running" after this is taken as crashed (a new one may start)  # the models' time unit: weeks
PREDICTION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "x",
    "t_x",
    "T",
    "monetary",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
)
# (stage, fraction done 0..1)
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class FitOptions:
    """What to fit: the model, the calibration end (None = the brand's last day with data), the CLV horizon in
    months and the annual discount rate."""

    model: str = DEFAULT_MODEL
    calibration_end: str | date | None = None
    months: int = 12
    discount_rate: float = 0.1

    def check(self) -> None:
        """Raise a SiyuError naming the field when an option is out of range."""
        transaction_model(self.model)  # unknown model → error naming 'model'
        if not 1 <= int(self.months) <= 120:
            raise SiyuError(f"months must be between 1 and 120 (got {self.months})", "months")
        monthly_rate(self.discount_rate)  # error naming 'discount_rate'


@dataclass(frozen=True)
class Predictions:
    """A fitted pair of models and the per-customer predictions they give."""

    transactions: Fit
    spend: Fit
    frame: pd.DataFrame  # PREDICTION_COLUMNS


def order_summary(ctx: Context, brand_id: str, calibration_end: date, holdout_end: date | None = None) -> pd.DataFrame:
    """The brand's (x, t_x, T, monetary[, holdout]) summary in weeks, one row per customer born by the end."""
    t = tables(ctx, brand_id)
    expr = summary(customer_orders(t), calibration_end, holdout_end, unit_days=UNIT_DAYS)
    frame: pd.DataFrame = expr.to_pyarrow().to_pandas()
    return frame


def first_order_day(ctx: Context, brand_id: str) -> date | None:
    """The brand-local day of the brand's first (non-refunded) order."""
    co = customer_orders(tables(ctx, brand_id))
    value = co.ordered_at.min().to_pyarrow().as_py()
    if value is None:
        return None
    return local_day(value) if isinstance(value, datetime) else value


def fit_summary(s: pd.DataFrame, opts: FitOptions, progress: Progress | None = None) -> Predictions:
    """Fit both models to a summary and predict every customer with T > 0 (pure computation, no I/O)."""
    report = progress or (lambda stage, done: None)
    s = s[s["T"] > 0]
    if s.empty:
        raise SiyuError(
            "no customers with a first order before the calibration end; choose a later calibration_end",
            "calibration_end",
        )
    x, t_x, T, z = (s[c].to_numpy(dtype=np.float64) for c in ("x", "t_x", "T", "monetary"))
    model = transaction_model(opts.model)
    report(f"fitting {opts.model} to {len(s):,} customers", 0.1)
    trans = model.fit(x, t_x, T)
    repeat = (x > 0) & (z > 0)
    report(f"fitting gamma_gamma to {int(repeat.sum()):,} repeat customers", 0.6)
    if not repeat.any():
        raise SiyuError("no repeat purchases before the calibration end: the spend model needs them", "calibration_end")
    spend = gamma_gamma.fit(x[repeat], z[repeat])
    report("predicting", 0.8)
    months = int(opts.months)
    frame = pd.DataFrame(
        {
            "customer_id": s["customer_id"].astype(str).to_numpy(),
            "x": x,
            "t_x": t_x,
            "T": T,
            "monetary": z,
            "p_alive": np.asarray(model.p_alive(trans, x, t_x, T), dtype=np.float64),
            "expected_purchases": expected_purchases_in(trans, months, x, t_x, T, unit_days=UNIT_DAYS),
            "expected_spend": np.asarray(gamma_gamma.conditional_expected_spend(spend, x, z), dtype=np.float64),
            "clv": lifetime_value(trans, spend, x, t_x, T, z, months, opts.discount_rate, unit_days=UNIT_DAYS),
        }
    )
    return Predictions(trans, spend, frame)


def _set(ctx: Context, fit_id: str, **values: Any) -> None:
    with ctx.sessions.begin() as s:
        row = s.get(ClvFitRow, fit_id)
        if row is not None:
            for k, v in values.items():
                setattr(row, k, v)


def start_fit(ctx: Context, brand_id: str, opts: FitOptions, created_by: str = "") -> str:
    """Record a fit as running (after checking the options) and return its id; ``run_fit`` does the work."""
    opts.check()
    end = resolve_calibration_end(ctx, brand_id, opts.calibration_end)
    with ctx.sessions() as s:
        running = s.scalars(
            select(ClvFitRow.id).where(
                ClvFitRow.brand_id == brand_id,
                ClvFitRow.status == "running",
                ClvFitRow.created_at > utcnow() - RUNNING_TIMEOUT,
            )
        ).first()
    if running is not None:
        raise Conflict(f"CLV fit {running} of this brand is still running; wait for it to finish", "fit_id")
    fit_id = uuid.uuid4().hex[:16]
    with ctx.sessions.begin() as s:
        s.add(
            ClvFitRow(
                id=fit_id,
                brand_id=brand_id,
                model=opts.model,
                calibration_end=end,
                months=int(opts.months),
                discount_rate=float(opts.discount_rate),
                status="running",
                progress="queued",
                params={},
                se={},
                spend_params={},
                spend_se={},
                created_by=created_by,
            )
        )
    return fit_id


def resolve_calibration_end(ctx: Context, brand_id: str, value: str | date | None) -> date:
    """The calibration end: a date within the brand's order history (default: its last day with data)."""
    first = first_order_day(ctx, brand_id)
    if first is None:
        raise SiyuError(f"brand {brand_id!r} has no orders: import orders before fitting CLV", "brand_id")
    end = parse_day(value, "calibration_end", data_end(ctx, brand_id))
    if end <= first:
        raise SiyuError(
            f"calibration_end {end} is not after the first order ({first}); choose a later date", "calibration_end"
        )
    return end


def run_fit(ctx: Context, fit_id: str, progress: Progress | None = None) -> dict[str, Any]:
    """Run a recorded fit: summary, models, predictions replacing the brand's previous ones; returns the fit.

    On a SiyuError the fit is marked failed (with the reason) and the error raised again; the brand's previous
    predictions stay.
    """
    with ctx.sessions() as s:
        row = s.get(ClvFitRow, fit_id)
        if row is None:
            raise NotFound(f"CLV fit {fit_id!r} does not exist", "fit_id")
        brand_id, calibration_end = row.brand_id, row.calibration_end
        opts = FitOptions(row.model, row.calibration_end, row.months, row.discount_rate)
    began = time.perf_counter()

    def report(stage: str, done: float) -> None:
        log.info("clv fit %s (%s, brand %s): %s", fit_id, opts.model, brand_id, stage)
        _set(ctx, fit_id, progress=stage[:200])
        if progress is not None:
            progress(stage, done)

    try:
        report("summarising orders", 0.0)
        frame = order_summary(ctx, brand_id, calibration_end)
        pred = fit_summary(frame, opts, report)
        report(f"storing {len(pred.frame):,} predictions", 0.9)
        store_predictions(ctx, brand_id, fit_id, pred.frame)
    except SiyuError as exc:
        _set(ctx, fit_id, status="failed", error=exc.message, progress="failed", finished_at=utcnow())
        log.warning("clv fit %s failed: %s", fit_id, exc.message)
        raise
    except Exception as exc:
        _set(ctx, fit_id, status="failed", error=f"internal error: {exc}", progress="failed", finished_at=utcnow())
        raise
    t, sp = pred.transactions, pred.spend
    _set(
        ctx,
        fit_id,
        status="done",
        progress="done",
        params=t.params,
        se=t.se,
        log_likelihood=t.log_likelihood,
        spend_params=sp.params,
        spend_se=sp.se,
        spend_log_likelihood=sp.log_likelihood,
        customers=t.customers,
        repeat_customers=sp.customers,
        seconds=time.perf_counter() - began,
        finished_at=utcnow(),
    )
    report("done", 1.0)
    return get_fit(ctx, brand_id, fit_id)


def fit_brand(
    ctx: Context, brand_id: str, opts: FitOptions | None = None, created_by: str = "", progress: Progress | None = None
) -> dict[str, Any]:
    """Fit the brand now (``start_fit`` + ``run_fit``) and return the stored fit."""
    fit_id = start_fit(ctx, brand_id, opts or FitOptions(), created_by)
    return run_fit(ctx, fit_id, progress)


def run_fit_job(ctx: Context, fit_id: str) -> None:
    """Background entry point (Huey ``enqueue_call``): run a recorded fit; failures are recorded on the fit."""
    with contextlib.suppress(SiyuError):
        run_fit(ctx, fit_id)


def store_predictions(ctx: Context, brand_id: str, fit_id: str, frame: pd.DataFrame) -> None:
    """Replace the brand's predictions with ``frame`` in one warehouse transaction."""
    rows = frame.loc[:, list(PREDICTION_COLUMNS)].copy()
    rows.insert(0, "brand_id", brand_id)
    rows.insert(2, "fit_id", fit_id)
    rows["computed_at"] = pd.Timestamp(utcnow())
    wh = ctx.warehouse
    with wh.write_lock, wh.transaction() as cur:
        cur.register("clv_new_predictions", rows)
        try:
            cur.execute("DELETE FROM clv_predictions WHERE brand_id = ?", [brand_id])
            cur.execute(
                'INSERT INTO clv_predictions (brand_id, customer_id, fit_id, x, t_x, "T", monetary, p_alive, '
                "expected_purchases, expected_spend, clv, computed_at) SELECT brand_id, customer_id, fit_id, x, t_x, "
                '"T", monetary, p_alive, expected_purchases, expected_spend, clv, computed_at FROM clv_new_predictions'
            )
        finally:
            cur.unregister("clv_new_predictions")


def _fit_dict(row: ClvFitRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "brand_id": row.brand_id,
        "model": row.model,
        "spend_model": gamma_gamma.NAME,
        "calibration_end": row.calibration_end.isoformat(),
        "months": row.months,
        "discount_rate": row.discount_rate,
        "status": row.status,
        "progress": row.progress,
        "error": row.error,
        "params": row.params,
        "se": row.se,
        "log_likelihood": row.log_likelihood,
        "spend_params": row.spend_params,
        "spend_se": row.spend_se,
        "spend_log_likelihood": row.spend_log_likelihood,
        "customers": row.customers,
        "repeat_customers": row.repeat_customers,
        "seconds": row.seconds,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def get_fit(ctx: Context, brand_id: str, fit_id: str) -> dict[str, Any]:
    """One fit of the brand (NotFound otherwise)."""
    with ctx.sessions() as s:
        row = s.get(ClvFitRow, fit_id)
        if row is None or row.brand_id != brand_id:
            raise NotFound(f"CLV fit {fit_id!r} does not exist", "fit_id")
        return _fit_dict(row)


def list_fits(ctx: Context, brand_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The brand's fits, newest first (at most ``limit``, 1..200)."""
    if not 1 <= limit <= 200:
        raise SiyuError(f"limit must be between 1 and 200 (got {limit})", "limit")
    with ctx.sessions() as s:
        rows = s.scalars(
            select(ClvFitRow)
            .where(ClvFitRow.brand_id == brand_id)
            .order_by(ClvFitRow.created_at.desc(), ClvFitRow.id)
            .limit(limit)
        ).all()
        return [_fit_dict(r) for r in rows]


def latest_fit(ctx: Context, brand_id: str) -> dict[str, Any] | None:
    """The brand's fit whose predictions are stored (the newest one that finished), or None."""
    with ctx.sessions() as s:
        row = s.scalars(
            select(ClvFitRow)
            .where(ClvFitRow.brand_id == brand_id, ClvFitRow.status == "done")
            .order_by(ClvFitRow.finished_at.desc())
            .limit(1)
        ).first()
        return _fit_dict(row) if row is not None else None
