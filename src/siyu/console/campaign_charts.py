"""ECharts options and number formats of the campaign dashboard (pure: stats dicts in, options out; labels are
passed in already translated)."""

from __future__ import annotations

from typing import Any

RATES = frozenset(
    {
        "visit_participation",
        "participation",
        "new_user_share",
        "completion_rate",
        "retention_7d",
        "retention_30d",
        "rate",
    }
)
MONEY = frozenset({"reward_cost", "cost_per_new_customer", "gmv"})
TEAL = "#0f766e"


def fmt(key: str, value: Any) -> str:
    """A figure as people read it: rates as percentages (1 decimal), money with 2 decimals, ratios with 2, counts
    as integers; None as —."""
    if value is None:
        return "—"
    if key in RATES:
        return f"{float(value) * 100:.1f}%"
    if key in MONEY:
        return f"{float(value):.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _base() -> dict[str, Any]:
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 40},
    }


def depth(rows: list[dict[str, Any]], participants: str, helpers: str, level: str) -> dict[str, Any]:
    """Participants and counted helpers per invite depth."""
    opts = _base()
    opts.update(
        {
            "legend": {"top": 0},
            "xAxis": {"type": "category", "name": level, "data": [str(r["depth"]) for r in rows]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {
                    "name": participants,
                    "type": "bar",
                    "itemStyle": {"color": TEAL},
                    "data": [r["participants"] for r in rows],
                },
                {"name": helpers, "type": "bar", "data": [r["helpers"] for r in rows]},
            ],
        }
    )
    return opts


def daily(rows: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """Visits, participants, helpers and new customers per day."""
    opts = _base()
    opts.update(
        {
            "legend": {"top": 0},
            "xAxis": {"type": "category", "data": [r["day"] for r in rows]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {"name": names[k], "type": "line", "data": [r[k] for r in rows]}
                for k in ("visits", "participants", "helpers", "new")
            ],
        }
    )
    return opts


def variants(arms: list[dict[str, Any]], rate: str, interval: str) -> dict[str, Any]:
    """Each variant's completion rate (point) with its 95% Wilson interval drawn as a floating bar."""
    names = [str(a["variant"]) for a in arms]
    lows = [round(a["ci95"][0] * 100, 2) for a in arms]
    spans = [round((a["ci95"][1] - a["ci95"][0]) * 100, 2) for a in arms]
    rates = [None if a["rate"] is None else round(a["rate"] * 100, 2) for a in arms]
    opts = _base()
    opts.update(
        {
            "legend": {"top": 0, "data": [rate, interval]},
            "xAxis": {"type": "category", "data": names},
            "yAxis": {"type": "value", "min": 0, "max": 100, "axisLabel": {"formatter": "{value}%"}},
            "series": [
                {
                    "type": "bar",
                    "stack": "ci",
                    "itemStyle": {"color": "transparent"},
                    "data": lows,
                    "tooltip": {"show": False},
                },
                {
                    "name": interval,
                    "type": "bar",
                    "stack": "ci",
                    "barWidth": 18,
                    "itemStyle": {"color": "#99d5cf"},
                    "data": spans,
                },
                {"name": rate, "type": "scatter", "symbolSize": 14, "itemStyle": {"color": TEAL}, "data": rates},
            ],
        }
    )
    return opts


def tree(nodes: list[dict[str, Any]], root_name: str) -> dict[str, Any]:
    """The invite tree (F1's nested nodes) as an ECharts tree, root = the campaign."""

    def conv(n: dict[str, Any]) -> dict[str, Any]:
        label = str(n.get("customer_id") or n["id"])[-6:]
        out: dict[str, Any] = {
            "name": f"{label} · {n.get('helps_counted', 0)}",
            "value": n.get("helps_counted", 0),
            "itemStyle": {"color": "#e8503a" if n.get("new_customer") else TEAL},
        }
        kids = [conv(c) for c in n.get("children", [])]
        if kids:
            out["children"] = kids
        return out

    return {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "tree",
                "data": [{"name": root_name, "children": [conv(n) for n in nodes]}],
                "top": "5%",
                "bottom": "5%",
                "left": "8%",
                "right": "15%",
                "symbolSize": 9,
                "initialTreeDepth": -1,
                "label": {"position": "left", "verticalAlign": "middle", "align": "right", "fontSize": 11},
                "leaves": {"label": {"position": "right", "align": "left"}},
            }
        ],
    }


def leaderboard(rows: list[dict[str, Any]], actual: str, target: str) -> dict[str, Any]:
    """New customers per guide (bars) against each guide's target (markers)."""
    opts = _base()
    opts.update(
        {
            "legend": {"top": 0},
            "xAxis": {"type": "category", "data": [r["guide_id"] for r in rows]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {
                    "name": actual,
                    "type": "bar",
                    "itemStyle": {"color": TEAL},
                    "data": [r["new_customers"] for r in rows],
                },
                {
                    "name": target,
                    "type": "scatter",
                    "symbol": "rect",
                    "symbolSize": [26, 4],
                    "itemStyle": {"color": "#e8503a"},
                    "data": [r["target_new_customers"] or None for r in rows],
                },
            ],
        }
    )
    return opts


def campaigns(rows: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """Participants, helpers and new customers of each campaign (the list page)."""
    opts = _base()
    opts.update(
        {
            "legend": {"top": 0},
            "xAxis": {"type": "category", "data": [r["name"] for r in rows]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {"name": names[k], "type": "bar", "data": [r[k] for r in rows]}
                for k in ("participants", "helpers", "new_customers")
            ],
        }
    )
    return opts
