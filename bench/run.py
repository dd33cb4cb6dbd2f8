"""`make bench`: run every benchmark and write JSON results under bench/results/."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
# module names under bench/, each with run() -> dict
BENCHMARKS: list[str] = [
    "demo_seed",
    "import_online_retail",
    "customer360",
    "oneid",
    "ingest",
    "ingest_workers",  # 1 vs 2 ingest processes next to the warehouse process, SQLite vs PostgreSQL state
    "metrics",
    "metrics_spark",
    "segments",
    "clv",
    "wecom",
    "journeys",
    "journeys_queue",  # journey steps/s on SQLite-Huey vs Redis-Huey
    "posters",
    "campaign_burst",
    "scale_report",  # LAST: reads the results above, writes results/scale.json (side by side, ratios)
]


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    for name in names or BENCHMARKS:
        mod = importlib.import_module(f"bench.{name}")
        result = mod.run()
        out = RESULTS / f"{getattr(mod, 'RESULT_NAME', name)}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        print(f"{name}: {json.dumps(result, ensure_ascii=False, default=str)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
