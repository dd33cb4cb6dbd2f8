"""Baselines and anomalies: each key step's daily value against the same weekday of the previous weeks.

baseline = median of the same weekday over the previous ``weeks`` weeks (default 8); scale = 1.4826 × MAD with a
floor of max(1, 5% × |median|) (a flat history would otherwise flag any change); robust z = (actual − median) /
scale; band = median ± threshold × scale; a day with |z| > threshold (default 3) is flagged. History days before
the series' first non-zero day (no data yet) are not used; a day with fewer than ``min_history`` usable history
days is not scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from siyu.analytics import baselines as analytics
from siyu.domain.brand_time import brand_today
from siyu.domain.models import Role
from siyu.services import brand_webhooks
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError
from siyu.services.metrics import data_end, parse_day, tables
from siyu.services.metrics.acquisition import records

MAD_SCALE = 1.4826
FLOOR_SHARE = 0.05
DEFAULT_WEEKS = 8
DEFAULT_THRESHOLD = 3.0
TOPIC = "anomalies"


@dataclass(frozen=True)
class BandConfig:
    """How the baseline is built: weeks of same-weekday history, the |z| threshold, the fewest history points."""

    weeks: int = DEFAULT_WEEKS
    threshold: float = DEFAULT_THRESHOLD
    min_history: int = 4

    def check(self) -> BandConfig:
        """Validate (errors name the field)."""
        if not 2 <= self.weeks <= 52:
            raise SiyuError(f"weeks {self.weeks} is out of range; send 2–52", "weeks")
        if not self.threshold > 0:
            raise SiyuError(f"threshold {self.threshold} must be > 0 (e.g. 3)", "threshold")
        return self


def robust_band(values: pd.Series, start: date, end: date, cfg: BandConfig = BandConfig()) -> pd.DataFrame:
    """Band and z per day in [start, end] of a daily series (index = every day, values ≥ 0, missing = 0).

    Columns: day, actual, median, mad, scale, lower, upper, z, flagged, history (points used).
    """
    s = values.copy()
    s.index = pd.to_datetime(s.index)
    nonzero = s[s != 0]
    first = nonzero.index.min() if len(nonzero) else None
    rows: list[dict[str, Any]] = []
    for day in pd.date_range(start, end, freq="D"):
        hist_days = [day - pd.Timedelta(days=7 * k) for k in range(1, cfg.weeks + 1)]
        hist_days = [d for d in hist_days if first is not None and d >= first and d in s.index]
        hist = s.loc[hist_days].to_numpy(dtype=float) if hist_days else np.array([], dtype=float)
        actual = float(s.get(day, 0.0))
        row: dict[str, Any] = {"day": day.date(), "actual": actual, "history": len(hist)}
        if len(hist) >= cfg.min_history:
            med = float(np.median(hist))
            mad = float(np.median(np.abs(hist - med)))
            scale = max(MAD_SCALE * mad, 1.0, FLOOR_SHARE * abs(med))
            z = (actual - med) / scale
            row |= {
                "median": med,
                "mad": mad,
                "scale": scale,
                "lower": med - cfg.threshold * scale,
                "upper": med + cfg.threshold * scale,
                "z": z,
                "flagged": bool(abs(z) > cfg.threshold),
            }
        else:
            row |= {"median": None, "mad": None, "scale": None, "lower": None, "upper": None, "z": None}
            row["flagged"] = False
        rows.append(row)
    return pd.DataFrame(rows)


def _fill(frame: pd.DataFrame, start: date, end: date, channel_id: str | None) -> pd.Series:
    """Sum ``value`` per day of ``frame`` (one channel, or all) over every day in [start, end], 0 where absent."""
    if channel_id is not None:
        frame = frame[frame["channel_id"] == channel_id]
    idx = pd.date_range(start, end, freq="D")
    if frame.empty:
        return pd.Series(0.0, index=idx)
    s = frame.groupby(pd.to_datetime(frame["day"]))["value"].sum()
    return s.reindex(idx, fill_value=0.0).astype(float)


def _check_step(step: str, channel_id: str | None) -> None:
    if step not in analytics.STEPS:
        raise SiyuError(f"step {step!r} is not known; one of {', '.join(analytics.STEPS)}", "step")
    if channel_id is not None and not analytics.STEPS[step]:
        raise SiyuError(f"step {step!r} has no channel breakdown; leave channel_id out", "channel_id")


def daily_values(
    ctx: Context, brand_id: str, step: str, start: date, end: date, channel_id: str | None = None
) -> pd.Series:
    """The step's value on every day in [start, end] (0 on days without records), one channel or all."""
    _check_step(step, channel_id)
    t = tables(ctx, brand_id)
    frame = analytics.daily_series(t, step, start, end, by_channel=channel_id is not None).execute()
    return _fill(frame, start, end, channel_id)


def _default_day(ctx: Context, brand_id: str) -> date:
    """The last complete day: the brand's last day with data, at most yesterday."""
    return min(data_end(ctx, brand_id), brand_today() - timedelta(days=1))


def band_series(
    ctx: Context,
    user: User,
    step: str,
    start: str | date | None = None,
    end: str | date | None = None,
    channel_id: str | None = None,
    cfg: BandConfig = BandConfig(),
) -> dict[str, Any]:
    """Daily actuals with their band for one step (default: the 28 days ending at the last complete day)."""
    _brand_level(user)
    cfg.check()
    _check_step(step, channel_id)
    e = parse_day(end, "end", _default_day(ctx, user.brand_id))
    s = parse_day(start, "start", e - timedelta(days=27))
    if s > e:
        raise SiyuError(f"start {s} is after end {e}; send start ≤ end", "start")
    values = daily_values(ctx, user.brand_id, step, s - timedelta(days=7 * cfg.weeks), e, channel_id)
    frame = robust_band(values, s, e, cfg)
    return {
        "step": step,
        "channel_id": channel_id,
        "start": s.isoformat(),
        "end": e.isoformat(),
        "weeks": cfg.weeks,
        "threshold": cfg.threshold,
        "rows": records(frame),
    }


def _brand_level(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("baselines and anomalies are brand-level figures, for admins and operators", "role")


def detect(
    ctx: Context, brand_id: str, day: date, cfg: BandConfig = BandConfig(), by_channel: bool = True
) -> list[dict[str, Any]]:
    """Every step (and per channel where it applies) on ``day``: the flagged ones, with how far out they are."""
    cfg.check()
    start = day - timedelta(days=7 * cfg.weeks)
    t = tables(ctx, brand_id)
    channels = list(t.channels.channel_id.execute()) if by_channel else []
    found: list[dict[str, Any]] = []
    for step, has_channels in analytics.STEPS.items():
        by = has_channels and bool(channels)
        frame = analytics.daily_series(t, step, start, day, by_channel=by).execute()
        targets: list[str | None] = [None] + (channels if by else [])
        for ch in targets:
            values = _fill(frame, start, day, ch)
            row = robust_band(values, day, day, cfg).iloc[0].to_dict()
            if not row["flagged"]:
                continue
            found.append(
                {
                    "step": step,
                    "channel_id": ch,
                    "day": day.isoformat(),
                    "actual": row["actual"],
                    "median": row["median"],
                    "lower": row["lower"],
                    "upper": row["upper"],
                    "z": row["z"],
                    "direction": "above" if row["z"] > 0 else "below",
                    "off_by": row["actual"] - (row["upper"] if row["z"] > 0 else row["lower"]),
                }
            )
    return found


def anomalies(
    ctx: Context,
    user: User,
    day: str | date | None = None,
    cfg: BandConfig = BandConfig(),
    by_channel: bool = True,
) -> dict[str, Any]:
    """The anomalies of one day (default: the last complete day) for the user's brand."""
    _brand_level(user)
    d = parse_day(day, "day", _default_day(ctx, user.brand_id))
    return {
        "brand_id": user.brand_id,
        "day": d.isoformat(),
        "weeks": cfg.weeks,
        "threshold": cfg.threshold,
        "anomalies": detect(ctx, user.brand_id, d, cfg, by_channel),
    }


def check_and_notify(
    ctx: Context,
    brand_id: str,
    day: date | None = None,
    cfg: BandConfig = BandConfig(),
    notify: bool = True,
    **delivery_options: Any,
) -> dict[str, Any]:
    """Detect the day's anomalies; with ``notify`` POST them to the brand's ``anomalies`` webhook when any."""
    d = day or _default_day(ctx, brand_id)
    found = detect(ctx, brand_id, d, cfg)
    result: dict[str, Any] = {"brand_id": brand_id, "day": d.isoformat(), "anomalies": found, "delivery": None}
    if notify and found:
        payload = {
            "topic": TOPIC,
            "brand_id": brand_id,
            "day": d.isoformat(),
            "weeks": cfg.weeks,
            "threshold": cfg.threshold,
            "anomalies": found,
        }
        delivery = brand_webhooks.send(ctx, brand_id, TOPIC, payload, **delivery_options)
        if delivery is None:
            result["delivery"] = {"ok": False, "error": "no anomalies webhook set for this brand"}
        else:
            result["delivery"] = {
                "ok": delivery.ok,
                "attempts": delivery.attempts,
                "status_code": delivery.status_code,
                "error": delivery.error,
            }
    return result


def check_all_brands(ctx: Context) -> list[dict[str, Any]]:
    """The daily job (``siyu.workers.schedule``): check the last complete day of every brand that has an
    anomalies webhook and notify it. Brands without a webhook are skipped; a failing brand does not stop others."""
    import logging

    from siyu.services.brands import list_brands

    log = logging.getLogger(__name__)
    results: list[dict[str, Any]] = []
    for brand in list_brands(ctx):
        if brand_webhooks.get_webhook(ctx, brand.id, TOPIC) is None:
            continue
        try:
            results.append(check_and_notify(ctx, brand.id))
        except Exception:  # one brand's failure is logged; the others are still checked
            log.exception("anomaly check of brand %s failed", brand.id)
    return results
