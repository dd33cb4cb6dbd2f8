"""CAC / ROI / realised LTV use cases: periods, the user's scope, and execution of ``siyu.analytics.acquisition``.

Predicted LTV (CLV) next to CAC lives in ``siyu.services.clv.ltv_cac``, which builds on this report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd

from siyu.analytics import acquisition as analytics
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError
from siyu.services.metrics import data_end, parse_day, tables

By = Literal["channel", "platform", "campaign", "guide"]
BY_VALUES: tuple[str, ...] = ("channel", "platform", "campaign", "guide")
DEFAULT_DAYS = 90


@dataclass(frozen=True)
class Period:
    """A reporting period (dates inclusive) and the day revenue is counted up to."""

    start: date
    end: date
    as_of: date

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "as_of": self.as_of.isoformat()}


def resolve_period(
    ctx: Context,
    brand_id: str,
    start: str | date | None = None,
    end: str | date | None = None,
    as_of: str | date | None = None,
    days: int = DEFAULT_DAYS,
) -> Period:
    """Defaults: end = the brand's last day with data, start = ``days`` days before, as_of = max(end, data end)."""
    last = data_end(ctx, brand_id)
    e = parse_day(end, "end", last)
    s = parse_day(start, "start", e - timedelta(days=days - 1))
    a = parse_day(as_of, "as_of", max(e, last))
    if s > e:
        raise SiyuError(f"start {s} is after end {e}; send start ≤ end", "start")
    if a < e:
        raise SiyuError(f"as_of {a} is before end {e}; revenue is counted up to a day at or after the period", "as_of")
    return Period(s, e, a)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NaT:
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (NaN → None, numpy scalars → Python)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def cac_report(
    ctx: Context,
    user: User,
    by: str = "channel",
    start: str | date | None = None,
    end: str | date | None = None,
    as_of: str | date | None = None,
) -> dict[str, Any]:
    """CAC, ROI and realised LTV per ``by`` (channel, platform, campaign or guide) plus the brand total.

    A guide user sees only their own row of ``by=guide`` (spend per channel is for admins and operators).
    """
    if by not in BY_VALUES:
        raise SiyuError(f"by {by!r} is not known; use one of {', '.join(BY_VALUES)}", "by")
    if user.role == Role.GUIDE and by != "guide":
        raise Forbidden("a guide sees CAC/ROI of their own customers only: use by=guide", "by")
    brand = user.brand_id
    p = resolve_period(ctx, brand, start, end, as_of)
    t = tables(ctx, brand)
    if by == "channel":
        frame = analytics.by_channel(t, p.start, p.end, p.as_of).execute()
        key = "channel_id"
    elif by == "platform":
        frame = analytics.by_platform(t, p.start, p.end, p.as_of).execute()
        key = "kind"
    else:
        key = f"{by}_id"
        frame = analytics.by_attribute(t, p.start, p.end, p.as_of, key).execute()
    total = analytics.totals(t, p.start, p.end, p.as_of).execute()
    if user.role == Role.GUIDE:
        frame = frame[frame["guide_id"] == user.guide_id]
        total = total.iloc[0:0]
    return {
        "by": by,
        "key": key,
        "period": p.as_dict(),
        "rows": records(frame),
        "total": records(total)[0] if len(total) else None,
    }


def acquired_customers(ctx: Context, brand_id: str, start: date, end: date, as_of: date) -> pd.DataFrame:
    """Acquired customers with allocated cost and realised revenue (for exports and drill-downs)."""
    return analytics.customer_costs(tables(ctx, brand_id), start, end, as_of).execute()
