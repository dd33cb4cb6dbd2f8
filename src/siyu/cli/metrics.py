"""`siyu metrics ...`: every metric from the command line (tables with Rich, --json for scripts).

Each metrics area defines its commands on ``app`` in its own module, listed in ``AREAS``.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Metrics: RFM, AIPL, lifecycle, assets, funnel, CAC/ROI, guides. 经营指标", no_args_is_help=True)

# modules of siyu.cli that add commands to ``app`` (each area adds its module here)
AREAS: tuple[str, ...] = ("metrics_value", "metrics_guides", "metrics_operations")


def _load() -> None:
    for name in AREAS:
        importlib.import_module(f"siyu.cli.{name}")


_load()
