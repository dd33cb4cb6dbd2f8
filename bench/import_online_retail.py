"""Benchmark: import the UCI Online Retail log (541,909 rows) into a fresh data dir; goal < 10 s."""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
GOAL_SECONDS = 10.0


def run() -> dict[str, Any]:
    """Time ``run_import(kind='online_retail')`` (load + OneID resolution) and report the figures it produced."""
    from siyu.config import Settings
    from siyu.services import brands
    from siyu.services.context import Context
    from siyu.services.imports import run_import

    if not DATA.exists():
        return {"skipped": f"{DATA} not found"}
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp) / "data"))
        try:
            brands.create_brand(ctx, "retail", "UCI Online Retail")
            started = time.perf_counter()
            job = run_import(ctx, "retail", "online_retail", DATA)
            seconds = time.perf_counter() - started
            lines = ctx.warehouse.table("order_lines")
            orders = ctx.warehouse.table("orders")
            again_started = time.perf_counter()
            again = run_import(ctx, "retail", "online_retail", DATA)
            again_seconds = time.perf_counter() - again_started
            return {
                "status": job.status,
                "seconds": round(seconds, 2),
                "goal_seconds": GOAL_SECONDS,
                "within_goal": seconds < GOAL_SECONDS,
                "rows_read": job.rows_total,
                "order_lines": int(lines.count().execute()),
                "orders": int(orders.count().execute()),
                "customers": int(orders.customer_ref.nunique().execute()),
                "revenue": str(Decimal(str(lines.amount.sum().execute()))),
                "rows_per_second": round(job.rows_total / seconds),
                "reimport_seconds": round(again_seconds, 2),
                "reimport_rows_added": again.rows_ok,
                "message": job.message,
            }
        finally:
            ctx.close()


if __name__ == "__main__":
    print(run())
