"""Live statistics of a fission campaign (seed 001: 访问参与率, 参与率, 人均邀请, 新用户参与率, 裂变层级; K-factor,
completion, reward cost, cost per new customer, 7/30-day retention of new customers) — for the campaign and by
variant, channel and guide; the A/B comparison of variants (Wilson intervals + the always-valid mSPRT p-value of
``siyu.domain.journey.sequential``, as in journeys); the per-guide leaderboard against the campaign's targets;
the physical-gift fulfilment list. Every formula is in ``docs/campaigns.md`` (## 指标 Metrics) and ``FORMULAS``.

A guide user sees only the rows attributed to them (``guide_id`` of participants, helps and rewards).
Reads the campaign tables of the state DB (SQLAlchemy); retention, conversions and GMV read the warehouse (Ibis,
``siyu.analytics.campaigns``)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from siyu.domain.brand_time import UTC_OFFSET, local_day
from siyu.domain.journey.sequential import compare, wilson
from siyu.domain.models import Role
from siyu.errors import NotFound, SiyuError
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.stores.state.campaign_models import (
    CampaignGiftRow,
    CampaignHelpRow,
    CampaignParticipantRow,
    CampaignRewardRow,
    CampaignRow,
    CampaignTeamRow,
    CampaignVisitRow,
)

RETENTION_DAYS = (7, 30)
ALPHA = 0.05
SLICES = ("variant", "channel", "guide")
NONE_KEY = "(none)"

# metric key → (中文, English, formula) — the one definition of each figure
FORMULAS: dict[str, tuple[str, str, str]] = {
    "visits": ("访问次数", "Visits", "Σ views of the campaign's public pages (campaign_visits)"),
    "participants": ("发起人数", "Participants", "people who started sharing (campaign_participants rows)"),
    "helpers": ("助力人数", "Helpers", "counted helps (state counted; one per person by construction)"),
    "people": ("参与人数", "People taking part", "distinct persons among participants ∪ counted helpers"),
    "visit_participation": ("访问参与率", "Visit → participation", "participants / visits"),
    "participation": ("参与率", "Participation", "people taking part / visits"),
    "invites_per_participant": ("人均邀请", "Invites per participant", "counted helps / participants"),
    "new_user_share": (
        "新用户参与率",
        "New-user share among helpers",
        "counted helps by new customers / counted helps",
    ),
    "k_factor": (
        "K 因子",
        "K-factor",
        "invited participants (depth ≥ 1) / participants = invites per participant × helper→participant rate",
    ),
    "completion_rate": (
        "完成率",
        "Completion rate",
        "assist: participants with ≥ 1 tier reached / participants; group-buy: complete teams / teams; "
        "gift: gifts claimed or redeemed / gifts sent",
    ),
    "new_customers": (
        "新客数",
        "New customers",
        "distinct persons not a customer before joining, among participants ∪ counted helpers",
    ),
    "reward_cost": ("奖励成本", "Reward cost", "Σ cost of the campaign's granted rewards (clawed back excluded)"),
    "cost_per_new_customer": ("新客成本", "Cost per new customer", "reward cost / new customers"),
    "retention_7d": (
        "7 日留存",
        "7-day retention",
        "new customers with an order or event in [t0 + 1 d, t0 + 7 d] / new customers who joined ≥ 7 d ago",
    ),
    "retention_30d": (
        "30 日留存",
        "30-day retention",
        "new customers with an order or event in [t0 + 1 d, t0 + 30 d] / new customers who joined ≥ 30 d ago",
    ),
    "conversions": (
        "转化人数",
        "Conversions",
        "people brought (participants ∪ counted helpers) with an order after t0",
    ),
    "gmv": ("成交额", "GMV", "Σ amount of those orders between t0 and the campaign's end (or now)"),
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _day(t: datetime) -> str:
    return local_day(t).isoformat()


@dataclass
class _Acc:
    """Counters of one slice."""

    visits: int | None = 0
    participants: int = 0
    invited: int = 0
    helps_attempted: int = 0
    helpers: int = 0
    helpers_new: int = 0
    units: int = 0
    completed: int = 0
    reward_cost: float = 0.0
    people: int = 0
    new_people: int = 0
    ret: dict[int, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in RETENTION_DAYS})

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "visits": self.visits,
            "participants": self.participants,
            "invited_participants": self.invited,
            "helps_attempted": self.helps_attempted,
            "helpers": self.helpers,
            "helpers_new": self.helpers_new,
            "people": self.people,
            "new_customers": self.new_people,
            "completion_units": self.units,
            "completed": self.completed,
            "reward_cost": round(self.reward_cost, 6),
            "visit_participation": _ratio(self.participants, self.visits or 0),
            "participation": _ratio(self.people, self.visits or 0),
            "invites_per_participant": _ratio(self.helpers, self.participants),
            "new_user_share": _ratio(self.helpers_new, self.helpers),
            "k_factor": _ratio(self.invited, self.participants),
            "completion_rate": _ratio(self.completed, self.units),
            "cost_per_new_customer": _ratio(self.reward_cost, self.new_people),
        }
        for d in RETENTION_DAYS:
            retained, eligible = self.ret[d]
            out[f"retention_{d}d"] = _ratio(retained, eligible)
            out[f"retention_{d}d_eligible"] = eligible
            out[f"retention_{d}d_retained"] = retained
        return out


# the columns read (tuples, not ORM objects: a campaign may have 100,000s of rows)
P_COLS = ("id", "person_key", "customer_id", "variant", "channel", "guide", "depth", "tiers_reached", "new", "t0")
H_COLS = ("state", "variant", "channel", "guide", "new", "key", "customer_id", "t0", "depth")
R_COLS = ("participant_id", "grant_id", "status", "cost", "variant", "guide", "what")


@dataclass
class _Data:
    """The campaign's rows (already restricted to a guide when the user is one) as frames."""

    campaign: CampaignRow
    parts: pd.DataFrame
    helps: pd.DataFrame
    rewards: pd.DataFrame
    units: list[tuple[str, bool]]  # group-buy teams (leader, complete) / gifts (giver, claimed)
    visits: list[tuple[str, str, str, int]]  # (day, variant, channel, views)
    guide: str | None


def _campaign(ctx: Context, user: User, campaign_id: str) -> CampaignRow:
    with ctx.sessions() as s:
        row = s.get(CampaignRow, campaign_id)
    if row is None or row.brand_id != user.brand_id:
        raise NotFound(f"campaign {campaign_id!r} not found", "campaign_id")
    return row


def _frame(rows: Any, cols: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(cols))
    for c in ("variant", "channel", "guide"):
        if c in df:
            df[c] = df[c].fillna("").astype(str).replace("", NONE_KEY)
    return df


def _load(ctx: Context, user: User, campaign_id: str) -> _Data:
    camp = _campaign(ctx, user, campaign_id)
    guide = (user.guide_id or "") if user.role == Role.GUIDE else None
    P, H, R = CampaignParticipantRow, CampaignHelpRow, CampaignRewardRow
    with ctx.sessions() as s:
        qp = select(
            P.id,
            P.person_key,
            P.customer_id,
            P.variant,
            P.channel,
            P.guide_id,
            P.depth,
            P.tiers_reached,
            P.new_customer,
            P.first_seen_at,
        ).where(P.campaign_id == campaign_id)
        qh = select(
            H.state,
            H.variant,
            H.channel,
            H.guide_id,
            H.new_customer,
            H.helper_key,
            H.helper_customer_id,
            func.coalesce(H.counted_at, H.created_at),
            H.depth,
        ).where(H.campaign_id == campaign_id)
        qr = select(R.participant_id, R.grant_id, R.status, R.cost, R.variant, R.guide_id, R.what).where(
            R.campaign_id == campaign_id
        )
        if guide is not None:
            qp, qh, qr = qp.where(P.guide_id == guide), qh.where(H.guide_id == guide), qr.where(R.guide_id == guide)
        parts = _frame(s.execute(qp).all(), P_COLS)
        helps = _frame(s.execute(qh).all(), H_COLS)
        rewards = _frame(s.execute(qr).all(), R_COLS)
        units: list[tuple[str, bool]] = []
        if camp.kind == "group_buy":
            units = [
                (a, b == "complete")
                for a, b in s.execute(
                    select(CampaignTeamRow.leader_id, CampaignTeamRow.status).where(
                        CampaignTeamRow.campaign_id == campaign_id
                    )
                )
            ]
        elif camp.kind == "gift":
            units = [
                (a, b in ("claimed", "redeemed"))
                for a, b in s.execute(
                    select(CampaignGiftRow.giver_id, CampaignGiftRow.status).where(
                        CampaignGiftRow.campaign_id == campaign_id
                    )
                )
            ]
        visits: list[tuple[str, str, str, int]] = []
        if guide is None:
            V = CampaignVisitRow
            visits = [
                (d, v or NONE_KEY, c or NONE_KEY, int(n))
                for d, v, c, n in s.execute(
                    select(V.day, V.variant, V.channel, V.views).where(V.campaign_id == campaign_id)
                )
            ]
    return _Data(camp, parts, helps, rewards, units, visits, guide)


def _people(data: _Data) -> pd.DataFrame:
    """Participants and counted helpers as persons ``(key, customer_id, t0, variant, channel, guide, new)``: one
    row per person (customer id when OneID knows them, else the identity key) — the earliest appearance decides
    the slice; ``new`` if any appearance was new."""
    p, h = data.parts, data.helps
    cols = ["key", "customer_id", "t0", "variant", "channel", "guide", "new"]
    pp = p.assign(key=p["person_key"])[cols] if len(p) else pd.DataFrame(columns=cols)
    hc = h[h["state"] == "counted"]
    hh = hc[cols] if len(hc) else pd.DataFrame(columns=cols)
    both = (
        pd.concat([x for x in (pp, hh) if len(x)], ignore_index=True)
        if len(pp) or len(hh)
        else pd.DataFrame(columns=cols)
    )
    if both.empty:
        return both
    cid = both["customer_id"]
    both["key"] = ("c:" + cid.astype(str)).where(cid.notna() & (cid.astype(str) != ""), both["key"])
    both["new"] = both["new"].astype(bool)
    anynew = both.groupby("key")["new"].max()
    first = both.sort_values("t0", kind="stable").drop_duplicates("key", keep="first").copy()
    first["new"] = first["key"].map(anynew).astype(bool)
    return first


def _warehouse(
    ctx: Context, brand_id: str, people: pd.DataFrame, until: datetime
) -> tuple[dict[str, dict[int, int]], dict[str, tuple[int, float]]]:
    """Retention flags of the new customers and the orders (count, GMV) of everyone, from the warehouse."""
    from siyu.analytics.campaigns import cohort_table, orders_after, retained
    from siyu.services.metrics import fetch_frame, tables

    known = people[people["customer_id"].notna() & (people["customer_id"].astype(str) != "")]
    if known.empty:
        return {}, {}
    t = tables(ctx, brand_id)
    ret: dict[str, dict[int, int]] = defaultdict(dict)
    new = known[known["new"]]
    if len(new):
        frame = fetch_frame(ctx, retained(t, cohort_table(new), RETENTION_DAYS))
        for d in RETENTION_DAYS:
            for cid, flag in zip(frame["customer_id"].tolist(), frame[f"r{d}"].tolist(), strict=True):
                ret[str(cid)][d] = int(flag)
    frame = fetch_frame(ctx, orders_after(t, cohort_table(known), until))
    cols = (frame["customer_id"].tolist(), frame["orders"].tolist(), frame["gmv"].tolist())
    orders = {str(c): (int(n), float(g or 0.0)) for c, n, g in zip(*cols, strict=True)}
    return ret, orders


def _count(frame: pd.DataFrame, dim: str | None) -> dict[str, float]:
    """Rows per slice key ('' = the total)."""
    if frame.empty:
        return {}
    if dim is None:
        return {"": float(len(frame))}
    return {str(k): float(v) for k, v in frame.groupby(dim).size().items()}


def _sum(frame: pd.DataFrame, dim: str | None, col: str) -> dict[str, float]:
    if frame.empty:
        return {}
    if dim is None:
        return {"": float(frame[col].sum())}
    return {str(k): float(v) for k, v in frame.groupby(dim)[col].sum().items()}


def _accumulate(data: _Data, ctx: Context, now: datetime, with_warehouse: bool) -> dict[str, Any]:
    camp = data.campaign
    p, h, r = data.parts, data.helps, data.rewards
    counted = h[h["state"] == "counted"]
    people = _people(data)
    ret, orders = _warehouse(ctx, camp.brand_id, people, min(now, camp.ends_at)) if with_warehouse else ({}, {})
    if camp.kind == "assist":
        units = p.assign(done=(p["tiers_reached"] >= 1).astype(int))
    else:
        u = pd.DataFrame(data.units, columns=["id", "done"]).astype({"done": int})
        units = u.merge(p[["id", "variant", "channel", "guide"]], on="id", how="inner")
    owners = p[["id", "channel"]].rename(columns={"id": "participant_id"})
    granted = r[r["status"] == "granted"].merge(owners, on="participant_id", how="left")
    if len(granted):
        granted["channel"] = granted["channel"].fillna(NONE_KEY)
    if len(people):
        people = people.copy()
        cid_s = people["customer_id"].astype(str)
        cids = cid_s.tolist()
        for d in RETENTION_DAYS:
            known = people["new"] & people["customer_id"].notna() & (cid_s != "")
            eligible = (known & (people["t0"] + timedelta(days=d) <= now)).tolist()
            people[f"elig{d}"] = [int(e) for e in eligible]
            people[f"ret{d}"] = [int(e and ret.get(c, {}).get(d, 0)) for e, c in zip(eligible, cids, strict=True)]
        people["buyer"] = [1 if c in orders else 0 for c in cids]
        people["gmv"] = [orders[c][1] if c in orders else 0.0 for c in cids]
        people["new"] = people["new"].astype(int)
    total = _Acc(visits=None if data.guide is not None else 0)
    by: dict[str, dict[str, _Acc]] = {d: defaultdict(_Acc) for d in SLICES}
    for dim in (None, *SLICES):
        col = dim if dim != "guide" else "guide"

        def acc(key: str, dim: str | None = dim) -> _Acc:
            return total if dim is None else by[dim][key]

        for key, n in _count(p, col if dim else None).items():
            acc(key).participants = int(n)
        for key, n in _count(p[p["depth"] >= 1], col if dim else None).items():
            acc(key).invited = int(n)
        for key, n in _count(h, col if dim else None).items():
            acc(key).helps_attempted = int(n)
        for key, n in _count(counted, col if dim else None).items():
            acc(key).helpers = int(n)
        for key, n in _count(counted[counted["new"].astype(bool)], col if dim else None).items():
            acc(key).helpers_new = int(n)
        for key, n in _count(units, col if dim else None).items():
            acc(key).units = int(n)
        for key, n in _sum(units, col if dim else None, "done").items():
            acc(key).completed = int(n)
        for key, v in _sum(granted, col if dim else None, "cost").items():
            acc(key).reward_cost = v
        if len(people):
            for key, n in _count(people, col if dim else None).items():
                acc(key).people = int(n)
            for key, n in _sum(people, col if dim else None, "new").items():
                acc(key).new_people = int(n)
            for d in RETENTION_DAYS:
                for key, n in _sum(people, col if dim else None, f"elig{d}").items():
                    acc(key).ret[d][1] = int(n)
                for key, n in _sum(people, col if dim else None, f"ret{d}").items():
                    acc(key).ret[d][0] = int(n)
    for _, variant, channel, views in data.visits:
        total.visits = (total.visits or 0) + views
        for dim_name, key in (("variant", variant), ("channel", channel)):
            a = by[dim_name][key]
            a.visits = (a.visits or 0) + views
    conv: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    if len(people):
        buyers = people[people["buyer"] == 1]
        conv[""] = [float(len(buyers)), float(buyers["gmv"].sum())]
        for guide_key, grp in buyers.groupby("guide"):
            conv[f"guide:{guide_key}"] = [float(len(grp)), float(grp["gmv"].sum())]
    daily: dict[str, dict[str, int]] = defaultdict(lambda: {"visits": 0, "participants": 0, "helpers": 0, "new": 0})
    for visit_day, _v, _c, views in data.visits:
        daily[visit_day]["visits"] += views
    for frame, key in (
        (p, "participants"),
        (counted, "helpers"),
        (people[people["new"] == 1] if len(people) else people, "new"),
    ):
        if len(frame):
            days = (pd.to_datetime(frame["t0"]) + UTC_OFFSET).dt.strftime("%Y-%m-%d")
            for one_day, n in days.value_counts().items():
                daily[str(one_day)][key] += int(n)
    dp = p.groupby("depth").size() if len(p) else pd.Series(dtype=int)
    dh = counted.groupby("depth").size() if len(counted) else pd.Series(dtype=int)
    depths = sorted({int(x) for x in dp.index} | {int(x) for x in dh.index})
    return {
        "total": total,
        "by": by,
        "daily": [{"day": d, **daily[d]} for d in sorted(daily)],
        "depth": [{"depth": d, "participants": int(dp.get(d, 0)), "helpers": int(dh.get(d, 0))} for d in depths],
        "conversions": conv,
        "with_warehouse": with_warehouse,
    }


def _ab(data: _Data, by_variant: dict[str, _Acc]) -> dict[str, Any]:
    """Each variant's completion (n = completion units, x = completed) with its Wilson interval; every variant
    against the first (the comparator) with the always-valid mSPRT interval and p-value (α split evenly)."""
    variants = [v.get("id") for v in (data.campaign.definition or {}).get("variants", [])]
    if not variants:
        return {"variants": [], "comparisons": [], "comparator": None, "alpha": ALPHA}
    arms: list[dict[str, Any]] = []
    for v in variants:
        a = by_variant.get(str(v), _Acc())
        low, high = wilson(a.completed, a.units)
        arms.append(
            {
                "variant": v,
                "n": a.units,
                "completed": a.completed,
                "rate": _ratio(a.completed, a.units),
                "ci95": [low, high],
                "participants": a.participants,
                "helpers": a.helpers,
                "new_customers": a.new_people,
            }
        )
    base = arms[0]
    alpha = ALPHA / max(1, len(arms) - 1)
    comparisons = []
    for arm in arms[1:]:
        c = compare(base["n"], base["completed"], arm["n"], arm["completed"], alpha)
        comparisons.append(
            {
                "variant": arm["variant"],
                "against": base["variant"],
                "difference": c.difference,
                "interval": [c.low, c.high],
                "p_value": c.p_value,
                "significant": c.significant,
                "ready": c.ready,
            }
        )
    return {"variants": arms, "comparisons": comparisons, "comparator": base["variant"], "alpha": ALPHA}


_recent: dict[tuple[int, str, str, str | None, bool], tuple[float, dict[str, Any]]] = {}
_recent_lock = threading.Lock()


def campaign_stats(
    ctx: Context,
    user: User,
    campaign_id: str,
    *,
    now: datetime | None = None,
    warehouse: bool = True,
    max_age: float = 0.0,
) -> dict[str, Any]:
    """Every figure of a campaign — totals, by variant / channel / guide, depth distribution, daily trend,
    funnel, A/B — for the user's scope (a guide: only rows attributed to them; visits are not per guide).
    ``max_age`` > 0: an answer computed for the same scope at most that many seconds ago may be returned (live
    dashboards polling a large campaign share one computation)."""
    scope = (user.guide_id or "") if user.role == Role.GUIDE else None
    key = (id(ctx), user.brand_id, campaign_id, scope, warehouse)
    if max_age > 0 and now is None:
        with _recent_lock:
            hit = _recent.get(key)
        if hit is not None and time.monotonic() - hit[0] <= max_age:
            return hit[1]
    out = _campaign_stats(ctx, user, campaign_id, now or utcnow(), warehouse)
    if now is None:
        with _recent_lock:
            if len(_recent) > 256:
                _recent.clear()
            _recent[key] = (time.monotonic(), out)
    return out


def _campaign_stats(ctx: Context, user: User, campaign_id: str, now: datetime, warehouse: bool) -> dict[str, Any]:
    data = _load(ctx, user, campaign_id)
    acc = _accumulate(data, ctx, now, warehouse)
    total: _Acc = acc["total"]
    figures = total.figures()
    figures["conversions"], figures["gmv"] = (
        (int(acc["conversions"][""][0]), round(float(acc["conversions"][""][1]), 2)) if warehouse else (None, None)
    )
    camp = data.campaign
    return {
        "campaign": {
            "id": camp.id,
            "name": camp.name,
            "kind": camp.kind,
            "status": camp.status,
            "budget_cap": camp.budget_cap,
            "budget_spent": round(camp.budget_spent, 6),
        },
        "scope": {"guide_id": data.guide} if data.guide is not None else {"guide_id": None},
        "as_of": now.isoformat(),
        "totals": figures,
        "by_variant": _rows(acc["by"]["variant"]),
        "by_channel": _rows(acc["by"]["channel"]),
        "by_guide": _rows(acc["by"]["guide"]),
        "depth": acc["depth"],
        "daily": acc["daily"],
        "funnel": [
            {"step": "visits", "value": figures["visits"]},
            {"step": "participants", "value": figures["participants"]},
            {"step": "helpers", "value": figures["helpers"]},
            {"step": "new_customers", "value": figures["new_customers"]},
        ],
        "ab": _ab(data, acc["by"]["variant"]),
        "formulas": {k: v[2] for k, v in FORMULAS.items()},
    }


def _rows(accs: dict[str, _Acc]) -> list[dict[str, Any]]:
    return [{"key": k, **accs[k].figures()} for k in sorted(accs)]


def leaderboard(ctx: Context, user: User, campaign_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Per guide: participants, new customers, conversions (people brought with an order after joining), GMV —
    against the campaign's per-guide targets (progress = actual / target), ranked by new customers then
    participants. A guide sees only their own row."""
    now = now or utcnow()
    data = _load(ctx, user, campaign_id)
    acc = _accumulate(data, ctx, now, True)
    targets = {str(t["guide_id"]): t for t in (data.campaign.definition or {}).get("guide_targets", [])}
    guides = set(acc["by"]["guide"]) | set(targets)
    guides.discard(NONE_KEY)
    if data.guide is not None:
        guides &= {data.guide}
    rows: list[dict[str, Any]] = []
    for g in guides:
        a = acc["by"]["guide"].get(g, _Acc())
        conv, gmv = acc["conversions"].get(f"guide:{g}", [0, 0.0])
        actual = {
            "participants": a.participants,
            "new_customers": a.new_people,
            "conversions": int(conv),
            "gmv": round(float(gmv), 2),
        }
        tgt = targets.get(g, {})
        row: dict[str, Any] = {"guide_id": g, **actual, "helpers": a.helpers, "reward_cost": round(a.reward_cost, 6)}
        for k, v in actual.items():
            t = float(tgt.get(k, 0) or 0)
            row[f"target_{k}"] = t if k == "gmv" else int(t)
            row[f"progress_{k}"] = v / t if t else None
        rows.append(row)
    rows.sort(key=lambda r: (-r["new_customers"], -r["participants"], r["guide_id"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return {"campaign_id": campaign_id, "items": rows}


def fulfilment(ctx: Context, user: User, campaign_id: str, status: str | None = None) -> dict[str, Any]:
    """The campaign's physical gifts (address, status, carrier, tracking number), newest first; a guide sees
    the gifts of their own participants only."""
    from siyu.stores.state.engagement_models import RewardGrantRow

    if status is not None and status not in ("awaiting_address", "to_ship", "shipped", "clawed_back"):
        raise SiyuError("status: use awaiting_address, to_ship, shipped or clawed_back", "status")
    data = _load(ctx, user, campaign_id)
    by_grant = {r.grant_id: r for r in data.rewards.itertuples() if isinstance(r.grant_id, str) and r.grant_id}
    items: list[dict[str, Any]] = []
    if by_grant:
        with ctx.sessions() as s:
            ids = sorted(by_grant)
            grants: list[RewardGrantRow] = []
            for k in range(0, len(ids), 500):
                grants += s.scalars(
                    select(RewardGrantRow).where(
                        RewardGrantRow.brand_id == user.brand_id,
                        RewardGrantRow.id.in_(ids[k : k + 500]),
                        RewardGrantRow.kind == "physical",
                    )
                ).all()
            for g in grants:
                if status and g.status != status:
                    continue
                r = by_grant[g.id]
                items.append(
                    {
                        "grant_id": g.id,
                        "reward_id": g.reward_id,
                        "customer_id": g.customer_id,
                        "participant_id": r.participant_id,
                        "guide_id": None if r.guide == NONE_KEY else r.guide,
                        "what": r.what,
                        "status": g.status,
                        "address": g.address or None,
                        "shipping_carrier": g.shipping_carrier or None,
                        "tracking_no": g.tracking_no or None,
                        "created_at": g.created_at.isoformat() if g.created_at else None,
                        "shipped_at": g.shipped_at.isoformat() if g.shipped_at else None,
                    }
                )
    items.sort(key=lambda x: (x["created_at"] or "", x["grant_id"]), reverse=True)
    counts: dict[str, int] = defaultdict(int)
    for x in items:
        counts[x["status"]] += 1
    return {"campaign_id": campaign_id, "items": items, "counts": dict(counts)}


def ship(ctx: Context, user: User, campaign_id: str, grant_id: str, carrier: str, tracking_no: str) -> dict[str, Any]:
    """Mark one of the campaign's physical gifts shipped (F2's ``mark_shipped``); only the campaign's own gifts,
    and a guide only their own participants'."""
    from siyu.services.rewards import mark_shipped

    data = _load(ctx, user, campaign_id)
    if grant_id not in set(data.rewards["grant_id"].dropna()):
        raise NotFound(f"grant {grant_id!r} is not a reward of campaign {campaign_id!r}", "grant_id")
    return mark_shipped(ctx, user.brand_id, grant_id, carrier, tracking_no)
