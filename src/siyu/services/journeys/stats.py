"""Per-node journey statistics and experiment results (conversion per arm, always-valid comparison).

Per node: ``entered`` (steps run there + customers there now), ``waiting`` (there now), ``passed`` per branch,
``outcomes`` (ok / suppressed / capped / no_guide / goal / completed), effects by status (actions sent, failed,
pending). Journey: entries by status and exit reason, goal reached. Experiments: each arm's customers,
conversions (goal reached after entering), rate with a Wilson interval, and against the comparator (the holdout
if there is one, else the first arm) the mSPRT decision of ``siyu.domain.journey.sequential``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from siyu.domain.journey.definition import ExperimentNode
from siyu.domain.journey.sequential import compare, wilson
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.journeys.cache import definition
from siyu.services.journeys.definitions import _row
from siyu.services.metrics import scope
from siyu.stores.state.journey_models import JourneyEffectRow, JourneyEntryRow, JourneyStepRow


def _own_customers(ctx: Context, user: User) -> list[str] | None:
    """The customer ids a guide may see (None: the whole brand)."""
    allowed = scope(ctx, user)
    if allowed is None:
        return None
    return [r["customer_id"] for r in allowed.to_pyarrow().to_pylist()]


def journey_stats(ctx: Context, user: User, journey_id: str, version: int | None = None) -> dict[str, Any]:
    """Counts per node and per experiment arm (``version``: one version's entries only; a guide: only the entries
    of their own customers)."""
    row = _row(ctx, user.brand_id, journey_id)
    ver = version or row.published_version or row.version
    jd = definition(ctx, journey_id, ver)
    E, S, F = JourneyEntryRow, JourneyStepRow, JourneyEffectRow
    with ctx.sessions() as s:
        steps_q = select(S.node_id, S.branch, S.outcome, func.count()).where(S.journey_id == journey_id)
        entries_q = select(
            E.status, E.exit_reason, func.count(), func.count(E.goal_at), func.coalesce(func.sum(E.goal_value), 0.0)
        ).where(E.journey_id == journey_id)
        here_q = select(E.node_id, func.count()).where(E.journey_id == journey_id, E.status == "active")
        eff_q = select(F.node_id, F.status, func.count()).where(F.journey_id == journey_id)
        arms_q = select(E.arm, func.count(), func.count(E.goal_at), func.coalesce(func.sum(E.goal_value), 0.0)).where(
            E.journey_id == journey_id, E.arm.isnot(None)
        )
        if version is not None:
            steps_q = steps_q.where(S.version == version)
            entries_q = entries_q.where(E.version == version)
            here_q = here_q.where(E.version == version)
            arms_q = arms_q.where(E.version == version)
            eff_q = eff_q.where(F.entry_id.in_(select(E.id).where(E.journey_id == journey_id, E.version == version)))
        own = _own_customers(ctx, user)
        if own is not None:  # a guide: their own customers' entries only
            mine = select(E.id).where(E.journey_id == journey_id, E.customer_id.in_(own))
            steps_q = steps_q.where(S.entry_id.in_(mine))
            entries_q = entries_q.where(E.customer_id.in_(own))
            here_q = here_q.where(E.customer_id.in_(own))
            arms_q = arms_q.where(E.customer_id.in_(own))
            eff_q = eff_q.where(F.entry_id.in_(mine))
        steps = s.execute(steps_q.group_by(S.node_id, S.branch, S.outcome)).all()
        entries = s.execute(entries_q.group_by(E.status, E.exit_reason)).all()
        here = {str(k): int(v) for k, v in s.execute(here_q.group_by(E.node_id))}
        effects = s.execute(eff_q.group_by(F.node_id, F.status)).all()
        arms = s.execute(arms_q.group_by(E.arm)).all()
    nodes: dict[str, dict[str, Any]] = {
        n.id: {"id": n.id, "kind": n.kind, "entered": 0, "waiting": 0, "passed": {}, "outcomes": {}, "effects": {}}
        for n in jd.nodes
    }

    def node(nid: str) -> dict[str, Any]:
        return nodes.setdefault(
            nid,
            {"id": nid, "kind": "?", "entered": 0, "waiting": 0, "passed": {}, "outcomes": {}, "effects": {}},
        )

    for nid, branch, outcome, n in steps:
        d = node(nid)
        d["entered"] += n
        if branch:
            d["passed"][branch] = d["passed"].get(branch, 0) + n
        d["outcomes"][outcome] = d["outcomes"].get(outcome, 0) + n
    for nid, n in here.items():
        node(nid)["waiting"] += n
        node(nid)["entered"] += n
    for nid, status, n in effects:
        node(nid)["effects"][status] = node(nid)["effects"].get(status, 0) + n
    by_status: dict[str, int] = defaultdict(int)
    exits: dict[str, int] = {}
    goal, value = 0, 0.0
    for status, reason, n, g, v in entries:
        by_status[status] += n
        goal += g
        value += float(v or 0.0)
        if reason:
            exits[reason] = n
    arm_counts = {str(a): (int(n), int(g), float(v or 0.0)) for a, n, g, v in arms}
    experiments = [_experiment(node_def, arm_counts) for node_def in jd.nodes if isinstance(node_def, ExperimentNode)]
    return {
        "journey_id": journey_id,
        "version": version,
        "entries": sum(by_status.values()),
        "active": by_status.get("active", 0),
        "exited": by_status.get("exited", 0),
        "exits": exits,
        "goal_reached": goal,
        "goal_value": value,
        "nodes": list(nodes.values()),
        "experiments": experiments,
    }


def _experiment(node: ExperimentNode, counts: dict[str, tuple[int, int, float]]) -> dict[str, Any]:
    names = [a.name for a in node.arms] + (["holdout"] if node.holdout_percent > 0 else [])
    arms: list[dict[str, Any]] = []
    for name in names:
        n, x, v = counts.get(f"{node.id}:{name}", (0, 0, 0.0))
        low, high = wilson(x, n)
        arms.append(
            {
                "arm": name,
                "customers": n,
                "conversions": x,
                "rate": x / n if n else None,
                "ci95": [low, high],
                "revenue": v,
                "revenue_per_customer": v / n if n else None,
            }
        )
    comparator = "holdout" if node.holdout_percent > 0 else node.arms[0].name
    others = [a for a in arms if a["arm"] != comparator]
    base = next(a for a in arms if a["arm"] == comparator)
    alpha = node.alpha / max(1, len(others))
    comparisons: list[dict[str, Any]] = []
    for a in others:
        c = compare(base["customers"], base["conversions"], a["customers"], a["conversions"], alpha)
        comparisons.append(
            {
                "arm": a["arm"],
                "against": comparator,
                "difference": c.difference,
                "interval": [c.low, c.high],
                "p_value": c.p_value,
                "significant": c.significant,
                "ready": c.ready,
            }
        )
    winners = [c for c in comparisons if c["significant"] and c["difference"] > 0]
    losers = [c for c in comparisons if c["significant"] and c["difference"] < 0]
    if winners:
        best = max(winners, key=lambda c: c["difference"])
        verdict: dict[str, Any] = {
            "decision": "winner",
            "arm": best["arm"],
            "lift": best["difference"],
            "interval": best["interval"],
        }
    elif losers and len(losers) == len(comparisons):
        verdict = {"decision": "comparator_wins", "arm": comparator}
    else:
        verdict = {"decision": "too_early"}
    return {
        "node_id": node.id,
        "alpha": node.alpha,
        "comparator": comparator,
        "arms": arms,
        "comparisons": comparisons,
        "verdict": verdict,
    }
