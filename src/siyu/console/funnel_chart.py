"""The one ECharts funnel of the console (campaign dashboard, metrics overview): pure, steps in, options out."""

from __future__ import annotations

from typing import Any


def funnel(steps: list[tuple[str, int | None]]) -> dict[str, Any]:
    """A funnel of ``(label, value)`` steps in their order (a step without data is left out). Each label carries
    its whole value and sits inside its band: labels outside the bands ran past the chart's right edge on wide
    bands and were cut (the overview's 3,372 invitations read as "33")."""
    data = [{"name": f"{name} {value}", "value": value} for name, value in steps if value is not None]
    return {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "funnel",
                "sort": "none",
                "left": "10%",
                "width": "80%",
                "minSize": "8%",
                "label": {"show": True, "position": "inside"},
                "data": data,
            }
        ],
    }
