"""Benchmark: seed the 50,000-customer demo brand into fresh stores; time each stage and count the rows.

`SIYU_BENCH_DEMO_CUSTOMERS` changes the size (e.g. 1000000 for the scale run); `SIYU_BENCH_DEMO_ONEID=0` times
the generator alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, seed_demo
from siyu.services.demo.check import demo_rates

NOT_TABLES = {"customers", "duplicate_people"}  # counts in the result that are not warehouse tables


def run() -> dict[str, Any]:
    customers = int(os.environ.get("SIYU_BENCH_DEMO_CUSTOMERS", "50000"))
    stage_start: dict[str, float] = {}
    stage_seconds: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        stage_start.setdefault(stage, now)
        if done >= total:
            stage_seconds[stage] = round(now - stage_start[stage], 2)

    with tempfile.TemporaryDirectory(prefix="siyu-bench-demo-") as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp)))
        try:
            resolve = os.environ.get("SIYU_BENCH_DEMO_ONEID", "1") != "0"
            result = seed_demo(ctx, DemoConfig(customers=customers), progress=progress, resolve=resolve)
            rates = demo_rates(ctx, "demo")
            size_mb = round(Path(ctx.settings.warehouse_file).stat().st_size / 1e6, 1)
        finally:
            ctx.close()
    return {
        "customers": customers,
        "seconds_total": round(result.seconds, 2),
        "seconds_by_stage": stage_seconds,
        "rows": result.counts,
        "table_rows_per_second": round(
            sum(v for k, v in result.counts.items() if k not in NOT_TABLES) / result.seconds
        ),
        "warehouse_mb": size_mb,
        "oneid": result.oneid,
        "rates": {k: None if v is None else round(v, 4) for k, v in rates.items()},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, ensure_ascii=False, default=str))
