"""Customer value metrics on DuckDB vs PySpark (local mode, through Ibis) on the same synthetic brand.

Reuses ``bench.metrics``: its generator writes the brand into a DuckDB warehouse, and its ``ibis`` child runs RFM,
AIPL and lifecycle to Arrow on DuckDB. Here a second child exports the warehouse to Parquet
(``siyu warehouse export``), opens Spark (``SIYU_WAREHOUSE=pyspark://local[2]``) and runs the same three reports
through ``siyu.services.metrics``: first call (cold: binding, Spark planning) and the median of ``warm_runs`` more.
The per-class / per-stage counts of both engines are compared (``match``).

Spark local mode on 2 cores with the default 1 GiB driver fetches each result through pandas, so the size is
``orders`` (default 1 M orders, 250 k customers); ``python -m bench.metrics_spark run 10000000`` asks for issue 10's
10 M (needs ``spark.driver.memory`` beyond the default and tens of minutes here).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.metrics import SYNTH, SYNTH_AS_OF, _child, _peak_rss_mb, _summary

DEFAULT_ORDERS = 1_000_000
SPARK_URL = "pyspark://local[2]"


def run_spark(data_dir: Path, brand: str, as_of: date, warm_runs: int = 3) -> dict[str, Any]:
    """Export the warehouse to Parquet, open Spark and run RFM, AIPL and lifecycle to Arrow through it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from siyu.analytics.aipl import aipl_stage
    from siyu.analytics.lifecycle import lifecycle_stage
    from siyu.analytics.rfm import rfm_customers
    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.metrics import backend, fetch_arrow, tables
    from siyu.services.warehouse_export import export_warehouse

    ctx = Context.open(Settings(data_dir=data_dir, warehouse_url=SPARK_URL))
    t0 = time.perf_counter()
    rows = export_warehouse(ctx)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    backend(ctx)
    open_s = time.perf_counter() - t0
    out: dict[str, pa.Table] = {}
    builders = (("rfm", rfm_customers), ("aipl", aipl_stage), ("lifecycle", lifecycle_stage))

    def call() -> dict[str, float]:
        secs = {}
        t0 = time.perf_counter()
        t = tables(ctx, brand)
        secs["tables"] = time.perf_counter() - t0
        for name, build in builders:
            t1 = time.perf_counter()
            out[name] = fetch_arrow(ctx, build(t, as_of))
            secs[name] = time.perf_counter() - t1
        secs["total"] = time.perf_counter() - t0
        return secs

    cold = call()
    warm = [call() for _ in range(warm_runs)]
    ctx.close()  # stops the Spark session too

    def counts(tab: pa.Table, col: str) -> dict[str, int]:
        vc = pc.value_counts(tab[col]).to_pylist()
        return {str(x["values"]): int(x["counts"]) for x in vc}

    return {
        "export_seconds": round(export_s, 2),
        "exported_orders": rows.get("orders"),
        "spark_open_seconds": round(open_s, 2),
        "seconds": {k: round(v, 4) for k, v in cold.items()},
        "seconds_warm": _summary(warm) if warm else None,
        "warm_runs": warm_runs,
        "driver_peak_rss_mb": _peak_rss_mb(),
        "rfm_customers": out["rfm"].num_rows,
        "monetary": round(float(pc.sum(out["rfm"]["monetary"]).as_py() or 0.0), 2),
        "classes": counts(out["rfm"], "rfm_class"),
        "aipl": counts(out["aipl"], "stage"),
        "lifecycle": counts(out["lifecycle"], "stage"),
    }


def _spark_child(*args: str) -> dict[str, Any]:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.metrics_spark", *args], cwd=root, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.metrics_spark {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(orders: int = DEFAULT_ORDERS) -> dict[str, Any]:
    """Generate ``orders``, then DuckDB and Spark each in their own child process; times, ratios, match."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "synth"
        gen = _child("generate", str(d), str(orders))
        duck = _child("ibis", str(d), SYNTH, SYNTH_AS_OF.isoformat(), "3")
        spark = _spark_child("spark", str(d), SYNTH, SYNTH_AS_OF.isoformat(), "3")
    keys = ("rfm_customers", "classes", "aipl", "lifecycle")
    same = all(duck[k] == spark[k] for k in keys) and abs(duck["monetary"] - spark["monetary"]) <= 1e-6 * max(
        1.0, abs(duck["monetary"])
    )
    return {
        "machine_cores": os.cpu_count(),
        "orders": orders,
        "generated": gen,
        "duckdb": duck,
        "pyspark": spark,
        "spark_vs_duckdb": {
            "cold": round(spark["seconds"]["total"] / max(duck["seconds"]["total"], 1e-9), 1),
            "warm": round(spark["seconds_warm"]["total"] / max(duck["seconds_warm"]["total"], 1e-9), 1),
        },
        "match": same,
    }


def _main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "run"
    if cmd == "spark":
        out = run_spark(Path(argv[1]), argv[2], date.fromisoformat(argv[3]), int(argv[4]) if len(argv) > 4 else 3)
    else:
        out = run(int(argv[1]) if len(argv) > 1 else DEFAULT_ORDERS)
    print(json.dumps(out, ensure_ascii=False, default=str))


if __name__ == "__main__":
    _main(sys.argv[1:])
