"""Benchmark: customer search and customer 360 latency (service layer, Ibis over DuckDB) on the demo brand.

`SIYU_BENCH_C360_CUSTOMERS` sets the demo size (default 20,000 customers).
"""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from bench.timing import timed
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import customers as service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, seed_demo

REPEAT = 20


_timed = partial(timed, repeat=REPEAT)


def run() -> dict[str, Any]:
    n = int(os.environ.get("SIYU_BENCH_C360_CUSTOMERS", "20000"))
    with tempfile.TemporaryDirectory(prefix="siyu-bench-c360-") as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp)))
        try:
            seed_demo(ctx, DemoConfig(customers=n))
            admin = User(0, "demo", "bench", "bench", Role.ADMIN, None, "zh")
            (guide_id,) = ctx.warehouse.fetch(
                "SELECT guide_id FROM relations WHERE brand_id='demo' AND state='active' "
                "GROUP BY guide_id ORDER BY count(*) DESC LIMIT 1"
            )[0]
            guide = User(0, "demo", "bench-guide", "bench", Role.GUIDE, guide_id, "zh")
            phone, name = ctx.warehouse.fetch(
                "SELECT phone, name FROM customers WHERE brand_id='demo' AND phone IS NOT NULL "
                "AND name IS NOT NULL LIMIT 1"
            )[0]
            tag = ctx.warehouse.fetch("SELECT name FROM tags WHERE brand_id='demo' LIMIT 1")
            busiest = ctx.warehouse.fetch(
                "SELECT i.customer_id FROM events e JOIN identities i ON i.brand_id=e.brand_id "
                "AND i.id_type='user_id' AND i.id_value=e.user_id WHERE e.brand_id='demo' "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
            some = [
                r[0] for r in ctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id='demo' LIMIT 20")
            ]
            cid = busiest[0][0] if busiest else some[0]
            result: dict[str, Any] = {
                "customers": n,
                "search_all_page1": _timed(lambda: service.search_customers(ctx, admin, "", 1, 50)),
                "search_phone": _timed(lambda: service.search_customers(ctx, admin, phone[-11:], 1, 20)),
                "search_name": _timed(lambda: service.search_customers(ctx, admin, name, 1, 20)),
                "search_guide_scope": _timed(lambda: service.search_customers(ctx, guide, "", 1, 50)),
                "guide_reachable_customers": service.search_customers(ctx, guide, "", 1, 1).total,
                "c360_busiest": _timed(lambda: service.get_customer_360(ctx, admin, cid, 1, 20)),
                "c360_events_total_busiest": service.get_customer_360(ctx, admin, cid, 1, 1).events_total,
            }
            if tag:
                result["search_tag"] = _timed(lambda: service.search_customers(ctx, admin, tag[0][0], 1, 20))
            it = iter(some * 2)
            result["c360_various"] = _timed(lambda: service.get_customer_360(ctx, admin, next(it), 1, 20))
        finally:
            ctx.close()
    return result
