"""Scheduled refit: the ``clv.refit`` schedule (daily, ``siyu.workers.schedule``) calls ``refit_due``, which refits
every brand whose newest fit is older than ``SIYU_CLV_REFIT_DAYS`` days (default 7; 0 or ``off`` disables it).

Only brands fitted before are refitted, with the options of their last successful fit (model, horizon, discount
rate) and the calibration end moved to the brand's current last day with data.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from sqlalchemy import select

from siyu.services.clv.fitting import FitOptions, fit_brand, latest_fit
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.stores.state.clv_models import ClvFitRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)
DEFAULT_REFIT_DAYS = 7


def refit_days() -> int:
    """Days between refits from ``SIYU_CLV_REFIT_DAYS`` (0 = off)."""
    raw = os.environ.get("SIYU_CLV_REFIT_DAYS", str(DEFAULT_REFIT_DAYS)).strip().lower()
    if raw in {"off", "no", "false", ""}:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        log.warning("SIYU_CLV_REFIT_DAYS=%r is not a whole number of days; CLV refits are off", raw)
        return 0


def refit_due(ctx: Context, now: datetime | None = None, every_days: int | None = None) -> list[str]:
    """Refit the brands whose newest fit is at least ``every_days`` old; returns the brand ids refitted."""
    days = refit_days() if every_days is None else every_days
    if days <= 0:
        return []
    now = now or utcnow()
    with ctx.sessions() as s:
        brands = sorted(set(s.scalars(select(ClvFitRow.brand_id)).all()))
        newest = {
            b: s.scalars(
                select(ClvFitRow.created_at).where(ClvFitRow.brand_id == b).order_by(ClvFitRow.created_at.desc())
            ).first()
            for b in brands
        }
    done: list[str] = []
    for brand in brands:
        created = newest.get(brand)
        if created is not None and now - created < timedelta(days=days):
            continue
        last = latest_fit(ctx, brand)
        opts = FitOptions() if last is None else FitOptions(last["model"], None, last["months"], last["discount_rate"])
        try:
            fit_brand(ctx, brand, opts, created_by="schedule")
            done.append(brand)
        except SiyuError as exc:  # recorded on the fit; the other brands still run
            log.warning("scheduled CLV refit of %s failed: %s", brand, exc.message)
    return done
