"""Benchmark: segment live-count latency (``POST /api/segments/preview``'s service call) on a 50k-customer demo brand.

Each definition is previewed once cold (stage-leaf cache empty: the first count of a new definition) and then
``REPEAT`` times (count + a 20-row sample, as the console's live count asks while the definition is edited), as a
brand admin and as a guide (scoped to their customers); then a full refresh (materialisation) and a lookalike run.
Goal: live count < 1 s. ``SIYU_BENCH_SEGMENT_CUSTOMERS`` sets the demo size (default 50,000).
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.timing import timed
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import lookalike, segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, seed_demo

REPEAT = 10
DEFINITIONS: dict[str, dict[str, Any]] = {
    "clicked_2x_7d": {"kind": "event", "event": "Message Clicked", "window_days": 7, "op": "gte", "value": 2},
    "repeat_buyers_sh": {
        "kind": "and",
        "conditions": [
            {"kind": "orders", "op": "gte", "value": 3},
            {"kind": "trait", "field": "city", "value": "上海"},
            {"kind": "not", "condition": {"kind": "orders", "measure": "last_days_ago", "op": "gt", "value": 90}},
        ],
    },
    "rfm_important": {"kind": "rfm", "classes": ["important_value", "important_keep"]},
    "aipl_or_lifecycle": {
        "kind": "or",
        "conditions": [
            {"kind": "aipl", "stages": ["L"]},
            {"kind": "lifecycle", "stages": ["new_purchased"]},
            {"kind": "channel", "channels": ["ch_parcel"]},
        ],
    },
    "browsed_not_bought": {
        "kind": "and",
        "conditions": [
            {
                "kind": "event",
                "event": "Product Viewed",
                "window_days": 30,
                "measure": "sum",
                "property": "price",
                "op": "gte",
                "value": 500,
            },
            {"kind": "orders", "window_days": 30, "op": "eq", "value": 0},
        ],
    },
}


_timed = partial(timed, repeat=REPEAT)


def run() -> dict[str, Any]:
    n = int(os.environ.get("SIYU_BENCH_SEGMENT_CUSTOMERS", "50000"))
    with tempfile.TemporaryDirectory(prefix="siyu-bench-segments-") as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp)))
        try:
            t0 = time.perf_counter()
            seed_demo(ctx, DemoConfig(customers=n))
            seed_s = time.perf_counter() - t0
            admin = User(0, "demo", "bench", "bench", Role.ADMIN, None, "zh")
            (guide_id,) = ctx.warehouse.fetch(
                "SELECT guide_id FROM relations WHERE brand_id='demo' AND state='active' "
                "GROUP BY guide_id ORDER BY count(*) DESC LIMIT 1"
            )[0]
            guide = User(0, "demo", "bench-guide", "bench", Role.GUIDE, guide_id, "zh")
            out: dict[str, Any] = {"customers": n, "seed_s": round(seed_s, 1), "preview": {}}
            segments.preview(ctx, admin, {"kind": "orders"})  # the default 'as of' is cached from here on
            for name, d in DEFINITIONS.items():
                segments._leaf_cache.clear()
                t0 = time.perf_counter()
                count = segments.preview(ctx, admin, d)["count"]
                out["preview"][name] = {
                    "count": count,
                    "cold_ms": round((time.perf_counter() - t0) * 1000, 1),
                    "admin": _timed(lambda d=d: segments.preview(ctx, admin, d)),
                    "guide": _timed(lambda d=d: segments.preview(ctx, guide, d)),
                }
            for name, d in DEFINITIONS.items():
                segments.create_segment(ctx, admin, name, d, refresh=False)
            t0 = time.perf_counter()
            done = segments.refresh_brand(ctx, "demo")
            out["refresh_all_s"] = round(time.perf_counter() - t0, 2)
            out["refreshed"] = len(done)
            seed_id = next(s.id for s in segments.list_segments(ctx, admin) if s.name == "rfm_important")
            t0 = time.perf_counter()
            r = lookalike.lookalike(ctx, admin, seed_id)
            out["lookalike"] = {"s": round(time.perf_counter() - t0, 2), "seed": r.seed_size, "lift": r.lift}
            worst = max(v[who]["p95_ms"] for v in out["preview"].values() for who in ("admin", "guide"))
            out["worst_preview_p95_ms"] = worst
            out["worst_cold_ms"] = max(v["cold_ms"] for v in out["preview"].values())
            out["goal_live_count_lt_1s"] = worst < 1000
            return out
        finally:
            ctx.close()


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, ensure_ascii=False))
