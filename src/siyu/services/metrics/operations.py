"""Use cases of the private-domain assets and operations metrics: reachable customers, the asset statement,
the performance formula and its LMDI change, the WeCom funnel and the early-stage KPIs.

Dates are whole days: a period [start, end] opens at 00:00 of ``start`` and closes at the end of ``end``;
"reachable on D" means at the end of day D. Defaults: the 30 days ending on the brand's last data day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
import pandas as pd

from siyu.analytics import assets as A
from siyu.analytics import funnel as F
from siyu.analytics import performance as P
from siyu.analytics.base import Tables
from siyu.analytics.lmdi import lmdi
from siyu.domain.brand_time import brand_today
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import data_end, parse_day, restrict, scope, tables

DEFAULT_DAYS = 30
STATEMENT_BY: tuple[str, ...] = (*A.BY_VALUES, "lifecycle")
PERFORMANCE_BY: tuple[str, ...] = ("brand", "store", "guide")
FUNNEL_BY: tuple[str, ...] = ("brand", "channel", "guide", "store")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict("records"):
        clean: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            clean[str(k)] = v
        out.append(clean)
    return out


def _period(ctx: Context, brand: str, start: str | date | None, end: str | date | None) -> tuple[date, date]:
    e = parse_day(end, "end", data_end(ctx, brand))
    s = parse_day(start, "start", e - timedelta(days=DEFAULT_DAYS - 1))
    if s > e:
        raise SiyuError(f"start {s} is after end {e}; send a start on or before the end", "start")
    return s, e


def _check_by(by: str, allowed: tuple[str, ...]) -> None:
    if by not in allowed:
        raise SiyuError(f"by {by!r} is not supported; use one of {', '.join(allowed)}", "by")


def _names(t: Tables, by: str) -> dict[str, str]:
    """Display names of the units of a breakdown."""
    if by == "guide":
        df = t.guides.select(key="guide_id", name="name").execute()
    elif by == "store":
        df = t.stores.select(key="store_id", name="name").execute()
    elif by == "touchpoint":
        df = t.touchpoints.select(key="touchpoint_id", name="name").execute()
    elif by == "channel":
        df = t.channels.select(key="channel_id", name="name").execute()
    elif by == "lifecycle":
        from siyu.analytics.lifecycle import LIFECYCLE_ZH

        return dict(LIFECYCLE_ZH)
    else:
        return {t.brand_id: t.brand_id}
    return dict(zip(df["key"], df["name"], strict=True))


def _named(frame: pd.DataFrame, names: dict[str, str], key: str = "unit") -> pd.DataFrame:
    frame = frame.copy()
    frame.insert(list(frame.columns).index(key) + 1, "name", [names.get(k, k) for k in frame[key]])
    return frame


def _islands(ctx: Context, user: User, by: str, cfg: A.AssetConfig | None, as_of: date | None = None) -> Any:
    t = tables(ctx, user.brand_id)
    if by == "lifecycle":
        from siyu.analytics.lifecycle import lifecycle_stage

        isl = A.with_stage(A.islands(t, "brand", cfg), lifecycle_stage(t, (as_of or brand_today()) + timedelta(days=1)))
    else:
        isl = A.islands(t, by, cfg)
    return t, restrict(isl, scope(ctx, user))


# ---------------------------------------------------------------------------------------------- reachable
@dataclass(frozen=True)
class Reachable:
    """客群资产数 at the end of ``as_of``: the brand's total, per store and per guide."""

    as_of: date
    brand: int
    stores: pd.DataFrame
    guides: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "brand": self.brand,
            "stores": _records(self.stores),
            "guides": _records(self.guides),
        }


def reachable(
    ctx: Context, user: User, as_of: str | date | None = None, config: A.AssetConfig | None = None
) -> Reachable:
    """Reachable customers on a date (end of day) per guide, store and for the brand."""
    day = parse_day(as_of, "as_of", data_end(ctx, user.brand_id))
    at = A.day_end(day)
    t = tables(ctx, user.brand_id)
    out: dict[str, pd.DataFrame] = {}
    for by in ("brand", "store", "guide"):
        _, isl = _islands(ctx, user, by, config)
        out[by] = A.reachable_counts(isl, at).execute()
    brand = int(out["brand"]["reachable"].sum()) if len(out["brand"]) else 0
    stores = t.stores.select("store_id", "name").execute()
    stores = stores.merge(out["store"].rename(columns={"unit": "store_id"}), on="store_id", how="left")
    stores["reachable"] = stores["reachable"].fillna(0).astype("int64")
    guides = t.guides.select("guide_id", "name", "store_id").execute()
    guides = guides.merge(out["guide"].rename(columns={"unit": "guide_id"}), on="guide_id", how="left")
    guides["reachable"] = guides["reachable"].fillna(0).astype("int64")
    return Reachable(
        day,
        brand,
        stores.sort_values("store_id").reset_index(drop=True),
        guides.sort_values("guide_id").reset_index(drop=True),
    )


# ------------------------------------------------------------------------------------------ asset statement
@dataclass(frozen=True)
class AssetStatement:
    """用户资产表: one row per unit (opening + acquired + moved_in − losses − moved_out = closing)."""

    start: date
    end: date
    by: str
    rows: pd.DataFrame
    by_channel: pd.DataFrame

    def totals(self) -> dict[str, int]:
        """Sum of the rows per column (for ``by='brand'`` or ``'lifecycle'``: the brand's distinct customers)."""
        return {c: int(self.rows[c].sum()) if len(self.rows) else 0 for c in A.STATEMENT_COLUMNS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "by": self.by,
            "columns": list(A.STATEMENT_COLUMNS),
            "rows": _records(self.rows),
            "totals": self.totals(),
            "by_channel": _records(self.by_channel),
        }


def asset_statement(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    by: str = "brand",
    config: A.AssetConfig | None = None,
) -> AssetStatement:
    """The customer asset statement of a period per brand, store, guide, touchpoint or lifecycle stage (the
    stage each customer is in at the close)."""
    _check_by(by, STATEMENT_BY)
    s, e = _period(ctx, user.brand_id, start, end)
    t, isl = _islands(ctx, user, by, config, as_of=e)
    opening, closing = A.day_start(s), A.day_end(e)
    rows = A.statement(isl, opening, closing).execute()
    chan = A.acquired_by_channel(isl, opening, closing).execute()
    cnames = _names(t, "channel")
    chan.insert(2, "name", [cnames.get(c, c) for c in chan["channel_id"]])
    rows = _named(rows, _names(t, by))
    for c in A.STATEMENT_COLUMNS:
        rows[c] = rows[c].astype("int64")
    return AssetStatement(s, e, by, rows.reset_index(drop=True), chan.reset_index(drop=True))


# ------------------------------------------------------------------------------------------------ performance
@dataclass(frozen=True)
class Performance:
    """A, R, B, G and the four factors per unit (A × R/A × B/R × G/B = G)."""

    start: date
    end: date
    by: str
    rows: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "by": self.by,
            "rows": _records(self.rows),
        }


def _ratio(a: float, b: float) -> float | None:
    return None if not b else float(a) / float(b)


def _perf_rows(ctx: Context, user: User, s: date, e: date, by: str, cfg: P.PerformanceConfig | None) -> pd.DataFrame:
    t, isl = _islands(ctx, user, by, None)
    df = P.factors(t, isl, A.day_start(s), A.day_end(e), cfg).execute()
    units = [t.brand_id] if by == "brand" else list(_names(t, by))
    df = pd.DataFrame({"unit": units}).merge(df, on="unit", how="left")
    for c in ("reachable", "delivered", "bought"):
        df[c] = df[c].fillna(0).astype("int64")
    df["gmv"] = df["gmv"].fillna(0.0).astype("float64").round(2)
    df["delivery_rate"] = [_ratio(r, a) for r, a in zip(df["delivered"], df["reachable"], strict=True)]
    df["conversion_rate"] = [_ratio(b, r) for b, r in zip(df["bought"], df["delivered"], strict=True)]
    df["order_value"] = [_ratio(g, b) for g, b in zip(df["gmv"], df["bought"], strict=True)]
    df = df.astype({"delivery_rate": object, "conversion_rate": object, "order_value": object})
    return _named(df.sort_values("unit").reset_index(drop=True), _names(t, by))


def performance(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    by: str = "brand",
    config: P.PerformanceConfig | None = None,
) -> Performance:
    """私域业绩 per brand, store or guide over a period."""
    _check_by(by, PERFORMANCE_BY)
    s, e = _period(ctx, user.brand_id, start, end)
    return Performance(s, e, by, _perf_rows(ctx, user, s, e, by, config))


def factor_values(row: Mapping[Any, Any]) -> list[float | None]:
    """The four factors of a performance row (A, R/A, B/R, G/B)."""
    return [float(row["reachable"]), row["delivery_rate"], row["conversion_rate"], row["order_value"]]


@dataclass(frozen=True)
class PerformanceChange:
    """ΔGMV between two periods split into the four factors' contributions (LMDI-I, they add up to ΔG)."""

    current: Performance
    previous: Performance
    rows: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "effects": [f"{f}_effect" for f in P.FACTORS],
            "rows": _records(self.rows),
        }


def performance_change(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    prev_start: str | date | None = None,
    prev_end: str | date | None = None,
    by: str = "brand",
    config: P.PerformanceConfig | None = None,
) -> PerformanceChange:
    """Period-over-period change of 私域业绩 with each factor's contribution (default previous period: the
    same number of days just before)."""
    _check_by(by, PERFORMANCE_BY)
    s, e = _period(ctx, user.brand_id, start, end)
    pe = parse_day(prev_end, "prev_end", s - timedelta(days=1))
    ps = parse_day(prev_start, "prev_start", pe - (e - s))
    if ps > pe:
        raise SiyuError(f"prev_start {ps} is after prev_end {pe}; send a start on or before the end", "prev_start")
    cur, prev = performance(ctx, user, s, e, by, config), performance(ctx, user, ps, pe, by, config)
    before = {r["unit"]: r for r in prev.rows.to_dict("records")}
    rows = []
    for r in cur.rows.to_dict("records"):
        p = before.get(r["unit"])
        x0 = factor_values(p) if p else [0.0, None, None, None]
        g0 = float(p["gmv"]) if p else 0.0
        contrib = lmdi(x0, factor_values(r))
        row = {"unit": r["unit"], "name": r["name"], "gmv_prev": g0, "gmv": float(r["gmv"])}
        row["delta"] = row["gmv"] - g0
        row.update({f"{f}_effect": float(c) for f, c in zip(P.FACTORS, contrib, strict=True)})
        rows.append(row)
    return PerformanceChange(cur, prev, pd.DataFrame(rows))


# ----------------------------------------------------------------------------------------- funnel and KPIs
@dataclass(frozen=True)
class Funnel:
    """引流 / 服务 / 变现 success per unit, with the seeds' reference bands."""

    start: date
    end: date
    by: str
    rows: pd.DataFrame
    bands: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(F.BANDS))

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "by": self.by,
            "rows": _records(self.rows),
            "bands": {k: list(v) for k, v in self.bands.items()},
            "monetization_good": list(F.MONETIZATION_GOOD),
        }


def funnel(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    by: str = "brand",
    config: F.FunnelConfig | None = None,
) -> Funnel:
    """The WeCom funnel of the contacts invited / added in a period (lead-in only for brand and channel: an
    invitation has no guide yet)."""
    _check_by(by, FUNNEL_BY)
    s, e = _period(ctx, user.brand_id, start, end)
    t = tables(ctx, user.brand_id)
    allowed = scope(ctx, user)
    lo, hi = A.day_start(s), A.day_end(e)
    unit: Any = ibis.literal(t.brand_id) if by == "brand" else f"{by}_id"
    c = F.count_contacts(restrict(F.contacts(t, lo, hi, config), allowed), unit).execute()
    if by in ("brand", "channel"):
        li = F.count_lead_in(restrict(F.lead_in(t, lo, hi, config), allowed), unit).execute()
        df = li.merge(c, on="unit", how="outer")
    else:
        df = c.assign(invited=0, led_in=0)
    for col in ("invited", "led_in", "added", "served", "bought"):
        df[col] = df[col].fillna(0).astype("int64")
    df["lead_in_rate"] = [_ratio(a, b) for a, b in zip(df["led_in"], df["invited"], strict=True)]
    df["service_rate"] = [_ratio(a, b) for a, b in zip(df["served"], df["added"], strict=True)]
    df["monetization_rate"] = [_ratio(a, b) for a, b in zip(df["bought"], df["added"], strict=True)]
    cols = [
        "unit",
        "invited",
        "led_in",
        "lead_in_rate",
        "added",
        "served",
        "service_rate",
        "bought",
        "monetization_rate",
    ]
    df = df[cols].astype({"lead_in_rate": object, "service_rate": object, "monetization_rate": object})
    return Funnel(s, e, by, _named(df.sort_values("unit").reset_index(drop=True), _names(t, by)))


@dataclass(frozen=True)
class Kpis:
    """加粉率 per channel, 删粉率 and 互动率 for the brand and per guide."""

    start: date
    end: date
    add_rates: pd.DataFrame
    loss: pd.DataFrame
    interaction: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "add_rates": _records(self.add_rates),
            "loss": _records(self.loss),
            "interaction": _records(self.interaction),
        }


def kpis(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    config: F.FunnelConfig | None = None,
) -> Kpis:
    """Early-stage KPIs of a period."""
    s, e = _period(ctx, user.brand_id, start, end)
    t = tables(ctx, user.brand_id)
    allowed = scope(ctx, user)
    lo, hi = A.day_start(s), A.day_end(e)
    brand = ibis.literal(t.brand_id)

    # 加粉率
    added = restrict(F.contacts(t, lo, hi, config), allowed)
    adds = added.group_by("channel_id").agg(adds=added.count()).execute()
    ch = t.channels.select("channel_id", "name", "kind").execute()
    ex = F.exposures(t, lo, hi).execute()
    ar = ch.merge(ex, on="channel_id", how="left").merge(adds, on="channel_id", how="left")
    ar[["adds", "exposures"]] = ar[["adds", "exposures"]].fillna(0).astype("int64")
    ar["add_rate"] = [_ratio(a, x) for a, x in zip(ar["adds"], ar["exposures"], strict=True)]
    ar["band_low"] = [F.ADD_RATE_BANDS.get(k, (None, None))[0] for k in ar["kind"]]
    ar["band_high"] = [F.ADD_RATE_BANDS.get(k, (None, None))[1] for k in ar["kind"]]
    ar = ar.astype({"add_rate": object, "band_low": object, "band_high": object})

    # 删粉率 and 互动率, brand + per guide
    loss_parts, inter_parts = [], []
    for by, unit in (("brand", brand), ("guide", "guide_id")):
        live = restrict(F.relations_at(t, lo), allowed)
        live = live.mutate(unit=live[unit] if isinstance(unit, str) else unit)
        lost = restrict(F.lost_in(t, lo, hi, config), allowed)
        lost = lost.mutate(unit=lost[unit] if isinstance(unit, str) else unit)
        a = live.group_by("unit").agg(contacts_at_start=live.count()).execute()
        b = lost.group_by("unit").agg(lost=lost.count()).execute()
        df = a.merge(b, on="unit", how="outer")
        df[["contacts_at_start", "lost"]] = df[["contacts_at_start", "lost"]].fillna(0).astype("int64")
        df["loss_rate"] = [_ratio(x, y) for x, y in zip(df["lost"], df["contacts_at_start"], strict=True)]
        loss_parts.append(_named(df.sort_values("unit"), _names(t, by)))

        _, isl = _islands(ctx, user, by, None)
        reach = P.reached(isl, lo, hi)
        act = F.interacted(t, lo, hi, config).select(i_cid="customer_id", i=ibis.literal(1))
        x = reach.left_join(act, reach.customer_id == act.i_cid)
        d = x.group_by("unit").agg(reachable=x.count(), interacted=x.i.notnull().cast("int64").sum()).execute()
        d["interaction_rate"] = [_ratio(x1, y) for x1, y in zip(d["interacted"], d["reachable"], strict=True)]
        inter_parts.append(_named(d.sort_values("unit"), _names(t, by)))
    loss = pd.concat(loss_parts, ignore_index=True).astype({"loss_rate": object})
    inter = pd.concat(inter_parts, ignore_index=True).astype({"interaction_rate": object})
    return Kpis(s, e, ar.sort_values("channel_id").reset_index(drop=True), loss, inter)
