"""Live statistics of a fission campaign (seed 001: 访问参与率, 参与率, 人均邀请, 新用户参与率, 裂变层级; K-factor,
completion, reward cost, cost per new customer, 7/30-day retention of new customers) — for the campaign and by
variant, channel and guide; the A/B comparison of variants (Wilson intervals + the always-valid mSPRT p-value of
``siyu.domain.journey.sequential``, as in journeys); the per-guide leaderboard against the campaign's targets;
the physical-gift fulfilment list. Every formula is in ``docs/campaigns.md`` (## 指标 Metrics) and ``FORMULAS``.

A guide user sees only the rows attributed to them (``guide_id`` of participants, helps and rewards).
Reads the campaign tables of the state DB (SQLAlchemy); retention, conversions and GMV read the warehouse (Ibis,
``siyu.analytics.campaigns``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

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

LOCAL = timedelta(hours=8)  # days are China days, like the visit counters
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
    return (t + LOCAL).date().isoformat()


@dataclass
class _Person:
    """A person the campaign brought in or who took part: the earliest row decides their slice."""

    key: str
    customer_id: str | None
    t0: datetime
    variant: str
    channel: str
    guide: str
    new: bool


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
    people: set[str] = field(default_factory=set)
    new_people: set[str] = field(default_factory=set)
    ret: dict[int, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in RETENTION_DAYS})

    def figures(self) -> dict[str, Any]:
        n_new = len(self.new_people)
        out: dict[str, Any] = {
            "visits": self.visits,
            "participants": self.participants,
            "invited_participants": self.invited,
            "helps_attempted": self.helps_attempted,
            "helpers": self.helpers,
            "helpers_new": self.helpers_new,
            "people": len(self.people),
            "new_customers": n_new,
            "completion_units": self.units,
            "completed": self.completed,
            "reward_cost": round(self.reward_cost, 6),
            "visit_participation": _ratio(self.participants, self.visits or 0),
            "participation": _ratio(len(self.people), self.visits or 0),
            "invites_per_participant": _ratio(self.helpers, self.participants),
            "new_user_share": _ratio(self.helpers_new, self.helpers),
            "k_factor": _ratio(self.invited, self.participants),
            "completion_rate": _ratio(self.completed, self.units),
            "cost_per_new_customer": _ratio(self.reward_cost, n_new),
        }
        for d in RETENTION_DAYS:
            retained, eligible = self.ret[d]
            out[f"retention_{d}d"] = _ratio(retained, eligible)
            out[f"retention_{d}d_eligible"] = eligible
            out[f"retention_{d}d_retained"] = retained
        return out


@dataclass
class _Data:
    """The campaign's rows (already restricted to a guide when the user is one)."""

    campaign: CampaignRow
    participants: list[CampaignParticipantRow]
    helps: list[CampaignHelpRow]
    rewards: list[CampaignRewardRow]
    teams: list[CampaignTeamRow]
    gifts: list[CampaignGiftRow]
    visits: list[CampaignVisitRow]
    guide: str | None


def _campaign(ctx: Context, user: User, campaign_id: str) -> CampaignRow:
    with ctx.sessions() as s:
        row = s.get(CampaignRow, campaign_id)
    if row is None or row.brand_id != user.brand_id:
        raise NotFound(f"campaign {campaign_id!r} not found", "campaign_id")
    return row


def _load(ctx: Context, user: User, campaign_id: str) -> _Data:
    camp = _campaign(ctx, user, campaign_id)
    guide = (user.guide_id or "") if user.role == Role.GUIDE else None
    with ctx.sessions() as s:

        def rows(model: Any, *extra: Any) -> list[Any]:
            q = select(model).where(model.campaign_id == campaign_id, *extra)
            return list(s.scalars(q))

        g = () if guide is None else (CampaignParticipantRow.guide_id == guide,)
        parts = rows(CampaignParticipantRow, *g)
        helps = rows(CampaignHelpRow, *(() if guide is None else (CampaignHelpRow.guide_id == guide,)))
        rewards = rows(CampaignRewardRow, *(() if guide is None else (CampaignRewardRow.guide_id == guide,)))
        teams = rows(CampaignTeamRow)
        gifts = rows(CampaignGiftRow)
        visits = rows(CampaignVisitRow) if guide is None else []
        s.expunge_all()
    if guide is not None:
        mine = {p.id for p in parts}
        teams = [t for t in teams if t.leader_id in mine]
        gifts = [x for x in gifts if x.giver_id in mine]
    return _Data(camp, parts, helps, rewards, teams, gifts, visits, guide)


def _slice_of(row: Any, dim: str) -> str:
    value = {"variant": row.variant, "channel": row.channel, "guide": row.guide_id}[dim]
    return str(value) if value else NONE_KEY


def _people(data: _Data) -> list[_Person]:
    """Participants and counted helpers as persons (one per person: the earliest appearance)."""
    found: dict[str, _Person] = {}

    def add(key: str, cid: str | None, t0: datetime, row: Any, new: bool) -> None:
        p = found.get(key)
        person = _Person(
            key, cid, t0, _slice_of(row, "variant"), _slice_of(row, "channel"), _slice_of(row, "guide"), new
        )
        if p is None or t0 < p.t0:
            if p is not None:
                person.new = person.new or p.new
            found[key] = person
        else:
            p.new = p.new or new

    for pr in data.participants:
        add(
            f"c:{pr.customer_id}" if pr.customer_id else pr.person_key,
            pr.customer_id,
            pr.first_seen_at,
            pr,
            pr.new_customer,
        )
    for h in data.helps:
        if h.state != "counted":
            continue
        cid = h.helper_customer_id
        add(f"c:{cid}" if cid else h.helper_key, cid, h.counted_at or h.created_at, h, h.new_customer)
    return list(found.values())


def _warehouse(
    ctx: Context, brand_id: str, people: Iterable[_Person], until: datetime, now: datetime
) -> tuple[dict[str, dict[int, int]], dict[str, tuple[int, float]]]:
    """Retention flags of the new customers and the orders (count, GMV) of everyone, from the warehouse."""
    from siyu.analytics.campaigns import cohort_table, orders_after, retained
    from siyu.services.metrics import fetch_frame, tables

    ppl = [p for p in people if p.customer_id]
    if not ppl:
        return {}, {}
    t = tables(ctx, brand_id)
    ret: dict[str, dict[int, int]] = defaultdict(dict)
    new = [(str(p.customer_id), p.t0) for p in ppl if p.new]
    if new:
        cohort = cohort_table(new)
        for d in RETENTION_DAYS:
            frame = fetch_frame(ctx, retained(t, cohort, d))
            for cid, flag in zip(frame["customer_id"], frame["retained"], strict=True):
                ret[str(cid)][d] = int(flag)
    frame = fetch_frame(ctx, orders_after(t, cohort_table([(str(p.customer_id), p.t0) for p in ppl]), until))
    orders = {
        str(c): (int(n), float(g or 0.0))
        for c, n, g in zip(frame["customer_id"], frame["orders"], frame["gmv"], strict=True)
    }
    return ret, orders


def _accumulate(data: _Data, ctx: Context, now: datetime, with_warehouse: bool) -> dict[str, Any]:
    camp = data.campaign
    kind = camp.kind
    total = _Acc(visits=None if data.guide is not None else 0)
    by: dict[str, dict[str, _Acc]] = {d: defaultdict(_Acc) for d in SLICES}

    def accs(row: Any) -> list[_Acc]:
        return [total] + [by[d][_slice_of(row, d)] for d in SLICES]

    for v in data.visits:
        total.visits = (total.visits or 0) + v.views
        for d, key in (("variant", v.variant or NONE_KEY), ("channel", v.channel or NONE_KEY)):
            a = by[d][key]
            a.visits = (a.visits or 0) + v.views
    part_by_id = {p.id: p for p in data.participants}
    for p in data.participants:
        for a in accs(p):
            a.participants += 1
            a.invited += 1 if p.depth >= 1 else 0
            if kind == "assist":
                a.units += 1
                a.completed += 1 if p.tiers_reached >= 1 else 0
    for h in data.helps:
        for a in accs(h):
            a.helps_attempted += 1
            if h.state == "counted":
                a.helpers += 1
                a.helpers_new += 1 if h.new_customer else 0
    units: list[tuple[str, bool]] = []
    if kind == "group_buy":
        units = [(t.leader_id, t.status == "complete") for t in data.teams]
    elif kind == "gift":
        units = [(g.giver_id, g.status in ("claimed", "redeemed")) for g in data.gifts]
    for owner_id, done in units:
        leader = part_by_id.get(owner_id)
        if leader is None:
            continue
        for a in accs(leader):
            a.units += 1
            a.completed += 1 if done else 0
    for r in data.rewards:
        if r.status != "granted":
            continue
        owner = part_by_id.get(r.participant_id)
        rows = [total, by["variant"][r.variant or NONE_KEY], by["guide"][r.guide_id or NONE_KEY]]
        rows.append(by["channel"][_slice_of(owner, "channel") if owner else NONE_KEY])
        for a in rows:
            a.reward_cost += r.cost
    people = _people(data)
    until = min(now, camp.ends_at)
    ret, orders = _warehouse(ctx, camp.brand_id, people, until, now) if with_warehouse else ({}, {})
    conv: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for who in people:
        slots = [total, by["variant"][who.variant], by["channel"][who.channel], by["guide"][who.guide]]
        for a in slots:
            a.people.add(who.key)
            if who.new:
                a.new_people.add(who.key)
        cid = str(who.customer_id) if who.customer_id else None
        if who.new and cid:
            for days in RETENTION_DAYS:
                if who.t0 + timedelta(days=days) <= now:
                    flag = ret.get(cid, {}).get(days, 0)
                    for a in slots:
                        a.ret[days][1] += 1
                        a.ret[days][0] += flag
        if cid and cid in orders:
            for key in ("", f"guide:{who.guide}"):
                conv[key][0] += 1
                conv[key][1] += orders[cid][1]
    daily: dict[str, dict[str, int]] = defaultdict(lambda: {"visits": 0, "participants": 0, "helpers": 0, "new": 0})
    for v in data.visits:
        daily[v.day]["visits"] += v.views
    for p in data.participants:
        daily[_day(p.first_seen_at)]["participants"] += 1
    for h in data.helps:
        if h.state == "counted":
            daily[_day(h.counted_at or h.created_at)]["helpers"] += 1
    for person in people:
        if person.new:
            daily[_day(person.t0)]["new"] += 1
    depth: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for p in data.participants:
        depth[p.depth][0] += 1
    for h in data.helps:
        if h.state == "counted":
            depth[h.depth][1] += 1
    return {
        "total": total,
        "by": by,
        "daily": [{"day": d, **daily[d]} for d in sorted(daily)],
        "depth": [{"depth": d, "participants": depth[d][0], "helpers": depth[d][1]} for d in sorted(depth)],
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
                "new_customers": len(a.new_people),
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


def campaign_stats(
    ctx: Context, user: User, campaign_id: str, *, now: datetime | None = None, warehouse: bool = True
) -> dict[str, Any]:
    """Every figure of a campaign — totals, by variant / channel / guide, depth distribution, daily trend,
    funnel, A/B — for the user's scope (a guide: only rows attributed to them; visits are not per guide)."""
    now = now or utcnow()
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
            "new_customers": len(a.new_people),
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
    by_grant = {r.grant_id: r for r in data.rewards if r.grant_id}
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
                        "guide_id": r.guide_id,
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
    if grant_id not in {r.grant_id for r in data.rewards}:
        raise NotFound(f"grant {grant_id!r} is not a reward of campaign {campaign_id!r}", "grant_id")
    return mark_shipped(ctx, user.brand_id, grant_id, carrier, tracking_no)
