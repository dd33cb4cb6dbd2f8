"""OneID benchmark: full rebuild over a synthetic brand of 50,000 customers, then incremental resolution."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from siyu.config import Settings
from siyu.domain.models import Identity
from siyu.services import oneid
from siyu.services.brands import create_brand
from siyu.services.context import Context

BRAND = "bench-oneid"


def person_observations(rng: random.Random, p: int, start: datetime) -> list[oneid.Observation]:
    """A few observations of person ``p`` that together reveal all of their identifiers."""
    phone = Identity("phone", f"+86139{p:08d}")
    ids: list[Identity] = [phone]
    if rng.random() < 0.8:
        ids.append(Identity("unionid", f"u{p}"))
    if rng.random() < 0.4:
        ids.append(Identity("external_userid", f"wm{p}"))
    if rng.random() < 0.5:
        ids.append(Identity("member_id", f"M{p}"))
    if rng.random() < 0.3:
        ids.append(Identity("email", f"p{p}@example.com"))
    anon = Identity("anonymous_id", f"a{p}")
    at = start + timedelta(minutes=p)
    traits = {"name": f"客户{p}", "city": rng.choice(["上海", "北京", "杭州"])}
    out = [oneid.Observation("import:customers", f"customers.csv#row{p}", at, tuple(ids), traits)]
    # an anonymous web visit, then an identify that links it to the phone
    out.append(oneid.Observation("event", f"m{p}a", at + timedelta(hours=1), (anon,)))
    out.append(oneid.Observation("event", f"m{p}b", at + timedelta(hours=2), (anon, phone), {"gender": "f"}))
    return out


def seed(ctx: Context, people: int, seed_value: int = 7) -> int:
    """Write the synthetic observations of ``people`` customers; returns the number of observations."""
    rng = random.Random(seed_value)
    start = datetime(2025, 1, 1)
    total = 0
    batch: list[oneid.Observation] = []
    for p in range(people):
        batch.extend(person_observations(rng, p, start))
        if len(batch) >= 30_000:
            with ctx.warehouse.transaction() as tx:
                total += oneid.add_observations(tx, BRAND, batch)
            batch = []
    with ctx.warehouse.transaction() as tx:
        total += oneid.add_observations(tx, BRAND, batch)
    return total


def run(people: int = 50_000, new: int = 100) -> dict[str, Any]:
    """Time a full rebuild and incremental resolution of ``new`` observations (cold and warm index)."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp)))
        try:
            create_brand(ctx, BRAND, "OneID bench")
            t0 = time.perf_counter()
            n_obs = seed(ctx, people)
            seed_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            stats = oneid.rebuild(ctx, BRAND)
            rebuild_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            oneid.rebuild(ctx, BRAND)  # steady state: ids kept, only changed rows written
            rebuild_again_s = time.perf_counter() - t0
            rng = random.Random(11)
            start = datetime(2026, 1, 1)

            def batch(offset: int, count: int) -> list[oneid.Observation]:
                out = []
                for k in range(count):
                    p = rng.randrange(people)
                    out.append(
                        oneid.Observation(
                            "event",
                            f"new{offset + k}",
                            start + timedelta(seconds=offset + k),
                            (Identity("anonymous_id", f"new-a{offset + k}"), Identity("phone", f"+86139{p:08d}")),
                        )
                    )
                return out

            def incremental(offset: int, count: int) -> float:
                with ctx.warehouse.transaction() as tx:
                    oneid.add_observations(tx, BRAND, batch(offset, count))
                t = time.perf_counter()
                oneid.resolve_pending(ctx, BRAND)
                return (time.perf_counter() - t) * 1000

            def reseen(offset: int, count: int) -> list[oneid.Observation]:
                # what ingestion mostly brings: identifies of people OneID already knows
                out = []
                for k in range(count):
                    p = rng.randrange(people)
                    ids = (Identity("anonymous_id", f"a{p}"), Identity("phone", f"+86139{p:08d}"))
                    at = start + timedelta(seconds=offset + k)
                    out.append(oneid.Observation("event", f"seen{offset + k}", at, ids, {"city": "上海"}))
                return out

            def steady(offset: int, count: int, delay: float | None) -> float:
                with ctx.warehouse.transaction() as tx:
                    oneid.add_observations(tx, BRAND, reseen(offset, count))
                t = time.perf_counter()
                oneid.resolve_pending(ctx, BRAND, seen_delay=delay)
                return (time.perf_counter() - t) * 1000

            cold_ms = incremental(0, new)  # first call loads the in-memory index
            warm_ms = incremental(new, new)
            handful_ms = incremental(2 * new, 5)
            reseen_ms = steady(10_000, 2500, None)
            reseen_deferred_ms = steady(20_000, 2500, 60.0)
            oneid.flush_seen(ctx, BRAND)
            oneid.defer_last_seen(ctx, 5.0)  # write-behind of re-seen times (opt-in)
            incremental(3 * new, 1)  # the first deferred batch may flush
            deferred_ms = incremental(4 * new, new)
            deferred_handful_ms = incremental(5 * new, 5)
            return {
                "customers": stats.customers,
                "identifiers": stats.identifiers,
                "observations": n_obs,
                "seed_s": round(seed_s, 2),
                "rebuild_s": round(rebuild_s, 2),
                "rebuild_again_s": round(rebuild_again_s, 2),
                f"incremental_{new}_cold_ms": round(cold_ms, 1),
                f"incremental_{new}_warm_ms": round(warm_ms, 1),
                "incremental_5_warm_ms": round(handful_ms, 1),
                f"incremental_{new}_deferred_seen_ms": round(deferred_ms, 1),
                "incremental_5_deferred_seen_ms": round(deferred_handful_ms, 1),
                "incremental_2500_reseen_ms": round(reseen_ms, 1),
                "incremental_2500_reseen_deferred_seen_ms": round(reseen_deferred_ms, 1),
            }
        finally:
            ctx.close()


if __name__ == "__main__":
    print(run())
