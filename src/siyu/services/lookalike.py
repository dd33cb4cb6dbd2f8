"""Lookalike of a seed segment: score every other customer by similarity, with the held-out lift.

Features come from ``siyu.analytics.lookalike`` (RFM values, acquisition channel, tags, event counts, reach);
the model and the evaluation are ``siyu.domain.lookalike``. The model learns from the whole segment and the whole
brand (a guide's own customers are too few to learn from); a guide is shown scores of their own customers only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from siyu.analytics.lookalike import lookalike_features, top_values
from siyu.domain import lookalike as model
from siyu.domain.models import Role
from siyu.services import segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.exports import export_frame
from siyu.services.metrics import scope

MIN_SEED = 10
MAX_TOP = 5000


@dataclass
class LookalikeResult:
    """The lift of the method on a held-out part of the seed, the feature weights and the top customers."""

    segment_id: str
    as_of: str
    seed_size: int
    scored: int
    lift: float
    hidden: int
    found_in_top_decile: int
    top_decile_size: int
    features: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def feature_matrix(ctx: Context, brand_id: str, as_of: date) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(customer ids + raw features, the numeric matrix, feature labels) for every customer of the brand."""
    t = segments.tables(ctx, brand_id)
    tops = {k: [str(v) for v in e.to_pandas()["value"]] for k, e in top_values(t, as_of).items()}
    expr = lookalike_features(t, as_of, tops["events"], tops["channels"], tops["tags"])
    frame: pd.DataFrame = expr.order_by("customer_id").to_pandas()
    at = pd.Timestamp(as_of)
    last = pd.to_datetime(frame["last_order_at"])
    recency = ((at.normalize() - last.dt.normalize()).dt.days).astype("float64")
    cols: dict[str, np.ndarray] = {
        "recency_days": np.where(recency.isna(), 3660.0, recency.fillna(0)),
        "has_order": frame["frequency"].notna().astype(float).to_numpy(),
        "log_frequency": np.log1p(frame["frequency"].fillna(0).astype(float).to_numpy()),
        "log_monetary": np.log1p(frame["monetary"].fillna(0).astype(float).to_numpy()),
        "log_page_views": np.log1p(frame["page_views"].fillna(0).astype(float).to_numpy()),
        "active_relation": frame["active_relation"].astype(float).to_numpy(),
        "in_group": frame["in_group"].astype(float).to_numpy(),
    }
    for i, name in enumerate(tops["events"]):
        cols[f"log_events:{name}"] = np.log1p(frame[f"ev_{i}"].fillna(0).astype(float).to_numpy())
    for i, ch in enumerate(tops["channels"]):
        cols[f"channel:{ch}"] = frame[f"ch_{i}"].fillna(0).astype(float).to_numpy()
    for i, tag in enumerate(tops["tags"]):
        cols[f"tag:{tag}"] = frame[f"tag_{i}"].fillna(0).astype(float).to_numpy()
    labels = list(cols)
    x = np.column_stack([cols[k] for k in labels]) if labels else np.zeros((len(frame), 0))
    return frame, x, labels


def lookalike(
    ctx: Context,
    user: User,
    segment_id: str,
    top: int = 100,
    holdout: float = 0.2,
    seed: int = 7,
    as_of: str | date | None = None,
) -> LookalikeResult:
    """Score every customer outside the segment by likeness to its members; evaluate on a held-out split."""
    if top < 1 or top > MAX_TOP:
        raise SiyuError(f"top must be between 1 and {MAX_TOP} (got {top})", "top")
    if not 0.05 <= holdout <= 0.5:
        raise SiyuError(f"holdout must be between 0.05 and 0.5 (got {holdout}); 0.2 hides a fifth", "holdout")
    day = segments.resolve_as_of(ctx, user.brand_id, as_of)
    brand_user = User(user.id, user.brand_id, user.username, user.display_name, Role.ADMIN, None, user.language)
    members = set(segments.members_frame(ctx, brand_user, segment_id)["customer_id"])
    frame, x, labels = feature_matrix(ctx, user.brand_id, day)
    is_seed = frame["customer_id"].isin(members).to_numpy()
    n_seed = int(is_seed.sum())
    if n_seed < MIN_SEED:
        raise SiyuError(f"the segment has {n_seed} members here; a lookalike needs at least {MIN_SEED}", "segment_id")
    if n_seed == len(frame):
        raise SiyuError("every customer is in the segment; there is nobody else to score", "segment_id")
    ev = model.evaluate(x, is_seed, holdout=holdout, rng_seed=seed)
    fitted = model.fit(x, is_seed)
    scores = fitted.score(x)
    candidates = ~is_seed
    allowed = scope(ctx, user)
    if allowed is not None:  # a guide: scores of their own customers only
        mine = set(allowed.to_pyarrow().column("customer_id").to_pylist())
        candidates &= frame["customer_id"].isin(mine).to_numpy()
    others = np.flatnonzero(candidates)
    order = others[np.argsort(-scores[others], kind="stable")[:top]]
    c = segments.tables(ctx, user.brand_id).customers
    ids = [str(v) for v in frame["customer_id"].to_numpy()[order]]
    prof = c.filter(c.customer_id.isin(ids)).select("customer_id", "name", "city").to_pandas().set_index("customer_id")
    customers = [
        {
            "customer_id": cid,
            "score": round(float(scores[i]), 4),
            "name": prof["name"].get(cid) if cid in prof.index else None,
            "city": prof["city"].get(cid) if cid in prof.index else None,
        }
        for cid, i in zip(ids, order, strict=True)
    ]
    weights = sorted(zip(labels, fitted.weights, strict=True), key=lambda p: -abs(p[1]))
    return LookalikeResult(
        segment_id=segment_id,
        as_of=day.isoformat(),
        seed_size=n_seed,
        scored=len(others),  # customers outside the seed that the user may see
        lift=round(ev.lift, 3),
        hidden=ev.hidden,
        found_in_top_decile=ev.found_in_top_decile,
        top_decile_size=ev.top_decile_size,
        features=[{"feature": k, "weight": round(float(w), 4)} for k, w in weights],
        customers=customers,
    )


def export_lookalike(ctx: Context, user: User, segment_id: str, fmt: str, top: int = 1000) -> tuple[bytes, str, str]:
    """The top lookalike customers (customer_id, score, name, city) as CSV / XLSX / Parquet."""
    result = lookalike(ctx, user, segment_id, top=top)
    frame = pd.DataFrame(result.customers, columns=["customer_id", "score", "name", "city"])
    data, media = export_frame(frame, fmt)
    return data, media, f"lookalike-{segment_id}.{fmt}"
